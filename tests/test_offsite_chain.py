"""The Celery chain with off-site on, in OpenWatch's real worker: backup -> verify -> offsite -> prune.

A copy that fails (the endpoint down) alerts, the prune still follows, and the sweeper retries the copy once the
endpoint is back. Real Redis, PostgreSQL (a private server: the sweeper runs), moto's S3 server over HTTP behind
the fault proxy, a local webhook receiver.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import text

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import Trigger
from openwatch_backup.service import BackupService
from openwatch_backup.tasks import SWEEP, submit_backup
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    WebhookReceiver,
    all_runs,
    broker_url_fixture,
    client_app_fixture,
    describe_runs,
    module_redis_fixture,
    plugin_env,
    private_db_fixture,
    private_pg_fixture,
    processes_fixture,
    wait_for,
    wait_for_run,
    webhook_fixture,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.moto_server import open_uploads, stored
from tests.support.offsite import s3_overrides

pytestmark = [pytest.mark.slow]

SETTLE = 120


def chain_of(service: BackupService, backup: BackupRun) -> list[BackupRun]:
    """The runs the chain made after `backup` (its verify and offsite, then the prune), oldest first."""
    return [r for r in all_runs(service) if r.created_at >= backup.created_at]


def _settled(service: BackupService) -> bool:
    return all(r.status not in ("queued", "running") for r in all_runs(service))


def test_backup_verify_offsite_prune_and_a_failed_copy_retried_by_the_sweeper(
        private_db: str, tmp_path: Path, make_service, broker_url: str, processes: Processes, client_app: Celery,
        webhook: WebhookReceiver, proxy: FaultProxy, moto_endpoint: str, bucket: str) -> None:
    backup_dir = tmp_path / "backups"
    s3 = s3_overrides(proxy.url, bucket)
    service = make_service(private_db, backup_dir, **s3)
    worker = processes.worker(plugin_env(private_db, backup_dir, broker_url, webhook_url=webhook.url, **s3))

    def context() -> str:
        return describe_runs(service) + "\n" + worker.tail(80)

    def prunes() -> list[BackupRun]:
        return [r for r in all_runs(service) if r.kind == "prune" and r.status not in ("queued", "running")]

    # 1. The whole chain, the endpoint up.
    first, _ = service.request_backup_once(service.build_request(), Trigger.SCHEDULE, "celery-beat")
    submit_backup(client_app, service, first.id)
    wait_for(lambda: prunes(), timeout=SETTLE, what="the chain's prune", context=context)
    wait_for(lambda: _settled(service), timeout=SETTLE, what="every run to finish", context=context)
    runs = chain_of(service, service.get_run(str(first.id)))
    assert [(r.kind, r.status) for r in runs] == [("full", "succeeded"), ("verify", "succeeded"),
                                                  ("offsite", "succeeded"), ("prune", "succeeded")], context()
    assert runs[1].parent_id == runs[2].parent_id == first.id
    assert runs[3].requested_by == f"after offsite {str(runs[2].id)[:8]}"
    backup = service.get_run(str(first.id))
    artifact = str(backup.details["artifact"])
    body, metadata = stored(moto_endpoint, bucket, f"postgres/{artifact}")
    assert body == (backup_dir / "postgres" / artifact).read_bytes()
    assert metadata == {"sha256": backup.sha256}
    s3_copy = service.copies.get(first.id, CopyStorage.S3)
    assert s3_copy is not None
    assert (s3_copy.state, s3_copy.size_bytes, s3_copy.sha256) == ("verified", backup.size_bytes, backup.sha256)
    assert webhook.events("run_failed") == []

    # 2. The endpoint down for the whole copy: the offsite run fails and alerts, the prune still runs, the local
    # file is kept.
    proxy.down = True
    second, _ = service.request_backup_once(service.build_request(), Trigger.SCHEDULE, "celery-beat")
    submit_backup(client_app, service, second.id)
    wait_for(lambda: len(prunes()) == 2 or None, timeout=SETTLE, what="the second chain's prune", context=context)
    wait_for(lambda: _settled(service), timeout=SETTLE, what="every run to finish", context=context)
    runs = chain_of(service, service.get_run(str(second.id)))
    assert [(r.kind, r.status) for r in runs] == [("full", "succeeded"), ("verify", "succeeded"),
                                                  ("offsite", "failed"), ("prune", "succeeded")], context()
    failed = runs[2]
    assert failed.error_code == "storage_unreachable"
    alerts = wait_for(lambda: webhook.events("run_failed"), timeout=30, what="the run_failed POST", context=context)
    assert [a.body["run"]["id"] for a in alerts] == [str(failed.id)]
    assert alerts[0].body["message"] == f"offsite run {failed.id} failed: {failed.error}"
    s3_copy = service.copies.get(second.id, CopyStorage.S3)
    assert s3_copy is not None
    assert (s3_copy.state, s3_copy.error) == ("failed", failed.error)
    second_run = service.get_run(str(second.id))
    local = backup_dir / "postgres" / str(second_run.details["artifact"])
    assert local.exists()
    assert service.copies.get(second.id, CopyStorage.LOCAL).state == "verified"  # type: ignore[union-attr]

    # 3. The endpoint back: the sweeper retries the newest verified backup's copy (not within
    # OPENWATCH_BACKUP_STALE_AFTER_SECONDS of the last try: the failed one is made older than that).
    proxy.down = False
    with service.engine.begin() as conn:
        conn.execute(text("UPDATE backup_runs SET created_at = created_at - interval '1 hour' WHERE id = :id"),
                     {"id": failed.id})
    client_app.send_task(SWEEP)

    def retried() -> BackupRun | None:
        found = [r for r in all_runs(service) if r.kind == "offsite" and r.parent_id == second.id
                 and r.id != failed.id and r.status == "succeeded"]
        return found[0] if found else None

    retry = wait_for(retried, timeout=SETTLE, what="the sweeper's off-site retry", context=context)
    assert (retry.trigger, retry.requested_by) == ("schedule", "sweeper (off-site retry)")
    s3_copy = service.copies.get(second.id, CopyStorage.S3)
    assert s3_copy is not None
    assert (s3_copy.state, s3_copy.attempts, s3_copy.error) == ("verified", 2, None)
    body, _ = stored(moto_endpoint, bucket, f"postgres/{second_run.details['artifact']}")
    assert body == local.read_bytes()
    assert open_uploads(moto_endpoint, bucket) == []
    wait_for(lambda: _settled(service), timeout=SETTLE, what="every run to finish", context=context)
    assert len(webhook.events("run_failed")) == 1
