"""The whole API against real PostgreSQL and a real Celery worker (OpenWatch's app, queues default,maintenance):
back up, verify, list and page, log, deep verify, status, settings, prune, download and restore, as an admin
page or a script would drive it. Runs are polled through the API with bounded waits.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery

from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Services,
    api_celery_fixture,
    bearer,
    build_app,
    client_for,
    openwatch_auth,
    poll_run,
    start_worker,
)
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    broker_url_fixture,
    module_redis_fixture,
    processes_fixture,
)

pytestmark = pytest.mark.slow
ADMIN = bearer("super_admin")
RUN_TIMEOUT = 90


def _walk(client: Any, limit: int, **filters: str) -> list[list[dict[str, Any]]]:
    """Every page of GET runs, following next_cursor to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        response = client.get(f"{PREFIX}/runs", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(body["items"]) == limit, "a page before the last one is full"
    raise AssertionError("next_cursor never ended")


def _rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def flow(openwatch_db: str, tmp_path: Path, api_celery: Celery, broker_url: str,
         processes: Processes) -> Iterator[tuple[Any, AuditLog, Path, Any]]:
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    services = Services(openwatch_db, backup_dir)
    services().db_upgrade()
    worker = start_worker(processes, database_url=openwatch_db, backup_dir=backup_dir, broker_url=broker_url)
    audit = AuditLog()
    app = build_app(auth=openwatch_auth(audit), services=services, celery_app=api_celery)
    with client_for(app) as client:
        yield client, audit, backup_dir, worker
    services.close()


def test_full_flow(flow: tuple[Any, AuditLog, Path, Any], openwatch_db: str, make_database: Any) -> None:
    client, audit, backup_dir, worker = flow

    def get(path: str, **params: Any) -> Any:
        response = client.get(PREFIX + path, params=params, headers=ADMIN)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    def wait(run_id: str, status: str = "succeeded") -> dict[str, Any]:
        return poll_run(client, run_id, ADMIN, (status,), timeout=RUN_TIMEOUT, context=worker.tail)

    # Back up now: 202 with a queued run; the worker runs it, then the verify it queues.
    response = client.post(f"{PREFIX}/runs", headers=ADMIN, json={})
    assert response.status_code == 202, response.text
    backup = response.json()
    assert backup["status"] == "queued"
    assert backup["kind"] == "full"
    assert backup["trigger"] == "api"
    assert backup["requested_by"] == "super_admin-user"
    backup = wait(backup["id"])
    assert backup["sha256"]
    assert backup["size_bytes"] > 0
    assert backup["details"]["bytes_out"] == backup["size_bytes"]  # what was written, not a stale heartbeat's 0
    artifact = backup["details"]["artifact"]
    assert (backup_dir / "postgres" / artifact).is_file()

    # The worker queues the verify after the backup's status is final (once its lock is released): wait for it.
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (verifies := get("/runs", kind="verify")["items"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(verifies) == 1
    assert verifies[0]["parent_id"] == backup["id"]
    verify = wait(verifies[0]["id"])
    assert verify["details"]["verify"]["result"] == "passed"

    listed = get("/runs")
    assert [r["id"] for r in listed["items"]] == [verify["id"], backup["id"]]  # newest first
    assert listed["next_cursor"] is None

    # The log holds the phases the backup went through.
    log = get(f"/runs/{backup['id']}/log")
    assert log["run_id"] == backup["id"]
    text = "\n".join(log["lines"])
    for phase in ("queued (api by super_admin-user)", "preflight", "dumping", "manifest", "succeeded"):
        assert phase in text, log["lines"]
    assert get(f"/runs/{backup['id']}/log", lines=2)["lines"] == log["lines"][-2:]

    # Deep verify on demand.
    response = client.post(f"{PREFIX}/runs/{backup['id']}/verify", headers=ADMIN, json={"deep": True})
    assert response.status_code == 202, response.text
    deep = response.json()
    assert (deep["kind"], deep["status"], deep["parent_id"]) == ("verify", "queued", backup["id"])
    deep = wait(deep["id"])
    assert deep["details"]["verify"]["deep"] is True
    assert deep["details"]["verify"]["result"] == "passed"

    # Status: a fresh verified backup, but no prune and no drill yet: not healthy, and it says which items fail
    # (the badge never contradicts the checklist).
    status = get("/status")
    assert status["healthy"] is False
    # (No passphrase for config bundles is set here: `check` and the status say so, tests/test_config_on_change.py.)
    assert status["failing_checks"] == ["retention_applied", "config_passphrase", "restore_drill"]
    assert [i["key"] for i in status["checklist"] if i["status"] == "fail"] == status["failing_checks"]
    assert status["newest_verified_age_hours"] < 1
    assert status["running"] is None
    assert set(status["next_runs"]) == {"backup", "drill"}
    assert status["checklist"]
    assert all({"key", "title", "status", "detail", "fix"} <= set(item) for item in status["checklist"])
    stored = sum(p.stat().st_size for p in backup_dir.rglob("*") if p.is_file())
    assert status["storage_used_bytes"] == stored > 0

    # Settings: schedule, retention and allow_restore, stored in the database.
    settings = get("/settings")
    assert settings["allow_restore"] is False
    wanted = {"schedule": {"backup": "30 1 * * *", "drill": "0 6 * * 0"},
              "retention": {"days": 14, "keep_last": 4}, "allow_restore": False}
    response = client.put(f"{PREFIX}/settings", headers=ADMIN, json=wanted)
    assert response.status_code == 200, response.text
    settings = get("/settings")
    assert settings["schedule"] == wanted["schedule"]
    assert settings["schedule_source"] == {"backup": "database", "drill": "database"}
    assert settings["retention"]["days"] == 14
    assert settings["retention"]["keep_last"] == 4
    assert settings["next_runs"]["backup"].endswith("01:30:00Z")
    response = client.put(f"{PREFIX}/settings", headers=ADMIN,
                          json={"schedule": {"backup": "61 2 * * *", "drill": "0 6 * * 0"},
                                "retention": {"days": 3}, "allow_restore": True})
    assert response.status_code == 422
    assert "schedule.backup '61 2 * * *' is not a valid cron expression" in response.json()["detail"]
    response = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"retention": {"days": 3, "keep_hourly": 2}})
    assert response.status_code == 422
    assert response.json()["detail"] == "retention.keep_hourly: is not a field this request takes"
    assert get("/settings") == settings  # neither bad request changed anything

    # Retention: a plan (nothing deleted), then an applied prune through the worker.
    response = client.post(f"{PREFIX}/prune/plan", headers=ADMIN)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert (plan["kind"], plan["status"]) == ("prune", "succeeded")
    assert "plan" in plan["details"]
    response = client.post(f"{PREFIX}/prune", headers=ADMIN, json={"apply": True})
    assert response.status_code == 202, response.text
    applied = wait(response.json()["id"])
    assert applied["details"]["request"] == {"apply": True}
    assert get(f"/runs/{backup['id']}")["pruned_at"] is None  # the newest backup is always kept
    assert get("/status")["failing_checks"] == ["config_passphrase", "restore_drill"]
    drill_service = Services(openwatch_db, backup_dir)
    assert drill_service().drill().status == "succeeded"
    drill_service.close()
    status = get("/status")
    assert (status["healthy"], status["failing_checks"]) == (False, ["config_passphrase"])

    # Download streams exactly the artifact.
    with client.stream("GET", f"{PREFIX}/runs/{backup['id']}/download", headers=ADMIN) as response:
        assert response.status_code == 200
        data = b"".join(response.iter_bytes())
    assert hashlib.sha256(data).hexdigest() == backup["sha256"]
    assert data == (backup_dir / "postgres" / artifact).read_bytes()
    assert response.headers["content-disposition"] == f'attachment; filename="{artifact}"'
    assert int(response.headers["content-length"]) == len(data)
    assert response.headers["x-checksum-sha256"] == backup["sha256"]
    assert response.headers["content-type"] == "application/octet-stream"

    # Restore: refused while off, wrong confirmation refused, then into a new database.
    response = client.post(f"{PREFIX}/runs/{backup['id']}/restore", headers=ADMIN, json={"confirm": "x"})
    assert response.status_code == 403
    assert "allow restore" in response.json()["detail"]
    assert client.put(f"{PREFIX}/settings", headers=ADMIN, json={"allow_restore": True}).status_code == 200
    live = openwatch_db.rsplit("/", 1)[1]
    response = client.post(f"{PREFIX}/runs/{backup['id']}/restore", headers=ADMIN, json={"confirm": "openwatch"})
    assert response.status_code == 409
    assert live in response.json()["detail"]
    into = make_database.track(make_database.new_name("into"))
    response = client.post(f"{PREFIX}/runs/{backup['id']}/restore", headers=ADMIN,
                           json={"into": into})
    assert response.status_code == 202, response.text
    restore = response.json()
    assert (restore["kind"], restore["status"], restore["parent_id"]) == ("restore", "queued", backup["id"])
    restore = wait(restore["id"])
    into_url = openwatch_db.rsplit("/", 1)[0] + "/" + into
    for table in ("hosts", "scans", "users", "scan_findings"):
        assert _rows(into_url, table) == _rows(openwatch_db, table) == backup["details"]["row_counts"][table]

    # Every run, newest first, page by page: nothing missing, nothing twice, next_cursor null at the end.
    everything = get("/runs", limit=200)["items"]
    assert len(everything) > 3
    created = [r["created_at"] for r in everything]
    assert created == sorted(created, reverse=True)
    for limit in (1, 2, 3):
        pages = _walk(client, limit)
        flat = [r["id"] for page in pages for r in page]
        assert flat == [r["id"] for r in everything], limit
        assert len(set(flat)) == len(flat)
    # Filters, also across pages.
    for filters in ({"kind": "verify"}, {"status": "succeeded"}, {"kind": "prune", "status": "succeeded"},
                    {"kind": "restore"}, {"kind": "drill"}):
        expected = [r["id"] for r in everything if all(r[k] == v for k, v in filters.items())]
        assert [r["id"] for page in _walk(client, 1, **filters) for r in page] == expected, filters
    assert len([r for r in everything if r["kind"] == "verify"]) == 2

    # One audit record per mutating call, with OpenWatch's argument shapes.
    assert audit.actions() == ["BACKUP_BACKUP_REQUESTED", "BACKUP_VERIFY_REQUESTED", "BACKUP_SETTINGS_CHANGED",
                               "BACKUP_PRUNE_PLANNED", "BACKUP_PRUNE_REQUESTED", "BACKUP_DOWNLOAD",
                               "BACKUP_SETTINGS_CHANGED", "BACKUP_RESTORE_REQUESTED"]
    assert {c.resource_type for c in audit.calls} == {"backup"}
    assert all(c.session.closed for c in audit.calls)
    assert uuid.UUID(audit.calls[-1].details["run_id"]) == uuid.UUID(restore["id"])


def test_409_while_the_worker_is_dumping(bulky_db: str, tmp_path: Path, api_celery: Celery, broker_url: str,
                                         processes: Processes) -> None:
    """A second "back up now" while the first is running gets 409 with the running run; no second task is queued
    and the first finishes normally. The first is held running by a lock pg_dump waits for: its ~40 MiB dump
    alone took 0.2 s on an idle machine, less than a poll for "running" may take."""
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    services = Services(bulky_db, backup_dir)
    services().db_upgrade()
    worker = start_worker(processes, database_url=bulky_db, backup_dir=backup_dir, broker_url=broker_url,
                          verify_after_backup="false")
    blocker = psycopg.connect(bulky_db)
    with client_for(build_app(auth=openwatch_auth(AuditLog()), services=services, celery_app=api_celery)) as client:
        try:
            blocker.execute("LOCK TABLE filler IN ACCESS EXCLUSIVE MODE")
            first = client.post(f"{PREFIX}/runs", headers=ADMIN, json={"compression": "none"})
            assert first.status_code == 202, first.text
            poll_run(client, first.json()["id"], ADMIN, ("running",), timeout=30, context=worker.tail)
            second = client.post(f"{PREFIX}/runs", headers=ADMIN, json={})
            assert second.status_code == 409, second.text
            assert second.json()["run"]["id"] == first.json()["id"]
            assert second.json()["run"]["status"] == "running"
        finally:
            blocker.close()  # the lock goes with the connection: the dump goes on
        poll_run(client, first.json()["id"], ADMIN, ("succeeded",), timeout=RUN_TIMEOUT, context=worker.tail)
        runs = client.get(f"{PREFIX}/runs", headers=ADMIN).json()["items"]
        assert [(r["kind"], r["status"]) for r in runs] == [("full", "succeeded")]
        # Now that it is done, a new backup is accepted again.
        third = client.post(f"{PREFIX}/runs", headers=ADMIN, json={"kind": "schema"})
        assert third.status_code == 202
        poll_run(client, third.json()["id"], ADMIN, ("succeeded",), timeout=RUN_TIMEOUT, context=worker.tail)
    services.close()
    # The catalog says succeeded a moment before celery logs it: wait for the second line, then count exactly.
    worker.wait_for_log(r"Task openwatch_backup\.backup\[[0-9a-f-]+\] succeeded", timeout=30, count=2)
    assert worker.count(r"Task openwatch_backup\.backup\[[0-9a-f-]+\] succeeded") == 2
