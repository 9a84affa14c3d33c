"""Nobody misses a failure: the worker POSTs 'run_failed' for a failed backup and the sweeper 'no_verified_backup'
when the newest verify is too old, to a real local HTTP receiver; the webhook URL is never stored."""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from sqlalchemy import text

from openwatch_backup.core.kinds import BackupKind, Compression, Trigger
from openwatch_backup.operations.backup import BackupRequest
from openwatch_backup.service import BackupService
from openwatch_backup.tasks import SWEEP, submit_backup
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    WebhookReceiver,
    all_runs,
    broker_url_fixture,
    client_app_fixture,
    describe_runs,
    files,
    module_redis_fixture,
    plugin_env,
    private_db_fixture,
    private_pg_fixture,
    processes_fixture,
    wait_for,
    wait_for_run,
    webhook_fixture,
)

SWEPT = r"Task openwatch_backup\.sweep\[[0-9a-f-]+\] succeeded"


def _catalog_text(service: BackupService) -> str:
    with service.engine.connect() as conn:
        runs = conn.execute(text("SELECT row_to_json(r)::text FROM backup_runs r")).scalars().all()
        settings = conn.execute(text("SELECT row_to_json(s)::text FROM backup_settings s")).scalars().all()
    return "\n".join([*runs, *settings])


def _settled(service: BackupService) -> bool:
    return all(r.status not in ("queued", "running") for r in all_runs(service))


def test_webhook_gets_failures_and_stale_verify_alerts(private_db: str, tmp_path: Path, make_service,
                                                        broker_url: str, processes: Processes, client_app: Celery,
                                                        webhook: WebhookReceiver) -> None:
    # The sweeper runs here: on a private server (see celery_support.private_pg), not the shared one.
    backup_dir = tmp_path / "backups"
    service = make_service(private_db, backup_dir)
    worker = processes.worker(plugin_env(private_db, backup_dir, broker_url, webhook_url=webhook.url,
                                         alert_after_hours=1))

    def context() -> str:
        return describe_runs(service) + "\n" + worker.tail()

    # A good backup and its verify: no alert.
    good, _ = service.request_backup_once(service.build_request(BackupKind.FULL), Trigger.API, "admin")
    submit_backup(client_app, service, good.id)
    wait_for_run(service, good.id, "succeeded", timeout=60, context=worker.tail)
    wait_for(lambda: [r for r in all_runs(service) if r.kind == "verify" and r.status == "succeeded"], timeout=30,
             what="the verify of the good backup", context=context)

    # A failing backup (a table that does not exist): one 'run_failed' POST, and the delivery is stored.
    failing, _ = service.request_backup_once(service.build_request(BackupKind.TABLES, tables=["no_such_table"]),
                                             Trigger.API, "admin")
    submit_backup(client_app, service, failing.id)
    failed = wait_for_run(service, failing.id, "failed", timeout=60, context=worker.tail)
    assert failed.error_code == "dump_failed"
    alert = wait_for(lambda: webhook.events("run_failed"), timeout=30, what="the run_failed POST", context=context)
    assert len(alert) == 1
    assert alert[0].path == f"/hooks/{webhook.token}"
    assert alert[0].content_type == "application/json"
    body = alert[0].body
    assert (body["event"], body["source"]) == ("run_failed", "openwatch-backup")
    assert (body["run"]["id"], body["run"]["status"], body["run"]["error_code"]) == (str(failing.id), "failed",
                                                                                      "dump_failed")
    assert body["message"] == f"tables run {failing.id} failed: {failed.error}"
    wait_for(lambda: service.get_run(str(failing.id)).details.get("notification"), timeout=10,
             what="the delivery to be stored on the run")
    assert service.get_run(str(failing.id)).details["notification"] == {"delivered": True, "status": 200,
                                                                         "attempts": 1}

    # The sweeper, with a fresh verify: no alert.
    sweeps = worker.count(SWEPT)
    client_app.send_task(SWEEP)
    worker.wait_for_log(SWEPT, timeout=30, count=sweeps + 1)
    assert webhook.events("no_verified_backup") == []

    # The newest verify made 2 hours old (OPENWATCH_BACKUP_ALERT_AFTER_HOURS=1): the sweeper alerts, once.
    with service.engine.begin() as conn:
        conn.execute(text("UPDATE backup_runs SET created_at = created_at - interval '2 hours', "
                          "started_at = started_at - interval '2 hours', "
                          "finished_at = finished_at - interval '2 hours' WHERE kind = 'verify'"))
    client_app.send_task(SWEEP)
    stale = wait_for(lambda: webhook.events("no_verified_backup"), timeout=30, what="the no_verified_backup POST",
                     context=context)
    assert stale[0].path == f"/hooks/{webhook.token}"
    assert 1.9 <= stale[0].body["hours"] <= 2.2
    assert stale[0].body["message"].startswith("no backup has verified for 2.0 h (OPENWATCH_BACKUP_ALERT_AFTER_HOURS")
    sweeps = worker.count(SWEPT)
    client_app.send_task(SWEEP)
    worker.wait_for_log(SWEPT, timeout=30, count=sweeps + 1)
    assert len(webhook.events("no_verified_backup")) == 1  # said once, not at every sweep

    assert sorted(d.body["event"] for d in webhook.deliveries) == ["no_verified_backup", "run_failed"]
    # The URL (and its token) is a secret: in no catalog row, no stored setting, no file.
    wait_for(lambda: _settled(service), timeout=30, what="every run to finish", context=context)
    stored = _catalog_text(service)
    assert webhook.url not in stored
    assert webhook.token not in stored
    for name in files(backup_dir):
        assert webhook.token.encode() not in (backup_dir / name).read_bytes()


def test_a_time_limited_run_is_alerted(bulky_db: str, tmp_path: Path, make_service, broker_url: str,
                                       processes: Processes, client_app: Celery, webhook: WebhookReceiver) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(bulky_db, backup_dir, time_limit_seconds=1)
    worker = processes.worker(plugin_env(bulky_db, backup_dir, broker_url, time_limit_seconds=1,
                                         webhook_url=webhook.url))
    run, _ = service.request_backup_once(BackupRequest(BackupKind.FULL, Compression.PG), Trigger.API, "admin")
    submit_backup(client_app, service, run.id)
    failed = wait_for_run(service, run.id, ("failed", "succeeded"), timeout=60, context=worker.tail)
    assert (failed.status, failed.error_code) == ("failed", "time_limit")
    worker.wait_for_log(r"Task openwatch_backup\.backup\[[0-9a-f-]+\] raised", timeout=30)
    assert [d.body["run"]["id"] for d in webhook.events("run_failed")] == [str(run.id)]
