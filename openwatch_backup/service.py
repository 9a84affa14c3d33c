"""Composition root: settings -> adapters -> operations. Entry layers (CLI, tasks, API) call only this."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import cached_property
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from openwatch_backup.catalog.engine import make_engine
from openwatch_backup.catalog.locks import OperationBusy, exclusive_operation
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import RunRecorder, catalog_errors
from openwatch_backup.catalog.serialize import run_to_dict
from openwatch_backup.catalog.settings_store import SettingsStore
from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.core.kinds import BackupKind, Compression, RunStatus, Trigger
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.redact import Redactor
from openwatch_backup.core.verify_result import VerifyResult
from openwatch_backup.errors import RunNotFound
from openwatch_backup.executors.local import LocalExecutor
from openwatch_backup.notify import notify
from openwatch_backup.operations.backup import BackupRequest, Observer, run_backup
from openwatch_backup.operations.checklist import CheckItem, run_checklist
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.drill import newest_restorable, run_drill
from openwatch_backup.operations.heartbeat import heartbeat
from openwatch_backup.operations.post_restore import check_health, run_migrations
from openwatch_backup.operations.rebuild import RebuildReport, rebuild_catalog
from openwatch_backup.operations.restore import RestoreRequest, run_restore
from openwatch_backup.operations.sweep import SweepReport, sweep_leftovers
from openwatch_backup.operations.verify import backup_manifest_key
from openwatch_backup.operations.verify_run import run_verify
from openwatch_backup.settings import Settings
from openwatch_backup.storage.base import Storage
from openwatch_backup.storage.local import LocalStorage

BACKUP_KINDS = tuple(kind.value for kind in BackupKind)
STALE_ALERT_KEY = "alerts.stale_backup_at"
STALE_ALERT_EVERY = 6 * 3600


class BackupService:
    def __init__(self, settings: Settings, *, storage: Storage | None = None) -> None:
        self.settings = settings
        self.target: DatabaseTarget = settings.target
        self.redact = Redactor([self.target.password, settings.database_url, settings.webhook_url])
        self.storage: Storage = storage or LocalStorage(settings.dir)
        self._holding_lock = False  # a restore's safety backup runs inside the restore's lock

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.target)

    @cached_property
    def recorder(self) -> RunRecorder:
        return RunRecorder(self.engine, self.redact, self.target.describe())

    @cached_property
    def context(self) -> OperationContext:
        return OperationContext(settings=self.settings, target=self.target, storage=self.storage,
                                executor=LocalExecutor(), recorder=self.recorder, redact=self.redact)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

    def __enter__(self) -> BackupService:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- backups -------------------------------------------------------------------------------------
    def build_request(self, kind: BackupKind | None = None, compression: Compression | None = None,
                      tables: list[str] | None = None) -> BackupRequest:
        kind = kind or self.settings.kind
        chosen = tables or self.settings.tables
        return BackupRequest(kind=kind, compression=compression or self.settings.compression,
                             tables=list(chosen) if kind is BackupKind.TABLES else [])

    def request_backup(self, request: BackupRequest, trigger: Trigger = Trigger.CLI,
                       requested_by: str | None = None) -> uuid.UUID:
        """Create a queued run; whoever executes it later needs only its id."""
        return self.recorder.create(request.kind.value, trigger.value, requested_by,
                                    details={"request": request.as_details()})

    def execute_backup(self, run_id: uuid.UUID, observer: Observer | None = None) -> BackupRun:
        run = self.recorder.get(str(run_id))
        request = BackupRequest.from_details(run.details["request"])
        with self._operation(run_id, exclusive=True):
            run_backup(self.context, run_id, request, observer, trigger=run.trigger)
        return self.recorder.get(str(run_id))

    def request_backup_once(self, request: BackupRequest, trigger: Trigger = Trigger.CLI,
                            requested_by: str | None = None) -> tuple[BackupRun, bool]:
        """Queue a backup unless one is queued or running; then return that one (created False)."""
        run_id, created = self.recorder.create_unless_active(
            request.kind.value, BACKUP_KINDS, trigger.value, requested_by, details={"request": request.as_details()})
        return self.recorder.get(str(run_id)), created

    @contextmanager
    def _operation(self, run_id: uuid.UUID, *, exclusive: bool) -> Iterator[None]:
        """Heartbeat while the operation runs; backup, restore and prune also hold the exclusive lock."""
        with ExitStack() as stack:
            stack.enter_context(heartbeat(self.recorder, run_id, self.settings.heartbeat_seconds))
            if exclusive and not self._holding_lock:
                try:
                    stack.enter_context(exclusive_operation(self.target, self.redact, self.settings.lock_wait_seconds,
                                                            lambda: self._lock_holder(run_id)))
                except OperationBusy as exc:
                    self.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, exc.code, exc.message)
                    raise
                self._holding_lock = True
                stack.callback(setattr, self, "_holding_lock", False)
            yield

    def _lock_holder(self, run_id: uuid.UUID) -> str:
        running = [r for r in self.recorder.list(limit=20, status=RunStatus.RUNNING.value)
                   if r.id != run_id and r.kind in (*BACKUP_KINDS, "restore", "prune")]
        if not running:
            return "a run not in this catalog"
        holder = running[0]
        return f"{holder.kind} run {str(holder.id)[:8]} since {holder.started_at:%Y-%m-%d %H:%M:%S} UTC"

    def backup(self, request: BackupRequest, *, trigger: Trigger = Trigger.CLI, requested_by: str | None = None,
               observer: Observer | None = None) -> BackupRun:
        return self.execute_backup(self.request_backup(request, trigger, requested_by), observer)

    # --- verify, restore, drill, check ----------------------------------------------------------------
    def verify(self, ref: str, *, deep: bool = False, trigger: Trigger = Trigger.CLI,
               requested_by: str | None = None) -> tuple[BackupRun, VerifyResult | None]:
        """Verify a backup as a recorded run linked to it. The run's status says whether it passed."""
        run_id = self.request_verify(self.recorder.get(ref), deep=deep, trigger=trigger, requested_by=requested_by)
        result = self.execute_verify(run_id)
        return self.recorder.get(str(run_id)), result

    def request_verify(self, backup: BackupRun, *, deep: bool = False, trigger: Trigger = Trigger.CLI,
                       requested_by: str | None = None) -> uuid.UUID:
        backup_manifest_key(backup)  # refuses a run that is not a successful backup, before recording anything
        return self.recorder.create("verify", trigger.value, requested_by, parent_id=backup.id,
                                    details={"request": {"deep": deep}})

    def execute_verify(self, run_id: uuid.UUID) -> VerifyResult | None:
        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        with self._operation(run_id, exclusive=False):
            return run_verify(self.context, run_id, backup, bool(run.details.get("request", {}).get("deep")))

    def restore(self, ref: str, request: RestoreRequest, *, trigger: Trigger = Trigger.CLI,
                requested_by: str | None = None, migrate: bool = False, health_check: bool = False,
                observer: Observer | None = None) -> BackupRun:
        run_id = self.request_restore(ref, request, trigger=trigger, requested_by=requested_by, migrate=migrate,
                                      health_check=health_check)
        return self.execute_restore(run_id, observer)

    def request_restore(self, ref: str, request: RestoreRequest, *, trigger: Trigger = Trigger.CLI,
                        requested_by: str | None = None, migrate: bool = False,
                        health_check: bool = False) -> uuid.UUID:
        backup = self.recorder.get(ref)
        backup_manifest_key(backup)
        return self.recorder.create("restore", trigger.value, requested_by, parent_id=backup.id,
                                    details={"request": {**request.as_details(), "confirm": request.confirm,
                                                         "migrate": migrate, "health_check": health_check}})

    def execute_restore(self, run_id: uuid.UUID, observer: Observer | None = None) -> BackupRun:
        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        asked = dict(run.details.get("request", {}))
        migrate, health_check = bool(asked.pop("migrate", False)), bool(asked.pop("health_check", False))
        request = RestoreRequest(into=asked.get("into"), tables=tuple(asked.get("tables") or ()),
                                 data_only=bool(asked.get("data_only")), confirm=asked.get("confirm"),
                                 terminate_connections=bool(asked.get("terminate_connections")),
                                 safety_backup=bool(asked.get("safety_backup", True)),
                                 allow_newer_server=bool(asked.get("allow_newer_server")),
                                 allow_newer_migrations=bool(asked.get("allow_newer_migrations")))

        def safety_backup() -> BackupRun:
            return self.backup(self.build_request(BackupKind.FULL), trigger=Trigger(run.trigger),
                               requested_by=f"safety backup before restore {str(run_id)[:8]}", observer=observer)

        def post_steps() -> dict[str, Any]:
            steps: dict[str, Any] = {}
            if migrate:
                steps["migrate"] = run_migrations(self.settings, self.redact)
            if health_check:
                steps["health"] = check_health(self.settings.health_url)
            return steps

        with self._operation(run_id, exclusive=True):
            run_restore(self.context, run_id, backup, request, safety_backup,
                        post_steps if (migrate or health_check) else None)
        return self.recorder.get(str(run_id))

    def drill(self, *, trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> BackupRun:
        backup = newest_restorable(self.context)
        run_id = self.recorder.create("drill", trigger.value, requested_by, parent_id=backup.id)
        return self.execute_drill(run_id)

    def request_drill(self, trigger: Trigger, requested_by: str | None = None) -> uuid.UUID | None:
        """Queue a drill of the newest backup unless one is queued or running (then None)."""
        backup = newest_restorable(self.context)
        run_id, created = self.recorder.create_unless_active("drill", ("drill",), trigger.value, requested_by,
                                                             parent_id=backup.id)
        return run_id if created else None

    def execute_drill(self, run_id: uuid.UUID) -> BackupRun:
        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        with self._operation(run_id, exclusive=False):
            run_drill(self.context, run_id, backup)
        return self.recorder.get(str(run_id))

    def checklist(self) -> list[CheckItem]:
        return run_checklist(self.context)

    def sweep(self) -> SweepReport:
        return sweep_leftovers(self.context)

    # --- retention: prune, pin ------------------------------------------------------------------------
    # Imports stay inside these methods so that retention is this one block of the file.
    def request_prune(self, *, apply: bool = True, trigger: Trigger = Trigger.SCHEDULE,
                      requested_by: str | None = None) -> uuid.UUID | None:
        """Queue a prune unless one is queued or running (then None). It applies by default: the scheduled chain
        asks for one only after a backup verified."""
        run_id, created = self.recorder.create_unless_active("prune", ("prune",), trigger.value, requested_by,
                                                             details={"request": {"apply": apply}})
        return run_id if created else None

    def execute_prune(self, run_id: uuid.UUID) -> BackupRun:
        from openwatch_backup.catalog.prune_store import PruneStore
        from openwatch_backup.operations.prune import run_prune

        run = self.recorder.get(str(run_id))
        apply = bool(run.details.get("request", {}).get("apply"))
        with self._operation(run_id, exclusive=True):
            run_prune(self.context, run_id, apply, PruneStore(self.engine, self.target.describe()),
                      lambda: self.settings_store.all("retention."))
        return self.recorder.get(str(run_id))

    def prune(self, apply: bool = False, trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> BackupRun:
        """Plan retention as a recorded run (the plan is stored on it); with apply, carry it out."""
        run_id = self.recorder.create("prune", trigger.value, requested_by, details={"request": {"apply": apply}})
        return self.execute_prune(run_id)

    def pin(self, ref: str, requested_by: str | None = None) -> BackupRun:
        """Keep a successful backup forever: no retention rule deletes a pinned backup."""
        from openwatch_backup.catalog.prune_store import PruneStore
        from openwatch_backup.operations.pin import set_pin

        return set_pin(self.context, PruneStore(self.engine, self.target.describe()), ref, True, requested_by)

    def unpin(self, ref: str, requested_by: str | None = None) -> BackupRun:
        from openwatch_backup.catalog.prune_store import PruneStore
        from openwatch_backup.operations.pin import set_pin

        return set_pin(self.context, PruneStore(self.engine, self.target.describe()), ref, False, requested_by)

    # --- catalog -------------------------------------------------------------------------------------
    def list_runs(self, *, limit: int = 50, kind: str | None = None, status: str | None = None) -> list[BackupRun]:
        return self.recorder.list(limit=limit, kind=kind, status=status)

    def get_run(self, ref: str) -> BackupRun:
        return self.recorder.get(ref)

    def manifest_of(self, run: BackupRun) -> Manifest | None:
        artifact = run.details.get("artifact")
        if run.status != "succeeded" or not artifact or run.pruned_at is not None:  # pruned: the manifest is gone
            return None
        return Manifest.from_json(self.storage.read_bytes(f"postgres/{artifact}.manifest.json"),
                                  source=f"manifest of {artifact}")

    def rebuild_catalog(self) -> RebuildReport:
        return rebuild_catalog(self.storage, self.engine, self.target.describe())

    # --- schema --------------------------------------------------------------------------------------
    def db_upgrade(self, revision: str = "head") -> str | None:
        from openwatch_backup.catalog import migrate  # alembic costs 70 ms to import; only these two need it

        with catalog_errors(self.target.describe()):
            migrate.upgrade(self.engine, revision)
            return migrate.current_revision(self.engine)

    def db_downgrade(self, revision: str = "base") -> str | None:
        from openwatch_backup.catalog import migrate

        with catalog_errors(self.target.describe()):
            migrate.downgrade(self.engine, revision)
            return migrate.current_revision(self.engine)

    # --- scheduled work (Celery) ---------------------------------------------------------------------
    @cached_property
    def settings_store(self) -> SettingsStore:
        return SettingsStore(self.engine, self.target.describe())

    def dispatch_due(self) -> list[tuple[str, uuid.UUID]]:
        """Queue the scheduled backup and drill if their cron expressions say so. Returns what was queued."""
        from openwatch_backup.scheduling import current_schedules, is_due  # imports celery: tasks and CLI only

        schedules = current_schedules(self.settings, self.settings_store)
        queued: list[tuple[str, uuid.UUID]] = []
        last = self.recorder.list(limit=1, trigger=Trigger.SCHEDULE.value, kinds=BACKUP_KINDS)
        if is_due(schedules.backup, last[0].created_at if last else None):
            run, created = self.request_backup_once(self.build_request(), Trigger.SCHEDULE, "celery-beat")
            if created:
                queued.append(("backup", run.id))
        last = self.recorder.list(limit=1, trigger=Trigger.SCHEDULE.value, kind="drill")
        backup_active = self.recorder.list(limit=1, kinds=BACKUP_KINDS, status=RunStatus.QUEUED.value) or \
            self.recorder.list(limit=1, kinds=BACKUP_KINDS, status=RunStatus.RUNNING.value)
        # A drill waits for a backup in flight, so it drills the newest backup rather than the one before.
        if not backup_active and is_due(schedules.drill, last[0].created_at if last else None):
            try:
                drill = self.request_drill(Trigger.SCHEDULE, "celery-beat")
            except RunNotFound:
                drill = None  # nothing to drill with yet; the backup queued above will make one
            if drill is not None:
                queued.append(("drill", drill))
        return queued

    def alert_failure(self, run: BackupRun) -> None:
        """Log and post a failed or abandoned run once; the delivery is stored beside it, not instead of it."""
        if run.details.get("notification"):
            return
        delivery = notify("run_failed", f"{run.kind} run {run.id} {run.status}: {run.error}",
                          {"run": run_to_dict(run)}, webhook_url=self.settings.webhook_url, redact=self.redact)
        self.recorder.add_details(run.id, {"notification": delivery})

    def watchdog(self) -> dict[str, Any]:
        """The sweeper: abandoned runs, their leftovers, and the "no verified backup for N hours" alert."""
        abandoned = self.recorder.mark_abandoned(self.settings.stale_after_seconds)
        for run_id in abandoned:
            self.alert_failure(self.recorder.get(str(run_id)))
        report = sweep_leftovers(self.context)
        return {"abandoned": [str(r) for r in abandoned], "scratch_databases": report.databases,
                "partial_files": report.partial_files, "stale_alert": self._stale_backup_alert()}

    def _stale_backup_alert(self, now: datetime | None = None) -> dict[str, Any] | None:
        now = now or datetime.now(UTC)
        verified = self.recorder.list(limit=1, kind="verify", status=RunStatus.SUCCEEDED.value)
        first = self.recorder.list(limit=1, oldest_first=True)
        since = verified[0].finished_at if verified else (first[0].created_at if first else None)
        if since is None or (now - since).total_seconds() <= self.settings.alert_after_hours * 3600:
            return None
        last_alert = self.settings_store.get(STALE_ALERT_KEY)
        if last_alert and (now - datetime.fromisoformat(last_alert)).total_seconds() < STALE_ALERT_EVERY:
            return None  # said already; repeat every few hours, not every sweep
        hours = (now - since).total_seconds() / 3600
        what = "no backup has verified" if verified else "no backup has ever verified"
        delivery = notify("no_verified_backup", f"{what} for {hours:.1f} h (OPENWATCH_BACKUP_ALERT_AFTER_HOURS is "
                          f"{self.settings.alert_after_hours:g})", {"hours": round(hours, 1)},
                          webhook_url=self.settings.webhook_url, redact=self.redact)
        self.settings_store.set(STALE_ALERT_KEY, now.isoformat(), updated_by="sweeper")
        return delivery
