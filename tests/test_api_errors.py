"""Every error status of the backup API, with its body: 401, 403, 404, 409, 422 and 503, plus the standalone
token's constant-time comparison. The app is OpenWatch-shaped (tests/api_support.py); runs the API queues go to
OpenWatch's Celery app on a Redis of this module, where no worker takes them (so a queued backup stays queued).
"""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from openwatch_backup.api import TokenAuth
from openwatch_backup.api.auth import TOKEN_ENV
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    Services,
    Submitted,
    api_celery_fixture,
    audit_fixture,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    make_token,
    module_catalog_fixture,
    openwatch_auth,
)
from tests.celery_support import broker_url_fixture, module_redis_fixture  # noqa: F401

TOKEN = "s3cret-test-token"
ADMIN = bearer("super_admin")


def _cursor(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode()


@pytest.fixture(scope="module")
def module_audit() -> AuditLog:
    return AuditLog()


@pytest.fixture(scope="module")
def ow_client(module_catalog: Catalog, module_audit: AuditLog) -> Iterator[Any]:
    """OpenWatch's adapter over the module's catalog; submissions are recorded, not sent."""
    services = Services(module_catalog.url, module_catalog.backup_dir)
    app = build_app(auth=openwatch_auth(module_audit), services=services, submit=Submitted())
    with client_for(app) as client:
        yield client
    services.close()


@pytest.fixture(scope="module")
def token_client(module_catalog: Catalog) -> Iterator[Any]:
    services = Services(module_catalog.url, module_catalog.backup_dir)
    app = build_app(auth=TokenAuth(TOKEN), services=services, submit=Submitted())
    with client_for(app) as client:
        yield client
    services.close()


# --- 401 ----------------------------------------------------------------------------------------------------
EXPIRED = make_token("super_admin", expires_in=-60)
FORGED = make_token("super_admin", key=b"not the server's key")
BAD_HEADERS = {
    "no header": {},
    "empty bearer": {"Authorization": "Bearer "},
    "basic scheme": {"Authorization": "Basic c3VwZXJfYWRtaW46cGFzcw=="},
    "token without scheme": {"Authorization": make_token("super_admin")},
    "garbage token": {"Authorization": "Bearer not-a-token"},
    "forged signature": {"Authorization": f"Bearer {FORGED}"},
    "expired": {"Authorization": f"Bearer {EXPIRED}"},
}


@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_openwatch_auth_401(ow_client, module_catalog: Catalog, module_audit: AuditLog, case: str) -> None:
    before = len(module_audit.calls)
    for method, path, body in [("GET", "/runs", None), ("GET", f"/runs/{module_catalog.backup.id}", None),
                               ("POST", "/runs", {}), ("GET", f"/runs/{module_catalog.backup.id}/download", None),
                               ("PUT", "/settings", {"allow_restore": True})]:
        response = ow_client.request(method, PREFIX + path, headers=BAD_HEADERS[case], json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"] in ("Not authenticated", "Could not validate credentials",
                                             "Token has expired")
    assert len(module_audit.calls) == before
    assert module_catalog.service.settings_store.get("api.allow_restore", False) is False


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
                                    f"Token {TOKEN}", f"bearer {TOKEN.upper()}"])
def test_token_auth_401(token_client, header: str) -> None:
    response = token_client.get(f"{PREFIX}/runs", headers={"Authorization": header} if header else {})
    assert response.status_code == 401, response.text
    assert response.json()["detail"] in ("missing bearer token", "invalid token")
    assert response.headers["www-authenticate"] == "Bearer"


def test_token_auth_accepts_the_token_any_scheme_case(token_client) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert token_client.get(f"{PREFIX}/runs", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200


def test_token_auth_compares_in_constant_time(token_client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check goes through hmac.compare_digest, whatever the length or prefix of the given token."""
    real = hmac.compare_digest
    calls: list[tuple[Any, Any]] = []

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    for given, expected in [(TOKEN, 200), ("x", 401), (TOKEN + "-longer", 401), (TOKEN[:5], 401),
                            ("s" + "0" * (len(TOKEN) - 1), 401)]:
        calls.clear()
        response = token_client.get(f"{PREFIX}/status", headers={"Authorization": f"Bearer {given}"})
        assert response.status_code == expected, (given, response.text)
        assert calls == [(given.encode(), TOKEN.encode())], given


# --- 403 ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["security_admin", "guest", "api_key", ""])
def test_403_without_system_maintenance(ow_client, module_catalog: Catalog, module_audit: AuditLog,
                                        role: str) -> None:
    before = len(module_audit.calls)
    response = ow_client.post(f"{PREFIX}/runs", headers=bearer(make_token(role)), json={})
    assert response.status_code == 403, response.text
    assert response.json() == {"detail": "Permission system:maintenance required"}
    response = ow_client.get(f"{PREFIX}/runs/{module_catalog.backup.id}/download", headers=bearer(make_token(role)))
    assert response.status_code == 403
    assert len(module_audit.calls) == before
    assert [r.status for r in module_catalog.runs() if r.status == "queued"] == []


# --- 404 ----------------------------------------------------------------------------------------------------
def test_404_unknown_run(ow_client, module_audit: AuditLog) -> None:
    unknown = uuid.uuid4()
    before = len(module_audit.calls)
    for method, path, body in [("GET", f"/runs/{unknown}", None), ("GET", f"/runs/{unknown}/log", None),
                               ("GET", f"/runs/{unknown}/download", None),
                               ("POST", f"/runs/{unknown}/verify", {"deep": False})]:
        response = ow_client.request(method, PREFIX + path, headers=ADMIN, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert str(unknown) in response.json()["detail"] or "is not in storage" in response.json()["detail"]
        assert response.headers.get("x-error-code") in ("run_not_found", None)
    assert len(module_audit.calls) == before


def test_404_download_and_verify_of_runs_that_are_not_stored_backups(ow_client, module_catalog: Catalog,
                                                                    module_audit: AuditLog) -> None:
    before = len(module_audit.calls)
    for run in (module_catalog.failed, module_catalog.verify):
        response = ow_client.get(f"{PREFIX}/runs/{run.id}/download", headers=ADMIN)
        assert response.status_code == 404, response.text
        assert "not a successful backup" in response.json()["detail"]
        assert response.headers["x-error-code"] == "run_not_found"
        assert response.headers["content-type"].startswith("application/json")
        response = ow_client.post(f"{PREFIX}/runs/{run.id}/verify", headers=ADMIN, json={})
        assert response.status_code == 404, response.text
    assert len(module_audit.calls) == before


def test_404_download_when_the_artifact_is_gone(catalog: Catalog, audit: AuditLog) -> None:
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client:
        (catalog.backup_dir / "postgres" / catalog.backup.details["artifact"]).unlink()
        response = client.get(f"{PREFIX}/runs/{catalog.backup.id}/download", headers=ADMIN)
        assert response.status_code == 404, response.text
        assert "is not in storage" in response.json()["detail"]
        catalog.execute("UPDATE backup_runs SET pruned_at = now() WHERE id = %s", (catalog.backup.id,))
        assert client.get(f"{PREFIX}/runs/{catalog.backup.id}/download", headers=ADMIN).status_code == 404
    services.close()
    assert audit.calls == []


# --- 409 ----------------------------------------------------------------------------------------------------
def _queued_messages(broker_url: str, queue: str = "maintenance") -> list[dict[str, Any]]:
    """The task messages waiting in a Redis-backed Celery queue (kombu keeps them in a list named after it)."""
    client = redis.Redis.from_url(broker_url)
    try:
        return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    finally:
        client.close()


def test_409_backup_already_queued(catalog: Catalog, audit: AuditLog, api_celery: Celery, broker_url: str) -> None:
    """No worker runs: the first backup stays queued, the second POST gets 409 with that run in the body, and
    only one task message was sent."""
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, celery_app=api_celery)) as client:
        first = client.post(f"{PREFIX}/runs", headers=ADMIN, json={})
        assert first.status_code == 202, first.text
        assert first.json()["status"] == "queued"
        second = client.post(f"{PREFIX}/runs", headers=ADMIN, json={"kind": "schema"})
        assert second.status_code == 409, second.text
        body = second.json()
        assert body["code"] == "busy"
        assert body["run"]["id"] == first.json()["id"]
        assert body["run"]["status"] == "queued"
        assert first.json()["id"] in body["detail"]
        # The settings and catalog show one queued backup; Redis holds one task message for it.
        assert [r.id for r in catalog.runs() if r.status == "queued"] == [uuid.UUID(first.json()["id"])]
        messages = _queued_messages(broker_url)
        assert len(messages) == 1
        assert messages[0]["headers"]["task"] == "openwatch_backup.backup"
        args, _kwargs, _embed = json.loads(base64.b64decode(messages[0]["body"]))
        assert args == [first.json()["id"]]
        # Once it is running the answer is the same.
        catalog.service.recorder.claim(uuid.UUID(first.json()["id"]))
        third = client.post(f"{PREFIX}/runs", headers=ADMIN, json={})
        assert third.status_code == 409
        assert third.json()["run"]["status"] == "running"
    services.close()
    assert [c.details["created"] for c in audit.calls if c.action == "BACKUP_BACKUP_REQUESTED"] == [True, False, False]


# --- 422 ----------------------------------------------------------------------------------------------------
BAD_PATH_IDS = ["not-a-uuid", "123", "0000000-0000-0000-0000-000000000000", "g" * 32, "' OR 1=1 --",
                "00000000-0000-0000-0000-0000000000000"]


NOT_A_UUID = "path parameter run_id: is not a UUID (e.g. 3f2c9a4e-0b1d-4c55-9e0a-7f4b2a1c8d90)"


def assert_one_line_422(response: Any, detail: str, *, not_echoed: tuple[str, ...] = ()) -> None:
    """The documented shape: {"detail": "<one line>", "errors": [{"field", "message"}]}, naming each field with its
    problem in words, never repeating what was sent."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert sorted(body) == ["detail", "errors"]
    assert body["detail"] == detail
    assert body["errors"], body
    for error in body["errors"]:
        assert sorted(error) == ["field", "message"]
        assert error["message"] in detail or "more)" in detail
    assert "\n" not in detail
    assert response.headers["x-error-code"] == "invalid_request"
    for given in not_echoed:
        assert given not in response.text, given


@pytest.mark.parametrize("run_id", BAD_PATH_IDS)
def test_422_bad_uuid_in_path(ow_client, run_id: str) -> None:
    for method, suffix, body in [("GET", "", None), ("GET", "/log", None), ("GET", "/download", None),
                                 ("POST", "/verify", {}), ("POST", "/restore", {"confirm": "x"})]:
        response = ow_client.request(method, f"{PREFIX}/runs/{run_id}{suffix}", headers=ADMIN, json=body)
        assert_one_line_422(response, NOT_A_UUID, not_echoed=(run_id,))


def test_422_needs_a_caller_first(ow_client) -> None:
    """Authentication comes before validation: a stranger learns nothing from the validation errors."""
    assert ow_client.get(f"{PREFIX}/runs/not-a-uuid").status_code == 401
    assert ow_client.post(f"{PREFIX}/runs", json={"kind": "bogus"}).status_code == 401
    assert ow_client.post(f"{PREFIX}/runs", json={"kind": "bogus"},
                          headers=bearer("auditor")).status_code == 403


RESTORE_ONE = "give confirm (the live database's name, to restore over it) or into (a new database to restore into)"
INTO_PATTERN = ("into: is not a database name (letters, digits and _, not starting with a digit; at most 63 "
                "characters)")
BAD_BODIES = [
    ("POST", "/runs", {"kind": "bogus"},
     "kind: must be one of 'full', 'plain', 'schema', 'tables', 'config', 'volume' or 'redis'"),
    ("POST", "/runs", {"compression": "rar"}, "compression: must be one of 'zstd', 'pg' or 'none'"),
    ("POST", "/runs", {"tables": "hosts"}, "tables: must be a list"),
    ("POST", "/runs", {"tables": ["t"] * 101}, "tables: must have at most 100 items"),
    ("POST", "/runs", {"extra": 1}, "extra: is not a field this request takes"),
    ("POST", "/runs", [], "the request body: must be a JSON object"),
    ("POST", "{run}/verify", {"deep": "maybe"}, "deep: must be true or false"),
    ("POST", "{run}/verify", {"deep": True, "fast": True}, "fast: is not a field this request takes"),
    ("POST", "{run}/restore", {}, f"the request body: {RESTORE_ONE}"),
    ("POST", "{run}/restore", {"confirm": ""}, "confirm: must not be empty"),
    ("POST", "{run}/restore", {"confirm": "x" * 64}, "confirm: must have at most 63 characters"),
    ("POST", "{run}/restore", {"into": "bad-name;"}, INTO_PATTERN),
    ("POST", "{run}/restore", {"confirm": "x", "into": "1abc"}, INTO_PATTERN),
    ("POST", "{run}/restore", {"confirm": "openwatch", "into": "copy"},
     "the request body: give either confirm (the live database's name, to restore over it) or into (a new "
     "database), not both"),
    ("POST", "{run}/restore", {"confirm": "x", "force": True}, "force: is not a field this request takes"),
    ("POST", "/prune", {}, "apply: is required"),
    ("POST", "/prune", {"apply": False}, "apply: must be true"),
    ("POST", "/prune", {"apply": "yes"}, "apply: must be true"),
    ("POST", "/prune", {"apply": True, "dry_run": False}, "dry_run: is not a field this request takes"),
    ("PUT", "/settings", {"schedule": {"backup": "* *"}},
     "schedule.backup: is not a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "
     "'0 2 * * *'"),
    ("PUT", "/settings", {"schedule": {"backup": "0 2 * * *", "drill": "0 4 * * 0", "x": "y"}},
     "schedule.x: is not a field this request takes"),
    ("PUT", "/settings", {"retention": {"days": "thirty"}},
     "retention.days: must be a whole number"),
    ("PUT", "/settings", {"retention": {"bogus": 1}}, "retention.bogus: is not a field this request takes"),
    ("PUT", "/settings", {"allow_restore": "please"},
     "allow_restore: must be true or false"),
    ("PUT", "/settings", {"alert_after_hours": 1}, "alert_after_hours: is not a field this request takes"),
]


@pytest.mark.parametrize(("method", "path", "body", "detail"), BAD_BODIES,
                         ids=[f"{m} {p} {json.dumps(b)[:40]}" for m, p, b, _ in BAD_BODIES])
def test_422_bad_bodies(ow_client, module_catalog: Catalog, module_audit: AuditLog, method: str, path: str,
                        body: Any, detail: str) -> None:
    before_runs, before_audit = len(module_catalog.runs()), len(module_audit.calls)
    target = PREFIX + (path.replace("{run}", f"/runs/{module_catalog.backup.id}") if "{run}" in path else path)
    response = ow_client.request(method, target, headers=ADMIN, json=body)
    assert_one_line_422(response, detail, not_echoed=("thirty", "please", "bogus;", "rar", "maybe", "bad-name;"))
    assert len(module_catalog.runs()) == before_runs
    assert len(module_audit.calls) == before_audit


def test_back_up_now_refuses_kind_volume_before_queueing(ow_client, module_catalog: Catalog) -> None:
    """Volumes are snapshotted one run per volume, from the CLI or their weekly schedule, never as one run."""
    before = len(module_catalog.runs())
    response = ow_client.post(f"{PREFIX}/runs", headers=ADMIN, json={"kind": "volume"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "volume snapshots are taken per volume: `openwatch-backup backup --kind volume` "
        "(or the weekly OPENWATCH_BACKUP_VOLUME_SCHEDULE); OPENWATCH_BACKUP_KIND takes a database kind"}
    assert len(module_catalog.runs()) == before


def test_422_malformed_json(ow_client) -> None:
    response = ow_client.post(f"{PREFIX}/runs", headers={**ADMIN, "Content-Type": "application/json"},
                              content=b'{not json, "secret-looking": "Hunter2"')
    assert_one_line_422(response, "the request body: is not valid JSON", not_echoed=("Hunter2", "not json"))


def test_422_lists_at_most_three_problems(ow_client) -> None:
    response = ow_client.post(f"{PREFIX}/runs", headers=ADMIN, json={"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert_one_line_422(response, "a: is not a field this request takes; b: is not a field this request takes; "
                        "c: is not a field this request takes (and 2 more)")


@pytest.mark.parametrize("tables", [["bad name;"], ["hosts", "x' OR '1"], ["a.b.c"], [""],
                                    ["hosts", "pg_catalog.pg_authid"], ["information_schema.tables"]])
def test_422_bad_table_names(ow_client, module_catalog: Catalog, tables: list[str]) -> None:
    """Table names are checked before anything is queued (the same rule as OPENWATCH_BACKUP_TABLES)."""
    before = len(module_catalog.runs())
    response = ow_client.post(f"{PREFIX}/runs", headers=ADMIN, json={"kind": "tables", "tables": tables})
    assert response.status_code == 422, f"{response.status_code} {response.text}"
    assert len(module_catalog.runs()) == before


BAD_CURSORS = {
    "not base64": "!!!",
    "short base64": "abc",
    "no separator": _cursor(b"2026-01-01T00:00:00+00:00"),
    "three parts": _cursor(b"2026-01-01T00:00:00+00:00|" + str(uuid.uuid4()).encode() + b"|x"),
    "bad date": _cursor(b"yesterday|" + str(uuid.uuid4()).encode()),
    "bad uuid": _cursor(b"2026-01-01T00:00:00+00:00|not-a-uuid"),
    "not utf-8": _cursor(b"\xff\xfe\xfd|\x00"),
    "too long": "A" * 201,
}


@pytest.mark.parametrize("name", list(BAD_CURSORS))
def test_422_bad_cursor(ow_client, name: str) -> None:
    response = ow_client.get(f"{PREFIX}/runs", params={"cursor": BAD_CURSORS[name]}, headers=ADMIN)
    assert response.status_code == 422, response.text


BAD_LIST_PARAMETERS = [
    ({"limit": 0}, "query parameter limit: must be at least 1"),
    ({"limit": 201}, "query parameter limit: must be at most 200"),
    ({"limit": "ten"}, "query parameter limit: must be a whole number"),
    ({"kind": "FULL"}, "query parameter kind: must be lower-case letters only, e.g. full or succeeded"),
    ({"kind": "full;drop"}, "query parameter kind: must be lower-case letters only, e.g. full or succeeded"),
    ({"status": "x" * 17}, "query parameter status: must have at most 16 characters"),
    ({"status": "Queued"}, "query parameter status: must be lower-case letters only, e.g. full or succeeded"),
]


@pytest.mark.parametrize(("params", "detail"), BAD_LIST_PARAMETERS)
def test_422_bad_list_parameters(ow_client, params: dict[str, Any], detail: str) -> None:
    response = ow_client.get(f"{PREFIX}/runs", params=params, headers=ADMIN)
    assert_one_line_422(response, detail, not_echoed=tuple(str(v) for v in params.values() if len(str(v)) > 3))


def test_422_log_lines_bounds(ow_client, module_catalog: Catalog) -> None:
    for lines in (0, 201, -1):
        response = ow_client.get(f"{PREFIX}/runs/{module_catalog.backup.id}/log", params={"lines": lines},
                                 headers=ADMIN)
        assert response.status_code == 422


# --- 503 ----------------------------------------------------------------------------------------------------
def test_503_when_no_token_is_configured(module_catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    services = Services(module_catalog.url, module_catalog.backup_dir)
    for auth in (TokenAuth(), TokenAuth("")):
        submitted = Submitted()
        with client_for(build_app(auth=auth, services=services, submit=submitted)) as client:
            for method, path, headers in [("GET", "/runs", {}), ("GET", "/status", {"Authorization": "Bearer x"}),
                                          ("POST", "/runs", {"Authorization": "Bearer "}),
                                          ("GET", f"/runs/{module_catalog.backup.id}/download", {})]:
                response = client.request(method, PREFIX + path, headers=headers, json={})
                assert response.status_code == 503, (method, path, response.text)
                assert TOKEN_ENV in response.json()["detail"]
        assert submitted.calls == []
    services.close()


def test_token_from_the_environment(module_catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    services = Services(module_catalog.url, module_catalog.backup_dir)
    with client_for(build_app(auth=None, services=services, submit=Submitted())) as client:
        assert client.get(f"{PREFIX}/runs", headers={"Authorization": "Bearer from-env"}).status_code == 200
        assert client.get(f"{PREFIX}/runs", headers={"Authorization": "Bearer other"}).status_code == 401
    services.close()


def test_router_needs_a_way_to_submit() -> None:
    from openwatch_backup.api import backups_router

    with pytest.raises(ValueError, match="celery_app"):
        backups_router(auth=TokenAuth("x"))


def test_409_prune_already_queued(catalog: Catalog, audit: AuditLog) -> None:
    """A second prune while one is queued (a finished plan in between) gets 409 with the queued one; nothing
    is submitted or audited for it."""
    services = Services(catalog.url, catalog.backup_dir)
    submitted = Submitted()
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=submitted)) as client:
        queued = client.post(f"{PREFIX}/prune", headers=ADMIN, json={"apply": True})
        assert queued.status_code == 202
        assert client.post(f"{PREFIX}/prune/plan", headers=ADMIN).json()["status"] == "succeeded"
        again = client.post(f"{PREFIX}/prune", headers=ADMIN, json={"apply": True})
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "busy"
        assert again.json()["run"]["id"] == queued.json()["id"]
        assert again.json()["run"]["status"] == "queued"
        catalog.service.recorder.claim(uuid.UUID(queued.json()["id"]))
        running = client.post(f"{PREFIX}/prune", headers=ADMIN, json={"apply": True})
        assert running.status_code == 409
        assert running.json()["run"]["status"] == "running"
    services.close()
    assert [kind for kind, _ in submitted.calls] == ["prune"]
    assert audit.actions() == ["BACKUP_PRUNE_REQUESTED", "BACKUP_PRUNE_PLANNED"]
