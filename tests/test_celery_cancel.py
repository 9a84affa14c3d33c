"""Stopping a dump from outside: `revoke(task_id, terminate=True)` cancels the run, a soft time limit fails it
('time_limit'); either way pg_dump is gone, no partial file is left and the worker lives on."""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from sqlalchemy import text

from openwatch_backup.core.kinds import BackupKind, Compression, Trigger
from openwatch_backup.operations.backup import BackupRequest
from openwatch_backup.service import BackupService
from openwatch_backup.tasks import BACKUP, submit_backup
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    all_runs,
    broker_url_fixture,
    client_app_fixture,
    files,
    module_redis_fixture,
    pg_dumps_for,
    plugin_env,
    processes_fixture,
    wait_for,
    wait_for_dump,
    wait_for_run,
)

# pg_dump's own gzip keeps pg_dump itself busy for the whole dump (~3 s on bulky_db).
SLOW = BackupRequest(BackupKind.FULL, Compression.PG)


def _pg_dump_sessions(service: BackupService, database: str) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND "
                                     "application_name = 'pg_dump'"), {"db": database}).scalar_one())


def test_revoke_terminate_cancels_the_run(bulky_db: str, tmp_path: Path, make_service, broker_url: str,
                                          processes: Processes, client_app: Celery) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(bulky_db, backup_dir)
    worker = processes.worker(plugin_env(bulky_db, backup_dir, broker_url, heartbeat_seconds=1))
    run, created = service.request_backup_once(SLOW, Trigger.API, "admin")
    assert created
    task = client_app.send_task(BACKUP, args=[str(run.id)])  # what an API keeps to offer "Cancel"
    dump = wait_for_dump(worker, backup_dir)
    assert _pg_dump_sessions(service, service.target.dbname) == 1
    assert pg_dumps_for(service.target.dbname) == [dump.pg_dump]

    client_app.control.revoke(task.id, terminate=True)

    run = wait_for_run(service, run.id, ("cancelled", "failed", "succeeded"), timeout=30, context=worker.tail)
    assert (run.status, run.error_code, run.phase) == ("cancelled", "cancelled", "dumping")
    assert run.error is not None
    assert "cancelled by signal SIGTERM" in run.error
    wait_for(lambda: worker.pids_named("pg_dump") == [], timeout=10, what="pg_dump to be gone",
             context=lambda: str(worker.members()))
    assert pg_dumps_for(service.target.dbname) == []
    assert not dump.partial.exists()
    assert files(backup_dir) == []
    wait_for(lambda: _pg_dump_sessions(service, service.target.dbname) == 0, timeout=10,
             what="pg_dump's server session to end")
    assert [r.kind for r in all_runs(service)] == ["full"]  # no verify of a cancelled backup
    # The worker lives on: the next backup runs.
    again, created = service.request_backup_once(service.build_request(BackupKind.FULL), Trigger.API, "admin")
    assert created
    submit_backup(client_app, service, again.id)
    wait_for_run(service, again.id, "succeeded", timeout=60, context=worker.tail)
    assert worker.running()


def test_soft_time_limit_fails_the_run_cleanly(bulky_db: str, tmp_path: Path, make_service, broker_url: str,
                                               processes: Processes, client_app: Celery) -> None:
    backup_dir = tmp_path / "backups"
    # The limit travels with the task: submit_backup sends the sender's OPENWATCH_BACKUP_TIME_LIMIT_SECONDS.
    service = make_service(bulky_db, backup_dir, time_limit_seconds=1)
    worker = processes.worker(plugin_env(bulky_db, backup_dir, broker_url, heartbeat_seconds=1,
                                         time_limit_seconds=1))
    run, created = service.request_backup_once(SLOW, Trigger.API, "admin")
    assert created
    submit_backup(client_app, service, run.id)

    run = wait_for_run(service, run.id, ("failed", "succeeded", "cancelled"), timeout=60, context=worker.tail)
    assert (run.status, run.error_code) == ("failed", "time_limit")
    assert run.error == ("the run exceeded its time limit of 1 s (OPENWATCH_BACKUP_TIME_LIMIT_SECONDS); pg_dump was "
                         "stopped and its partial file removed")
    worker.wait_for_log(r"Task openwatch_backup\.backup\[[0-9a-f-]+\] raised unexpected: SoftTimeLimitExceeded",
                        timeout=30)
    wait_for(lambda: worker.pids_named("pg_dump") == [], timeout=10, what="pg_dump to be gone",
             context=lambda: str(worker.members()))
    assert pg_dumps_for(service.target.dbname) == []
    assert files(backup_dir) == []
    wait_for(lambda: _pg_dump_sessions(service, service.target.dbname) == 0, timeout=10,
             what="pg_dump's server session to end")
    assert [r.kind for r in all_runs(service)] == ["full"]
    assert worker.running()
