"""What the settings form gets from the API (issue 14 item 6): a cron expression in words with its next runs,
refusals tied to their field in words (not pydantic's codes), and the retention bounds the inputs use."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest

from openwatch_backup.operations.retention_policy import OVERRIDE_KEYS
from openwatch_backup.settings import Settings, allowed_range
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    bearer,
    catalog_client,
    module_catalog_fixture,
)

ADMIN = bearer("super_admin")
PREVIEW = f"{PREFIX}/settings/cron-preview"


@pytest.fixture(scope="module")
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture(scope="module")
def client(module_catalog: Catalog, audit: AuditLog) -> Iterator[Any]:
    with catalog_client(module_catalog, audit=audit) as client:
        yield client


def test_preview_in_words_with_the_next_three_runs(client: Any) -> None:
    response = client.get(PREVIEW, params={"expr": "30 1 * * *"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["text"], body["time_of_day"], body["weekdays"]) == ("daily at 01:30 UTC", "01:30", False)
    runs = [datetime.fromisoformat(run.replace("Z", "+00:00")) for run in body["next_runs"]]
    assert len(runs) == 3
    assert all((run.hour, run.minute, run.utcoffset()) == (1, 30, UTC.utcoffset(None)) for run in runs)
    assert runs[0] > datetime.now(UTC)
    assert [(b - a).days for a, b in pairwise(runs)] == [1, 1]

    weekly = client.get(PREVIEW, params={"expr": "0 3 * * sun"}, headers=ADMIN).json()
    assert (weekly["text"], weekly["weekdays"]) == ("every Sunday at 03:00 UTC", True)
    assert all(datetime.fromisoformat(r.replace("Z", "+00:00")).weekday() == 6 for r in weekly["next_runs"])
    every = client.get(PREVIEW, params={"expr": "0 */6 * * *"}, headers=ADMIN).json()
    assert every["text"] == "at minute 0 of every 6th hour (00:00, 06:00, 12:00 and 18:00 UTC)"
    assert every["time_of_day"] is None


@pytest.mark.parametrize(("expr", "detail"), [
    ("61 * * * *", "the minute '61' is not valid (61 is more than 59); it takes 0-59, e.g. 30, */15 or 0,30"),
    ("0 0 31 2 *", "day of month '31' never occurs in month '2'"),
    ("* *", "has 2 fields; a cron expression has 5: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"),
])
def test_preview_of_a_bad_expression_is_a_400_in_one_line(client: Any, expr: str, detail: str) -> None:
    response = client.get(PREVIEW, params={"expr": expr}, headers=ADMIN)
    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert response.headers["x-error-code"] == "invalid_cron"


def test_preview_needs_a_caller_and_bounds_its_input(client: Any) -> None:
    assert client.get(PREVIEW, params={"expr": "30 1 * * *"}).status_code == 401
    response = client.get(PREVIEW, params={"expr": "1," * 150 + "2 * * * *"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "expr", "message": "must have at most 200 characters"}]
    missing = client.get(PREVIEW, headers=ADMIN)
    assert missing.json()["detail"] == "query parameter expr: is required"


def test_get_settings_carries_the_retention_bounds(client: Any) -> None:
    limits = client.get(f"{PREFIX}/settings", headers=ADMIN).json()["limits"]
    assert sorted(limits) == sorted(key.removeprefix("retention.") for key in OVERRIDE_KEYS)
    assert limits["days"] == {"min": 1, "max": 36_500, "step": "1"}
    assert limits["keep_last"] == {"min": 0, "max": 10_000, "step": "1"}
    assert limits["size_budget_gib"] == {"min": 0, "max": 1_048_576, "step": "any"}
    for key, field in OVERRIDE_KEYS.items():  # the same numbers the README's table shows
        limit = limits[key.removeprefix("retention.")]
        assert allowed_range(field) == f"{int(limit['min']):,} to {int(limit['max']):,}"
        assert limit["step"] == ("1" if Settings.model_fields[field].annotation is int else "any")


def test_put_errors_name_the_field_in_words(client: Any, module_catalog: Catalog) -> None:
    before = module_catalog.service.settings_store.all()
    response = client.put(f"{PREFIX}/settings", headers=ADMIN,
                          json={"retention": {"days": 40_000, "keep_last": -1, "size_budget_gib": "lots"}})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "retention.days: must be at most 36,500; retention.keep_last: must be at least 0; "
                  "retention.size_budget_gib: must be a number",
        "errors": [{"field": "retention.days", "message": "must be at most 36,500"},
                   {"field": "retention.keep_last", "message": "must be at least 0"},
                   {"field": "retention.size_budget_gib", "message": "must be a number"}]}
    assert "greater_than" not in response.text
    assert "Input should" not in response.text

    shape = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"schedule": {"drill": "0 4 *"}})
    assert shape.json()["errors"] == [{"field": "schedule.drill", "message": "is not a 5-field cron expression "
                                       "(minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"}]

    cron = client.put(f"{PREFIX}/settings", headers=ADMIN,
                      json={"schedule": {"backup": "61 * * * *", "drill": "0 4 * * 7"}, "retention": {"days": 9}})
    assert cron.status_code == 422
    assert cron.headers["x-error-code"] == "config"
    assert cron.json()["errors"] == [
        {"field": "schedule.backup",
         "message": "the minute '61' is not valid (61 is more than 59); it takes 0-59, e.g. 30, */15 or 0,30"},
        {"field": "schedule.drill", "message": "the day of week '7' is not valid (7 is more than 6); it takes 0-6 "
                                               "(0 is Sunday) or sun-sat, e.g. sun or mon-fri"}]
    assert cron.json()["detail"].startswith("schedule.backup '61 * * * *' is not a valid cron expression (the minute")
    assert "\n" not in cron.json()["detail"]
    assert module_catalog.service.settings_store.all() == before  # nothing stored from any of them
