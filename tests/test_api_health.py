"""GET status, issue 14 item 3 (health is honest): the verdict in words agrees with `healthy` and counts the failing
checks; the last database backup's size and duration; the newest 30 database backups for the chart (no failed,
config or verify run among them); the size budget in force (stored, environment, none); each RTO row's target.

A real catalog (a real backup and its verify, a failed backup) behind the router as OpenWatch mounts it; the
chart's 30-row limit is checked against rows written straight into backup_runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from openwatch_backup.api.health import verdict
from openwatch_backup.core.retention import GIB
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    Catalog,
    bearer,
    catalog_client,
    catalog_fixture,
)

ADMIN = bearer("super_admin")


@pytest.fixture
def client(catalog: Catalog) -> Iterator[Any]:
    with catalog_client(catalog) as client:
        yield client


def _status(client: Any) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/status", headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_status_says_the_verdict_the_last_backup_and_the_rto_targets(client: Any, catalog: Catalog) -> None:
    status = _status(client)
    backup = catalog.backup
    assert backup.finished_at is not None
    assert backup.started_at is not None
    duration = round((backup.finished_at - backup.started_at).total_seconds(), 3)
    point = {"id": str(backup.id), "kind": "full", "size_bytes": backup.size_bytes, "duration_seconds": duration}
    assert {k: status["last_backup"][k] for k in point} == point
    assert datetime.fromisoformat(status["last_backup"]["finished_at"]) == backup.finished_at
    assert [p["id"] for p in status["recent_backups"]] == [str(backup.id)]  # not the failed backup nor the verify

    # No prune applied and no drill yet in this catalog: failing checks, so unhealthy, and the verdict counts them.
    failing = [item["key"] for item in status["checklist"] if item["status"] == "fail"]
    warnings = sum(item["status"] == "warn" for item in status["checklist"])
    assert failing
    assert (status["failing_checks"], status["healthy"]) == (failing, False)
    assert status["verdict"] == f"Unhealthy: {len(failing)} checks failing ({warnings} warnings)"

    assert status["size_budget_bytes"] is None  # 0 in the environment: no budget
    targets = {row["scenario"]: row["target"] for row in status["rto"]}
    assert targets == {"container_restart": "< 2 min", "database_corruption": "15-30 min",
                       "host_failure": "30-60 min", "volume_loss": "15-30 min"}


def test_the_size_budget_in_force(client: Any, catalog: Catalog) -> None:
    store = catalog.service.settings_store
    store.set("retention.size_budget_gib", 1.5, updated_by="test")
    assert _status(client)["size_budget_bytes"] == int(1.5 * GIB)
    # Set through the API, as the page's form does.
    saved = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"retention": {"size_budget_gib": 0.25}})
    assert saved.status_code == 200, saved.text
    assert _status(client)["size_budget_bytes"] == GIB // 4
    # A stored value the prune refuses (written with psql): the environment's (none) is shown, and the
    # settings_valid check fails and says why.
    catalog.execute("UPDATE backup_settings SET value = '\"lots\"'::json WHERE key = 'retention.size_budget_gib'")
    status = _status(client)
    assert status["size_budget_bytes"] is None
    assert "settings_valid" in status["failing_checks"]
    store.set("retention.size_budget_gib", 0, updated_by="test")
    assert _status(client)["size_budget_bytes"] is None


def test_the_chart_series_is_the_newest_30_database_backups(client: Any, catalog: Catalog) -> None:
    # 34 older succeeded full backups (1 to 34 hours old, i seconds long, i MiB), a config bundle and a failed one.
    for i in range(1, 35):
        catalog.execute(
            "INSERT INTO backup_runs (id, kind, status, trigger, created_at, started_at, finished_at, size_bytes) "
            "VALUES (gen_random_uuid(), 'full', 'succeeded', 'schedule', now() - make_interval(hours => %s), "
            "now() - make_interval(hours => %s), now() - make_interval(hours => %s, secs => -%s), %s)",
            (i, i, i, i, i << 20))
    for kind, status in (("config", "succeeded"), ("plain", "failed")):
        catalog.execute("INSERT INTO backup_runs (id, kind, status, trigger, started_at, finished_at, size_bytes) "
                        "VALUES (gen_random_uuid(), %s, %s, 'api', now(), now() + interval '1 second', 7)",
                        (kind, status))
    series = _status(client)["recent_backups"]
    assert len(series) == 30
    assert series[0]["id"] == str(catalog.backup.id)  # the newest first
    assert [(p["size_bytes"], p["duration_seconds"]) for p in series[1:]] == [(i << 20, i) for i in range(1, 30)]
    assert {p["kind"] for p in series} == {"full"}


@pytest.mark.parametrize(("age", "failing", "warnings", "expected"), [
    (2.0, 0, 0, "Healthy"),
    (2.0, 0, 1, "Healthy (1 warning)"),
    (2.0, 1, 0, "Unhealthy: 1 check failing"),
    (2.0, 2, 3, "Unhealthy: 2 checks failing (3 warnings)"),
    (30.0, 0, 0, "Unhealthy: no verified backup in 26 h"),
    (30.0, 1, 0, "Unhealthy: no verified backup in 26 h, 1 check failing"),
    (None, 0, 0, "Unhealthy: no verified backup yet"),
])
def test_the_verdict_in_words(age: float | None, failing: int, warnings: int, expected: str) -> None:
    assert verdict(age, 26, failing, warnings) == expected
