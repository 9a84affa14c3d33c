"""A worker killed mid-dump: the sweeper (beat) marks the run abandoned and removes its partial file, the
redelivered task (acks_late + reject_on_worker_lost) starts no second dump, and the next backup succeeds."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from celery import Celery

from openwatch_backup.core.kinds import BackupKind, Compression, Trigger
from openwatch_backup.operations.backup import BackupRequest
from openwatch_backup.tasks import submit_backup
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    alive,
    all_runs,
    artifact_files,
    broker_url_fixture,
    client_app_fixture,
    describe_runs,
    files,
    module_redis_fixture,
    partial_files,
    pg_dumps_for,
    plugin_env,
    private_bulky_db_fixture,
    private_pg_fixture,
    processes_fixture,
    scratch_databases,
    wait_for,
    wait_for_dump,
    wait_for_run,
)

STALE_AFTER = 6
SLOW = BackupRequest(BackupKind.FULL, Compression.PG)


def test_killed_pool_process_run_is_abandoned_swept_and_not_redone(private_bulky_db: str, tmp_path: Path,
                                                                    make_service, broker_url: str,
                                                                    processes: Processes, client_app: Celery) -> None:
    # The sweeper runs here: on a private server (see celery_support.private_pg), not the shared one.
    backup_dir = tmp_path / "backups"
    service = make_service(private_bulky_db, backup_dir)
    env = plugin_env(private_bulky_db, backup_dir, broker_url, heartbeat_seconds=1, stale_after_seconds=STALE_AFTER,
                     OWB_TEST_SWEEP_SECONDS=2, OWB_TEST_DISPATCH_SECONDS=3600)
    worker = processes.worker(env)
    beat = processes.beat(env)
    # pg_dump's own gzip keeps pg_dump busy for the whole dump (~3 s here): time to kill it in the middle.
    run, created = service.request_backup_once(SLOW, Trigger.API, "admin")
    assert created
    submit_backup(client_app, service, run.id)

    dump = wait_for_dump(worker, backup_dir)
    # What the sweeper does meanwhile leaves a live run alone: its heartbeat is fresh, its partial file is its own.
    report = service.watchdog()
    assert (report["abandoned"], report["partial_files"]) == ([], [])
    assert dump.partial.exists()
    assert alive(dump.pg_dump)
    assert pg_dumps_for(service.target.dbname) == [dump.pg_dump]

    os.kill(dump.pool_process, signal.SIGKILL)
    killed_at = time.monotonic()
    worker.wait_for_log(rf"pid:{dump.pool_process} exited with 'signal 9 \(SIGKILL\)'", timeout=15)
    assert service.get_run(str(run.id)).status == "running"
    # reject_on_worker_lost puts the message back: the same task is received again, finds the run no longer
    # queued and returns without dumping.
    task_ids = set(re.findall(r"Task openwatch_backup\.backup\[([0-9a-f-]+)\] received", worker.log()))
    assert len(task_ids) == 1
    task_id = task_ids.pop()
    worker.wait_for_log(rf"Task openwatch_backup\.backup\[{task_id}\] received", timeout=15, count=2)
    worker.wait_for_log(rf"Task openwatch_backup\.backup\[{task_id}\] succeeded", timeout=30)
    assert re.search(rf"backup\[{task_id}\] succeeded in [0-9.e-]+s: .*'success': False.*'status': 'running'",
                     worker.log())
    # The orphaned pg_dump goes too (its pipe's reader is dead), and no other dump started.
    wait_for(lambda: not alive(dump.pg_dump), timeout=15, what=f"the orphaned pg_dump {dump.pg_dump} to exit")
    assert worker.dumping() == []
    assert pg_dumps_for(service.target.dbname) == []

    abandoned = wait_for_run(service, run.id, "abandoned", timeout=STALE_AFTER + 20,
                             context=lambda: worker.tail() + "\n" + beat.tail())
    assert abandoned.heartbeat_at is not None
    assert abandoned.finished_at is not None
    # Not before the heartbeat had been stale for OPENWATCH_BACKUP_STALE_AFTER_SECONDS.
    assert (abandoned.finished_at - abandoned.heartbeat_at).total_seconds() >= STALE_AFTER
    assert time.monotonic() - killed_at < STALE_AFTER + 15
    assert abandoned.error_code == "abandoned"
    assert abandoned.error is not None
    assert abandoned.error.startswith("no heartbeat since ")
    assert abandoned.phase == "dumping"
    wait_for(lambda: not partial_files(backup_dir), timeout=10, what="the sweeper to remove the partial file")
    assert files(backup_dir) == []
    assert scratch_databases(service, all_runs(service)) == []
    assert worker.dumping() == []
    assert [r.kind for r in all_runs(service)] == ["full"]  # no verify of an abandoned backup, no second run

    # The next backup, on a fresh worker, succeeds.
    beat.stop()
    worker.stop()
    fresh = processes.worker(env)
    again, created = service.request_backup_once(service.build_request(BackupKind.FULL), Trigger.API, "admin")
    assert created
    submit_backup(client_app, service, again.id)
    again = wait_for_run(service, again.id, "succeeded", timeout=60, context=fresh.tail)
    assert files(backup_dir) == artifact_files(again)
    assert service.get_run(str(run.id)).status == "abandoned"
    wait_for(lambda: all(r.status not in ("queued", "running") for r in all_runs(service)), timeout=30,
             what="the verify to finish", context=lambda: describe_runs(service))
