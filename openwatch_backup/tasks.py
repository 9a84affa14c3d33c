"""Celery tasks in OpenWatch's worker: thin over BackupService. The only module that imports celery tasks.

OpenWatch adds one line to backend/app/celery_app.py after its `conf.update(...)`:

    from openwatch_backup.tasks import install; install(celery_app)

`install` registers the tasks, routes them to the `maintenance` queue and adds two beat entries: the
dispatcher (every minute: queues the scheduled backup and drill when due) and the sweeper (abandoned
runs, leftovers, "no verified backup" alerts). Listing "openwatch_backup.tasks" in the app's `include`
registers the tasks too; `install` is still what adds the routes and the beat entries.

Every task carries a run id created by whoever asked (beat, CLI, API); a task delivered twice finds its
run already claimed and does nothing. Failures are recorded on the run and raised, so the task fails.
"""

from __future__ import annotations

import logging
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from celery import Celery, shared_task

from openwatch_backup.core.kinds import RunStatus, Trigger
from openwatch_backup.errors import BackupError, RunCancelled
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

log = logging.getLogger(__name__)

BACKUP = "openwatch_backup.backup"
VERIFY = "openwatch_backup.verify"
PRUNE = "openwatch_backup.prune"
DRILL = "openwatch_backup.drill"
RESTORE = "openwatch_backup.restore"
DISPATCH = "openwatch_backup.dispatch"
SWEEP = "openwatch_backup.sweep"
OFFSITE = "openwatch_backup.offsite"
DRILL_VOLUME = "openwatch_backup.drill_volume"
DRILL_HOST = "openwatch_backup.drill_host"
SET = "openwatch_backup.set"
TASK_NAMES = (BACKUP, VERIFY, PRUNE, DRILL, RESTORE, DISPATCH, SWEEP, OFFSITE, DRILL_VOLUME, DRILL_HOST, SET)
# The task of each queued run kind that is not a backup (backup kinds run BACKUP).
KIND_TASKS = {"verify": VERIFY, "prune": PRUNE, "drill": DRILL, "restore": RESTORE, "offsite": OFFSITE,
              "drill_volume": DRILL_VOLUME, "drill_host": DRILL_HOST, "set": SET}
HARD_LIMIT_MARGIN = 300


class RunFailed(Exception):
    """Raised by a task whose run did not succeed, so Celery records the task as failed too."""


def install(app: Celery, *, queue: str = "maintenance", dispatch_seconds: float = 60.0,
            sweep_seconds: float = 300.0) -> None:
    """Route the plugin's tasks to `queue` and add the dispatcher and sweeper to beat."""
    routes = app.conf.task_routes
    route = {name: {"queue": queue} for name in TASK_NAMES}
    if routes is None:
        app.conf.task_routes = route
    elif isinstance(routes, dict):
        routes.update(route)
    else:  # a list or tuple of routers: ours goes first
        app.conf.task_routes = [route, *routes]
    schedule = dict(app.conf.beat_schedule or {})
    schedule["openwatch-backup-dispatch"] = {"task": DISPATCH, "schedule": dispatch_seconds,
                                             "options": {"queue": queue, "expires": dispatch_seconds}}
    schedule["openwatch-backup-sweep"] = {"task": SWEEP, "schedule": sweep_seconds,
                                          "options": {"queue": queue, "expires": sweep_seconds}}
    app.conf.beat_schedule = schedule


@contextmanager
def _service() -> Iterator[BackupService]:
    with BackupService(load_settings()) as service:
        yield service


@contextmanager
def _cancellable() -> Iterator[None]:
    """`revoke(task_id, terminate=True)` sends SIGTERM to the pool process: end the run cleanly (kill pg_dump,
    remove the partial file, status cancelled) instead of dying mid-write."""
    def cancel(signum: int, _frame: FrameType | None) -> None:
        raise RunCancelled(f"cancelled by signal {signal.Signals(signum).name} (task revoked or worker stopping)")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _limits(service: BackupService) -> dict[str, Any]:
    soft = service.settings.time_limit_seconds
    return {"soft_time_limit": soft, "time_limit": soft + HARD_LIMIT_MARGIN, "queue": service.settings.queue}


def _outcome(service: BackupService, run_id: uuid.UUID) -> dict[str, Any]:
    run = service.get_run(str(run_id))
    result = {"success": run.status == RunStatus.SUCCEEDED.value, "run_id": str(run.id), "kind": run.kind,
              "status": run.status}
    if run.status in (RunStatus.FAILED.value, RunStatus.ABANDONED.value):
        service.alert_failure(run)
    if not result["success"] and run.status != RunStatus.RUNNING.value:
        raise RunFailed(f"{run.kind} run {run.id} {run.status}: {run.error}")
    return result


def _run(service: BackupService, run_id: uuid.UUID, work: Any) -> dict[str, Any]:
    try:
        with _cancellable():
            work()
    except BackupError:
        pass  # recorded on the run; _outcome raises RunFailed with it
    except BaseException:
        # A soft time limit or an unexpected error: recorded on the run by the operation; alert before re-raising.
        run = service.get_run(str(run_id))
        if run.status in (RunStatus.FAILED.value, RunStatus.ABANDONED.value):
            service.alert_failure(run)
        raise
    return _outcome(service, run_id)


def _send(app: Celery, task: str, run_id: uuid.UUID, service: BackupService) -> None:
    """Send a follow-up task; if the broker is away, the sweeper re-sends the queued run later."""
    try:
        app.send_task(task, args=[str(run_id)], **_limits(service))
    except Exception as exc:
        log.warning("could not send %s for run %s (%s); the sweeper will re-send it", task, run_id,
                    type(exc).__name__)


def submit_backup(app: Celery, service: BackupService, run_id: uuid.UUID) -> None:
    app.send_task(BACKUP, args=[str(run_id)], **_limits(service))


@shared_task(name=BACKUP, bind=True, acks_late=True, reject_on_worker_lost=True)
def backup_task(self: Any, run_id: str) -> dict[str, Any]:
    with _service() as service:
        rid = uuid.UUID(run_id)
        result = _run(service, rid, lambda: service.execute_backup(rid))
        run = service.get_run(run_id)
        # Once per backup: a redelivered task finds its verify already there.
        if result["success"] and service.settings.verify_after_backup and \
                not service.recorder.list(limit=1, kind="verify", parent_id=run.id):
            verify = service.request_verify(run, trigger=Trigger(run.trigger),
                                            requested_by=f"after backup {run_id[:8]}")
            _send(self.app, VERIFY, verify, service)
        return result


@shared_task(name=VERIFY, bind=True, acks_late=True, reject_on_worker_lost=True)
def verify_task(self: Any, run_id: str) -> dict[str, Any]:
    with _service() as service:
        rid = uuid.UUID(run_id)
        result = _run(service, rid, lambda: service.execute_verify(rid))
        run = service.get_run(run_id)
        if not result["success"]:
            return result  # never copy or prune on the strength of a failure
        # Retention only after a scheduled backup that verified. With off-site on, the copy goes first and queues
        # the prune itself (copied or not: retention keeps a local file until its off-site copy verified).
        then_prune = run.trigger == Trigger.SCHEDULE.value and service.settings.prune_after_verify
        if service.settings.s3_bucket:
            _queue_offsite(self.app, service, run, then_prune)
        elif then_prune:
            _queue_prune(self.app, service, f"after verify {run_id[:8]}")
        return result


def _queue_prune(app: Celery, service: BackupService, requested_by: str) -> None:
    prune = service.request_prune(trigger=Trigger.SCHEDULE, requested_by=requested_by)
    if prune is not None:
        _send(app, PRUNE, prune, service)


def _queue_offsite(app: Celery, service: BackupService, verify: Any, then_prune: bool) -> None:
    """Once per backup: a redelivered verify finds its offsite run already there (and that run queues the prune)."""
    backup = service.get_run(str(verify.parent_id))
    if service.recorder.list(limit=1, kind="offsite", parent_id=backup.id):
        return
    try:
        offsite = service.request_offsite(backup, trigger=Trigger(verify.trigger),
                                          requested_by=f"after verify {str(verify.id)[:8]}", then_prune=then_prune)
    except BackupError as exc:  # pruned meanwhile, off-site storage unusable: the prune still follows
        log.error("no off-site copy of backup %s: %s", backup.id, exc)
        if then_prune:
            _queue_prune(app, service, f"after verify {str(verify.id)[:8]}")
        return
    _send(app, OFFSITE, offsite, service)


@shared_task(name=OFFSITE, bind=True, acks_late=True, reject_on_worker_lost=True)
def offsite_task(self: Any, run_id: str) -> dict[str, Any]:
    """Copy a verified backup off-site; then the chain's prune, whether the copy verified or failed (a failed
    copy alerts through _outcome, and the sweeper retries it)."""
    with _service() as service:
        rid = uuid.UUID(run_id)
        try:
            return _run(service, rid, lambda: service.execute_offsite(rid))
        finally:
            run = service.get_run(run_id)
            if run.details.get("then_prune") and RunStatus(run.status).is_final and \
                    not run.details.get("prune_queued"):
                service.recorder.add_details(rid, {"prune_queued": True})  # once, whichever delivery ends it
                _queue_prune(self.app, service, f"after offsite {run_id[:8]}")


@shared_task(name=SET, bind=True, acks_late=True, reject_on_worker_lost=True)
def set_task(self: Any, run_id: str) -> dict[str, Any]:
    """The nightly set (service/sets.py): its members backed up, verified and copied off-site in this one task,
    then the scheduled prune, which keeps or deletes the set as a unit."""
    from openwatch_backup.service.sets import execute_set

    with _service() as service:
        rid = uuid.UUID(run_id)
        try:
            return _run(service, rid, lambda: execute_set(service, rid))
        finally:
            run = service.get_run(run_id)
            if service.settings.prune_after_verify and RunStatus(run.status).is_final and \
                    not run.details.get("prune_queued"):
                service.recorder.add_details(rid, {"prune_queued": True})  # once, whichever delivery ends it
                _queue_prune(self.app, service, f"after set {run_id[:8]}")


@shared_task(name=PRUNE, acks_late=True, reject_on_worker_lost=True)
def prune_task(run_id: str) -> dict[str, Any]:
    with _service() as service:
        rid = uuid.UUID(run_id)
        return _run(service, rid, lambda: service.execute_prune(rid))


@shared_task(name=DRILL, acks_late=True, reject_on_worker_lost=True)
def drill_task(run_id: str) -> dict[str, Any]:
    with _service() as service:
        rid = uuid.UUID(run_id)
        return _run(service, rid, lambda: service.execute_drill(rid))


@shared_task(name=DRILL_VOLUME, acks_late=True, reject_on_worker_lost=True)
def drill_volume_task(run_id: str) -> dict[str, Any]:
    """The volume-loss drill (operations/volume_drill.py): a scratch volume, removed in every outcome."""
    with _service() as service:
        rid = uuid.UUID(run_id)
        return _run(service, rid, lambda: service.execute_volume_drill(rid))


@shared_task(name=DRILL_HOST, acks_late=True, reject_on_worker_lost=True)
def drill_host_task(run_id: str) -> dict[str, Any]:
    """The full-system drill (operations/host_drill.py): recover into scratch targets, removed in every outcome."""
    with _service() as service:
        rid = uuid.UUID(run_id)
        return _run(service, rid, lambda: service.execute_host_drill(rid))


@shared_task(name=RESTORE, acks_late=True, reject_on_worker_lost=True)
def restore_task(run_id: str) -> dict[str, Any]:
    """A restore asked for through the API (only when OPENWATCH_BACKUP's "allow restore" setting is on)."""
    with _service() as service:
        rid = uuid.UUID(run_id)
        return _run(service, rid, lambda: service.execute_restore(rid))


def submit(app: Celery, kind: str, run_id: uuid.UUID, service: BackupService) -> None:
    """Send the task for a queued run of `kind` (backup kinds, verify, prune, drill, restore, offsite)."""
    task = KIND_TASKS.get(kind, BACKUP)
    app.send_task(task, args=[str(run_id)], **_limits(service))


@contextmanager
def _tick(task: str, outcome: dict[str, Any]) -> Iterator[None]:
    """A beat tick that meets one of our own errors (the catalog not migrated yet, the database down, a bad
    setting) logs its one line and answers {"success": False, ...}, as OpenWatch's tasks do, instead of a
    traceback in the worker's log every minute until someone runs `openwatch-backup db upgrade`."""
    try:
        yield
    except BackupError as exc:
        log.error("%s: %s", task, exc)
        outcome.update({"success": False, "error_code": exc.code, "error": str(exc)})


@shared_task(name=DISPATCH, bind=True)
def dispatch_task(self: Any) -> dict[str, Any]:
    """Beat's tick: queue the scheduled backup and drill when their cron expression says so, and a config bundle
    when its inputs changed (checked every config_check_minutes)."""
    outcome: dict[str, Any] = {}
    with _tick(DISPATCH, outcome), _service() as service:
        # The config bundle's on-change check first and on its own: a database schedule that cannot be
        # evaluated (dispatch_due raises its line) must not leave a queued bundle unsent. Its chain (verify,
        # off-site, prune) is the database's: backup_task and verify_task follow the run's kind-blind trigger.
        queued = service.dispatch_config()
        for _kind, run_id in queued:
            self.app.send_task(BACKUP, args=[str(run_id)], **_limits(service))
        for kind, run_id in service.dispatch_due():
            queued.append((kind, run_id))
            task = KIND_TASKS.get(kind, BACKUP)  # "backup", "redis" and "volume" run BACKUP
            self.app.send_task(task, args=[str(run_id)], **_limits(service))
        outcome.update({"success": True, "queued": [{"kind": k, "run_id": str(r)} for k, r in queued]})
    return outcome


@shared_task(name=SWEEP, bind=True)
def sweep_task(self: Any) -> dict[str, Any]:
    """Abandoned runs (worker died), their leftovers, the "no verified backup" alert, and queued runs whose
    task message was lost (Redis keeps nothing on disk): those are sent again; a claimed run ignores it."""
    outcome: dict[str, Any] = {}
    with _tick(SWEEP, outcome), _service() as service:
        report = service.watchdog()
        resent = []
        for run in service.stale_queued_runs():
            submit(self.app, run.kind, run.id, service)
            resent.append(str(run.id))
        retried = _retry_offsite(service)
        if retried is not None:
            _send(self.app, OFFSITE, retried, service)
        outcome.update({"success": True, **report, "resent": resent,
                        "offsite_retried": str(retried) if retried else None})
    return outcome


def _retry_offsite(service: BackupService) -> uuid.UUID | None:
    """At most one off-site copy retried per sweep (the newest verified backup's); a bucket that does not answer
    is logged, and the next sweep asks again."""
    try:
        return service.retry_offsite()
    except BackupError as exc:
        log.warning("sweep: no off-site retry: %s", exc)
        return None


__all__ = ["TASK_NAMES", "install", "submit", "submit_backup"]
