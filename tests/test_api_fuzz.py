"""Fuzz every operation of the API's OpenAPI description with schemathesis (its Python API against the ASGI
app), valid and invalid inputs, authenticated with the standalone token: no answer may be a 5xx.

Bounded: MAX_EXAMPLES per operation and mode, no shrinking (each answer is recorded, none raises inside
Hypothesis), a fixed seed. Path parameters are drawn from the catalog's real run ids (a succeeded backup, its
verify, a failed backup) as well as generated ones, so the handlers past the 404 are reached too.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from openwatch_backup.api import TokenAuth
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    Catalog,
    Services,
    Submitted,
    build_app,
    catalog_fixture,
)

pytestmark = pytest.mark.slow
TOKEN = "fuzz-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 50
TIME_BUDGET = 150.0  # seconds for the whole fuzz run; operations left when it runs out are reported


@dataclass
class Answer:
    operation: str
    mode: str
    status: int
    curl: str
    body: Any
    error: str | None


@pytest.fixture
def fuzz_app(catalog: Catalog) -> Iterator[tuple[Any, Catalog, Submitted]]:
    services = Services(catalog.url, catalog.backup_dir)
    submitted = Submitted()
    yield build_app(auth=TokenAuth(TOKEN), services=services, submit=submitted), catalog, submitted
    services.close()


class AsServer:
    """The app as uvicorn runs it: an unhandled exception still answers 500 (Starlette's ServerErrorMiddleware
    sends it, then re-raises for the server to log); here the re-raise is recorded instead of ending the run."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")


def _fuzz(strategy: Any, label: str, mode: str, answers: list[Answer], app: AsServer,
          after: Any = None) -> None:
    """Draw up to MAX_EXAMPLES cases and record every answer (never raising: no shrinking, no early stop)."""

    @seed(20261126)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def exercise(case: Any) -> None:
        before = len(app.errors)
        response = case.call(headers=HEADERS, app=app)
        error = app.errors[-1] if len(app.errors) > before else None
        body = case.body if isinstance(case.body, dict | list | str | int | float | bool) else None
        answers.append(Answer(label, mode, response.status_code, case.as_curl_command(HEADERS), body, error))
        if after is not None:
            after()

    exercise()


def test_fuzz_no_server_errors(fuzz_app: tuple[Any, Catalog, Submitted]) -> None:
    app, catalog, _ = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    run_ids = [str(catalog.backup.id), str(catalog.verify.id), str(catalog.failed.id)]
    as_server = AsServer(app)
    # Restores allowed, so the fuzzer gets past the 403; queued runs are cancelled after every request, so "back
    # up now" keeps reaching past the 409 (test_api_errors.py covers the 409).
    catalog.service.settings_store.set("api.allow_restore", True, updated_by="fuzz")

    def settle() -> None:
        catalog.execute("UPDATE backup_runs SET status = 'cancelled', finished_at = now() WHERE status = 'queued'")

    answers: list[Answer] = []
    skipped: list[str] = []
    no_negative: list[str] = []
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 18  # 16, GET runs/{id}/restore/check, GET settings/cron-preview

    for operation in operations:
        has_run_id = "{run_id}" in operation.path
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            label = f"{operation.method.upper()} {operation.path}"
            if time.monotonic() - started > TIME_BUDGET:
                skipped.append(f"{label} ({mode.value})")
                continue
            strategy = operation.as_strategy(generation_mode=mode)
            if has_run_id and mode is schemathesis.GenerationMode.POSITIVE:
                strategy = st.one_of(strategy, *[operation.as_strategy(generation_mode=mode,
                                                                       path_parameters={"run_id": rid})
                                                 for rid in run_ids])

            try:
                _fuzz(strategy, label, mode.value, answers, as_server, settle)
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is schemathesis.GenerationMode.NEGATIVE, label
                no_negative.append(label)

    by_status = Counter((a.operation, a.status) for a in answers)
    print("\nfuzz answers by operation and status:")
    for (label, status), count in sorted(by_status.items()):
        print(f"  {label:<45} {status}: {count}")
    print(f"no invalid input to generate for: {no_negative}")
    print(f"{len(answers)} requests in {time.monotonic() - started:.1f} s")
    unexplained = [a for a in answers if a.status >= 500]
    assert not skipped, f"the time budget ran out before: {skipped}"
    assert not unexplained, "\n".join(f"{a.status} {a.operation} ({a.mode}) {a.error}: {a.curl}"
                                       for a in unexplained[:20])
    # The fuzzer reached past validation: successes and 404s on every run endpoint, not only 401/422.
    assert {a.operation for a in answers if 200 <= a.status < 300} >= {
        f"GET {PREFIX}/runs", f"GET {PREFIX}/runs/{{run_id}}", f"GET {PREFIX}/runs/{{run_id}}/log",
        f"GET {PREFIX}/status", f"GET {PREFIX}/settings", f"POST {PREFIX}/prune/plan"}


def test_openapi_documents_the_answers(tmp_path: Path) -> None:
    # The description only: the service (and its database) is never built.
    app = build_app(auth=TokenAuth(TOKEN), services=Services("postgresql://nobody@127.0.0.1:1/none", tmp_path),
                    submit=Submitted())
    paths = app.openapi()["paths"]
    undocumented_404 = [f"{method.upper()} {path}" for path, operations in paths.items() if "{run_id}" in path
                        for method, operation in operations.items() if "404" not in operation["responses"]]
    assert undocumented_404 == []
    for path, method in ((f"{PREFIX}/runs", "get"), (f"{PREFIX}/settings", "put")):
        ref = paths[path][method]["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        detail = app.openapi()["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["detail"]
        assert "string" in json.dumps(detail), (path, detail)
