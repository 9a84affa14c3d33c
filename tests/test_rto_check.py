"""The RTO table in `check` and GET /status: exact lines per row (measured, never measured, stated, too old),
and the host drill's scratch targets (recorded first, gone after a failure, swept after a kill)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from openwatch_backup.cli import app
from openwatch_backup.core.kinds import RunStatus, Trigger
from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.host_drill import run_host_drill, scratch_folder_root
from openwatch_backup.operations.rto import DRILL_HOST, duration
from openwatch_backup.service import BackupService
from openwatch_backup.source.scratch import scratch_name
from openwatch_backup.storage.factory import NOT_CONFIGURED
from tests.api_support import (  # noqa: F401 - fixtures
    AuditLog,
    Catalog,
    Services,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    openwatch_auth,
)

PREFIX = "/api/system/backups"
CONTAINER = ("container restart: stated, not measured: Docker restart policies (restart: unless-stopped) restart a "
             "failed container; that is orchestration's, not a backup's (target < 2 min)")
NEVER = ["database corruption: never measured (target 15-30 min)", "host failure: never measured (target 30-60 min)",
         "volume loss: never measured (target 15-30 min)"]


@pytest.fixture
def cli_env(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", catalog.url)
    monkeypatch.setenv("OPENWATCH_BACKUP_DIR", str(catalog.backup_dir))
    return catalog


def lines(service: BackupService) -> list[tuple[str, str]]:
    return [(row.state, row.line) for row in service.rto_table()]


def rto_items(service: BackupService) -> list[tuple[str, str, str, str]]:
    return [(i.key, i.status.value, i.detail, i.fix) for i in service.checklist() if i.key.startswith("rto_")]


def check_rto_lines() -> list[str]:
    result = CliRunner().invoke(app, ["check"], catch_exceptions=False)
    return [line for line in result.stdout.splitlines() if line.startswith("RTO ")]


@pytest.fixture
def status(catalog: Catalog) -> Iterator[Any]:
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(AuditLog()), services=services, submit=lambda *_: None)) as client:
        def get() -> Any:
            response = client.get(f"{PREFIX}/status", headers=bearer("super_admin"))
            assert response.status_code == 200, response.text
            return response.json()
        yield get
    services.close()


def test_never_measured_then_the_drill_measures_database_corruption(cli_env: Catalog, status: Any) -> None:
    service = cli_env.service
    assert lines(service) == [("stated", CONTAINER), *(("warn", line) for line in NEVER)]
    assert rto_items(service) == [
        ("rto_container_restart", "skip", CONTAINER, ""),
        ("rto_database_corruption", "warn", NEVER[0], "run `openwatch-backup drill`"),
        ("rto_host_failure", "warn", NEVER[1], "run `openwatch-backup drill --scenario host`"),
        ("rto_volume_loss", "warn", NEVER[2], "run `openwatch-backup drill --scenario volume`")]
    assert check_rto_lines() == [f"RTO skip: {CONTAINER}", *(f"RTO warn: {line}" for line in NEVER)]

    drill = service.drill()
    assert drill.status == RunStatus.SUCCEEDED.value, drill.error
    seconds = drill.details["drill"]["rto_seconds"]
    measured = f"database corruption: restored in {duration(seconds)} (target 15-30 min) 0.0 h ago"
    assert lines(service) == [("stated", CONTAINER), ("ok", measured), ("warn", NEVER[1]), ("warn", NEVER[2])]
    assert rto_items(service)[1] == ("rto_database_corruption", "ok", measured, "")
    assert check_rto_lines() == [f"RTO skip: {CONTAINER}", f"RTO ok: {measured}", f"RTO warn: {NEVER[1]}",
                                 f"RTO warn: {NEVER[2]}"]
    rows = {row["scenario"]: row for row in status()["rto"]}
    assert list(rows) == ["container_restart", "database_corruption", "host_failure", "volume_loss"]
    assert rows["database_corruption"] == {
        "scenario": "database_corruption", "state": "ok", "line": measured, "seconds": seconds,
        "guide_rto": "15-30 min", "target": "15-30 min", "run_id": str(drill.id),
        "measured_at": drill.finished_at.isoformat()}
    assert (rows["container_restart"]["state"], rows["container_restart"]["line"]) == ("stated", CONTAINER)
    assert (rows["volume_loss"]["state"], rows["volume_loss"]["seconds"]) == ("warn", None)


def test_an_old_measurement_warns_until_the_bound_allows_it(cli_env: Catalog, make_service: Any) -> None:
    service = cli_env.service
    drill = service.drill()
    assert drill.status == RunStatus.SUCCEEDED.value, drill.error
    with psycopg.connect(cli_env.url) as conn:
        conn.execute("UPDATE backup_runs SET finished_at = now() - interval '100 days' WHERE id = %s", (drill.id,))
    took = duration(drill.details["drill"]["rto_seconds"])
    old = f"database corruption: restored in {took} (target 15-30 min) 100 days ago"
    assert rto_items(service)[1] == ("rto_database_corruption", "warn", f"{old}; older than 90 days",
                                     "run `openwatch-backup drill`")
    assert check_rto_lines()[1] == f"RTO warn: {old}; older than 90 days"
    lenient = make_service(cli_env.url, cli_env.backup_dir, rto_max_age_days=200, rto_minutes=45)
    assert lines(lenient)[1] == ("ok", f"database corruption: restored in {took} (target 45 min) 100 days ago")


def test_the_host_drill_without_an_offsite_store_is_refused_before_anything_is_recorded(catalog: Catalog) -> None:
    service = catalog.service
    with pytest.raises(ConfigError) as refused:
        service.rto_drill("host")
    assert refused.value.message == NOT_CONFIGURED
    assert service.recorder.list(kind=DRILL_HOST) == []


def test_a_failing_host_drill_removes_its_recorded_scratch_targets(catalog: Catalog) -> None:
    """recover fails at once (no off-site store to read): the scratch targets recorded first are gone."""
    service = catalog.service
    run_id = service.recorder.create(DRILL_HOST, Trigger.CLI.value, "test")
    with pytest.raises(ConfigError) as failed:
        run_host_drill(service.context, run_id, [])
    assert failed.value.message == NOT_CONFIGURED
    run = service.get_run(str(run_id))
    assert (run.status, run.error_code) == (RunStatus.FAILED.value, failed.value.code)
    scratch = run.details["scratch"]
    assert scratch["database"] == scratch_name("hostdrill", run_id)
    assert scratch["folder"] == str(scratch_folder_root() / f"owbscratch_hostdrill_{run_id.hex[:12]}")
    assert (scratch["removed"], scratch["left"]) == (True, [])
    assert not Path(scratch["folder"]).exists()


def _killed_host_drill(service: BackupService, url: str, *, abandoned: bool) -> tuple[uuid.UUID, Path, str]:
    """A host drill as a kill leaves it: targets recorded and made, the run still running or abandoned."""
    run_id = service.recorder.create(DRILL_HOST, Trigger.SCHEDULE.value, "celery-beat")
    assert service.recorder.claim(run_id)
    folder = scratch_folder_root() / f"owbscratch_hostdrill_{run_id.hex[:12]}"
    database = scratch_name("hostdrill", run_id)
    service.recorder.progress(run_id, "recovering", details={"scratch": {"database": database, "folder": str(folder),
                                                                         "volumes": {}}})
    (folder / "config").mkdir(parents=True)
    (folder / "config" / ".env").write_text("SECRET=x\n")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    if abandoned:
        service.recorder.finish_unsuccessfully(run_id, RunStatus.ABANDONED, "abandoned", "no heartbeat")
    return run_id, folder, database


def databases(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'owbscratch%'")}


def test_the_sweeper_removes_a_killed_host_drills_scratch_and_nothing_else(catalog: Catalog) -> None:
    service = catalog.service
    _dead, dead_folder, dead_db = _killed_host_drill(service, catalog.url, abandoned=True)
    _live, live_folder, live_db = _killed_host_drill(service, catalog.url, abandoned=False)
    try:
        report = service.watchdog()
        assert report["scratch_folders"] == [str(dead_folder)]
        assert dead_db in report["scratch_databases"]
        assert live_db not in report["scratch_databases"]
        assert not dead_folder.exists()
        assert live_folder.exists()  # its run is still running: not the sweeper's
        assert dead_db not in databases(catalog.url)
        assert live_db in databases(catalog.url)
    finally:
        with psycopg.connect(catalog.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{live_db}"')
        import shutil

        shutil.rmtree(live_folder, ignore_errors=True)


def test_the_next_runs_include_the_drills_that_run_here(catalog: Catalog, make_service: Any, moto_endpoint: str,
                                                        bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from tests.support.offsite import s3_overrides

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    plain = make_service(catalog.url, catalog.backup_dir)
    assert set(plain.next_scheduled()) == {"backup", "drill"}  # no off-site store, no Docker API: no RTO drills
    offsite = make_service(catalog.url, catalog.backup_dir, **s3_overrides(moto_endpoint, bucket),
                           host_drill_schedule="0 5 1 * *")
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    upcoming = offsite.next_scheduled(now)
    assert set(upcoming) == {"backup", "drill", DRILL_HOST}
    assert upcoming[DRILL_HOST] == datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
