"""Redis (OpenWatch's broker and result backend, no persistence) restarts: the run's outcome lives in the
catalog, not in Redis, so a backup running through a restart still ends succeeded and is verified."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from openwatch_backup import devstack
from openwatch_backup.core.kinds import BackupKind, Compression, Trigger
from openwatch_backup.operations.backup import BackupRequest
from openwatch_backup.tasks import submit_backup
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    all_runs,
    artifact_files,
    describe_runs,
    files,
    load_openwatch_app,
    plugin_env,
    private_db_fixture,
    private_pg_fixture,
    processes_fixture,
    restart_redis,
    wait_for,
    wait_for_dump,
    wait_for_run,
)

# pg_dump's own gzip: a dump of bulky_db takes ~3 s, long enough to restart Redis in the middle of it.
SLOW = BackupRequest(BackupKind.FULL, Compression.PG)
DISPATCHED = r"Task openwatch_backup\.dispatch\[[0-9a-f-]+\] succeeded"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[devstack.RedisHandle]:
    """A throwaway Redis this test owns and may restart (never the machine's 6379)."""
    handle = devstack.ensure_redis(tmp_path / "redis", reuse=False)
    try:
        yield handle
    finally:
        handle.stop()


def _queued_messages(url: str, queue: str = "maintenance") -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def test_redis_restart_mid_backup_keeps_the_outcome(bulky_db: str, tmp_path: Path, make_service,
                                                    own_redis: devstack.RedisHandle, processes: Processes) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(bulky_db, backup_dir)
    env = plugin_env(bulky_db, backup_dir, own_redis.url, heartbeat_seconds=1)
    app = load_openwatch_app(own_redis.url)
    try:
        worker = processes.worker(env)
        run, created = service.request_backup_once(SLOW, Trigger.API, "admin")
        assert created
        submit_backup(app, service, run.id)
        dump = wait_for_dump(worker, backup_dir)
        restart_redis(own_redis, down_seconds=1)
        assert dump.partial.exists() or service.get_run(str(run.id)).status == "succeeded"

        run = wait_for_run(service, run.id, ("succeeded", "failed", "cancelled", "abandoned"), timeout=60,
                           context=worker.tail)
        assert (run.status, run.error_code, run.error) == ("succeeded", None, None)
        assert files(backup_dir) == artifact_files(run)

        # The verify was queued once Redis was back. Celery 5.7.0 (not 5.6.2, OpenWatch's pin) exits with
        # "Unrecoverable error" when the broker goes away under an acks_late task (see the report); like the
        # container's restart policy, start the worker again if it went.
        def verified_or_worker_gone() -> str | None:
            verifies = [r for r in all_runs(service) if r.kind == "verify"]
            if verifies and verifies[0].status == "succeeded":
                return "verified"
            return None if worker.running() else "worker exited"

        outcome = wait_for(verified_or_worker_gone, timeout=60, what="the verify, or the worker to exit",
                           context=lambda: describe_runs(service) + worker.tail())
        if outcome == "worker exited":
            assert "Unrecoverable error" in worker.log()
            worker = processes.worker(env)
        verify = wait_for(lambda: [r for r in all_runs(service) if r.kind == "verify"], timeout=30,
                          what="the verify of the backup", context=lambda: describe_runs(service) + worker.tail())[0]
        assert verify.parent_id == run.id
        wait_for_run(service, verify.id, "succeeded", timeout=60, context=worker.tail)
        assert [r.kind for r in all_runs(service)] == ["full", "verify"]
    finally:
        app.close()


def test_a_backup_message_lost_with_redis_does_not_block_backups(private_db: str, tmp_path: Path, make_service,
                                                                 own_redis: devstack.RedisHandle,
                                                                 processes: Processes) -> None:
    # The sweeper runs here: on a private server (see celery_support.private_pg), not the shared one.
    backup_dir = tmp_path / "backups"
    service = make_service(private_db, backup_dir)
    app = load_openwatch_app(own_redis.url)
    try:
        # "Back up now" while the worker is down: the run is queued, its message waits in Redis...
        run, created = service.request_backup_once(service.build_request(BackupKind.FULL), Trigger.API, "admin")
        assert created
        submit_backup(app, service, run.id)
        assert _queued_messages(own_redis.url) == 1
        # ...and Redis restarts before a worker takes it.
        restart_redis(own_redis, down_seconds=0.2)
        assert _queued_messages(own_redis.url) == 0
        # Nightly sets off: a set's own dump must not stand in for the lost "Back up now" run checked below.
        env = plugin_env(private_db, backup_dir, own_redis.url, schedule="* * * * *", stale_after_seconds=6,
                         OWB_TEST_DISPATCH_SECONDS=2, OWB_TEST_SWEEP_SECONDS=2, nightly_set="off")
        worker = processes.worker(env)
        processes.beat(env)
        worker.wait_for_log(DISPATCHED, timeout=30, count=6)  # the dispatcher has had its chances
        assert [r for r in all_runs(service) if r.kind == "full" and r.status == "succeeded"], describe_runs(service)
    finally:
        app.close()
