"""One dump at a time, whatever the callers and the broker do: fifty simultaneous "Back up now" requests, and a
task delivered twice (acks_late + reject_on_worker_lost), each give exactly one dump."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from celery import Celery

from openwatch_backup.core.kinds import BackupKind, Trigger
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from openwatch_backup.tasks import submit_backup
from tests.celery_support import (  # noqa: F401 - fixtures
    Proc,
    Processes,
    WebhookReceiver,
    all_runs,
    artifact_files,
    broker_url_fixture,
    client_app_fixture,
    describe_runs,
    files,
    module_redis_fixture,
    plugin_env,
    processes_fixture,
    wait_for,
    wait_for_run,
    webhook_fixture,
)

BACKUP_DONE = r"Task openwatch_backup\.backup\[[0-9a-f-]+\] (succeeded|raised|failed)"


def _settled(service: BackupService) -> bool:
    return all(r.status not in ("queued", "running") for r in all_runs(service))


class DumpWatcher(threading.Thread):
    """Samples the worker's process session for dumping pg_dumps (not `pg_dump --version` probes): every pid
    seen and the most running at once."""

    def __init__(self, worker: Proc) -> None:
        super().__init__(name="pg_dump-watcher", daemon=True)
        self.worker = worker
        self.seen: set[int] = set()
        self.most_at_once = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pids = self.worker.dumping()
            self.seen.update(pids)
            self.most_at_once = max(self.most_at_once, len(pids))
            time.sleep(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def test_fifty_concurrent_requests_make_one_dump(bulky_db: str, tmp_path: Path, make_service, broker_url: str,
                                                  processes: Processes, client_app: Celery) -> None:
    # The bulky database: its dump lasts about a second, so the watcher's 20 ms samples cannot miss it (the sample
    # database's dump once ended between two samples in CI: seen 0).
    openwatch_db = bulky_db
    backup_dir = tmp_path / "backups"
    service = make_service(openwatch_db, backup_dir)
    # No verify after the backup here: the test below checks that duplicate deliveries queue only one.
    worker = processes.worker(plugin_env(openwatch_db, backup_dir, broker_url, heartbeat_seconds=1,
                                         verify_after_backup="false"))
    watcher = DumpWatcher(worker)
    watcher.start()
    request = service.build_request(BackupKind.FULL)
    # Ten API processes' worth of connection pools (up to 40 transactions at once), not one pool of four.
    pools = [BackupService(load_settings(database_url=openwatch_db, dir=backup_dir)) for _ in range(10)]
    clicked = threading.Barrier(50)
    requested = threading.Barrier(50)
    answers: list[tuple[uuid.UUID, bool]] = []
    errors: list[BaseException] = []

    def click(n: int) -> None:
        try:
            clicked.wait(timeout=30)  # fifty requests at the same moment...
            run, created = pools[n % 10].request_backup_once(request, Trigger.API, f"admin{n}")
            answers.append((run.id, created))
            requested.wait(timeout=30)  # ...all answered before the first dump could finish
            submit_backup(client_app, service, run.id)  # every caller sends: fifty deliveries of the one run
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for pool in pools:
        pool.close()
    assert errors == []
    assert len(answers) == 50
    assert len({run_id for run_id, _ in answers}) == 1
    assert sorted(created for _, created in answers) == [False] * 49 + [True]
    run_id = answers[0][0]
    try:
        run = wait_for_run(service, run_id, "succeeded", timeout=60, context=worker.tail)
        worker.wait_for_log(BACKUP_DONE, timeout=120, count=50)  # every delivery has been handled
    finally:
        watcher.stop()
    assert [r.id for r in all_runs(service)] == [run_id]
    assert files(backup_dir) == artifact_files(run)
    assert (len(watcher.seen), watcher.most_at_once) == (1, 1)


def test_a_task_delivered_twice_dumps_once(bulky_db: str, tmp_path: Path, make_service, broker_url: str,
                                           processes: Processes, client_app: Celery) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(bulky_db, backup_dir)
    worker = processes.worker(plugin_env(bulky_db, backup_dir, broker_url, heartbeat_seconds=1))
    watcher = DumpWatcher(worker)
    watcher.start()
    run, created = service.request_backup_once(service.build_request(BackupKind.FULL), Trigger.API, "admin")
    assert created
    submit_backup(client_app, service, run.id)
    submit_backup(client_app, service, run.id)  # the broker delivers it again (two pool processes take both)
    try:
        run = wait_for_run(service, run.id, "succeeded", timeout=90, context=worker.tail)
        worker.wait_for_log(BACKUP_DONE, timeout=90, count=2)
        wait_for(lambda: _settled(service), timeout=60, what="the verify to finish",
                 context=lambda: describe_runs(service))
    finally:
        watcher.stop()
    assert [r.id for r in all_runs(service) if r.kind == "full"] == [run.id]
    assert (run.status, run.error_code, run.error) == ("succeeded", None, None)
    assert files(backup_dir) == artifact_files(run)
    assert (len(watcher.seen), watcher.most_at_once) == (1, 1)


def test_a_duplicate_delivery_queues_no_second_verify(openwatch_db: str, tmp_path: Path, make_service,
                                                      broker_url: str, processes: Processes,
                                                      client_app: Celery) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(openwatch_db, backup_dir)
    worker = processes.worker(plugin_env(openwatch_db, backup_dir, broker_url), concurrency=1)
    run, _ = service.request_backup_once(service.build_request(BackupKind.FULL), Trigger.API, "admin")
    submit_backup(client_app, service, run.id)
    submit_backup(client_app, service, run.id)  # handled after the first has finished (one pool process)
    worker.wait_for_log(BACKUP_DONE, timeout=60, count=2)
    wait_for(lambda: _settled(service), timeout=60, what="every run to finish", context=lambda: describe_runs(service))
    verifies = [r for r in all_runs(service) if r.kind == "verify"]
    assert [r.parent_id for r in verifies] == [run.id], describe_runs(service)


def test_a_duplicate_delivery_does_not_fail_the_running_run(bulky_db: str, tmp_path: Path, make_service,
                                                             broker_url: str, processes: Processes,
                                                             client_app: Celery, webhook: WebhookReceiver) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(bulky_db, backup_dir)
    worker = processes.worker(plugin_env(bulky_db, backup_dir, broker_url, heartbeat_seconds=1,
                                         lock_wait_seconds=0, webhook_url=webhook.url))
    run, _ = service.request_backup_once(service.build_request(BackupKind.FULL), Trigger.API, "admin")
    submit_backup(client_app, service, run.id)
    submit_backup(client_app, service, run.id)  # both pool processes take one: the deliveries overlap
    seen: set[tuple[str, str | None]] = set()

    def finished() -> bool:
        current = service.get_run(str(run.id))
        seen.add((current.status, current.error_code))
        return worker.count(BACKUP_DONE) >= 2 and _settled(service)

    wait_for(finished, timeout=90, what="both deliveries and the verify to finish", interval=0.02,
             context=lambda: describe_runs(service) + "\n" + worker.tail())
    final = service.get_run(str(run.id))
    assert (final.status, final.error_code) == ("succeeded", None)
    assert webhook.deliveries == []  # no "run_failed" alert for a backup that succeeded
    assert "notification" not in final.details
    assert seen <= {("queued", None), ("running", None), ("succeeded", None)}
