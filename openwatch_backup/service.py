"""Composition root: settings -> adapters -> operations. Entry layers (CLI, tasks, API) call only this."""

from __future__ import annotations

import uuid
from functools import cached_property
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from openwatch_backup.catalog.engine import make_engine
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import RunRecorder, catalog_errors
from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.core.kinds import BackupKind, Compression, Trigger
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.redact import Redactor
from openwatch_backup.core.verify_result import VerifyResult
from openwatch_backup.executors.local import LocalExecutor
from openwatch_backup.operations.backup import BackupRequest, Observer, run_backup
from openwatch_backup.operations.checklist import CheckItem, run_checklist
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.drill import newest_restorable, run_drill
from openwatch_backup.operations.post_restore import check_health, run_migrations
from openwatch_backup.operations.rebuild import RebuildReport, rebuild_catalog
from openwatch_backup.operations.restore import RestoreRequest, run_restore
from openwatch_backup.operations.sweep import SweepReport, sweep_leftovers
from openwatch_backup.operations.verify import backup_manifest_key
from openwatch_backup.operations.verify_run import run_verify
from openwatch_backup.settings import Settings
from openwatch_backup.storage.base import Storage
from openwatch_backup.storage.local import LocalStorage


class BackupService:
    def __init__(self, settings: Settings, *, storage: Storage | None = None) -> None:
        self.settings = settings
        self.target: DatabaseTarget = settings.target
        self.redact = Redactor([self.target.password, settings.database_url])
        self.storage: Storage = storage or LocalStorage(settings.dir)

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
        run_backup(self.context, run_id, request, observer, trigger=run.trigger)
        return self.recorder.get(str(run_id))

    def backup(self, request: BackupRequest, *, trigger: Trigger = Trigger.CLI, requested_by: str | None = None,
               observer: Observer | None = None) -> BackupRun:
        return self.execute_backup(self.request_backup(request, trigger, requested_by), observer)

    # --- verify, restore, drill, check ----------------------------------------------------------------
    def verify(self, ref: str, *, deep: bool = False, trigger: Trigger = Trigger.CLI,
               requested_by: str | None = None) -> tuple[BackupRun, VerifyResult | None]:
        """Verify a backup as a recorded run linked to it. The run's status says whether it passed."""
        backup = self.recorder.get(ref)
        backup_manifest_key(backup)  # refuses a run that is not a successful backup, before recording anything
        run_id = self.recorder.create("verify", trigger.value, requested_by, parent_id=backup.id,
                                      details={"request": {"deep": deep}})
        result = run_verify(self.context, run_id, backup, deep)
        return self.recorder.get(str(run_id)), result

    def restore(self, ref: str, request: RestoreRequest, *, trigger: Trigger = Trigger.CLI,
                requested_by: str | None = None, migrate: bool = False, health_check: bool = False,
                observer: Observer | None = None) -> BackupRun:
        backup = self.recorder.get(ref)
        backup_manifest_key(backup)
        run_id = self.recorder.create("restore", trigger.value, requested_by, parent_id=backup.id,
                                      details={"request": request.as_details()})

        def safety_backup() -> BackupRun:
            return self.backup(self.build_request(BackupKind.FULL), trigger=trigger,
                               requested_by=f"safety backup before restore {str(run_id)[:8]}", observer=observer)

        def post_steps() -> dict[str, Any]:
            steps: dict[str, Any] = {}
            if migrate:
                steps["migrate"] = run_migrations(self.settings, self.redact)
            if health_check:
                steps["health"] = check_health(self.settings.health_url)
            return steps

        run_restore(self.context, run_id, backup, request, safety_backup,
                    post_steps if (migrate or health_check) else None)
        return self.recorder.get(str(run_id))

    def drill(self, *, trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> BackupRun:
        backup = newest_restorable(self.context)
        run_id = self.recorder.create("drill", trigger.value, requested_by, parent_id=backup.id)
        run_drill(self.context, run_id, backup)
        return self.recorder.get(str(run_id))

    def checklist(self) -> list[CheckItem]:
        return run_checklist(self.context)

    def sweep(self) -> SweepReport:
        return sweep_leftovers(self.context)

    # --- catalog -------------------------------------------------------------------------------------
    def list_runs(self, *, limit: int = 50, kind: str | None = None, status: str | None = None) -> list[BackupRun]:
        return self.recorder.list(limit=limit, kind=kind, status=status)

    def get_run(self, ref: str) -> BackupRun:
        return self.recorder.get(ref)

    def manifest_of(self, run: BackupRun) -> Manifest | None:
        artifact = run.details.get("artifact")
        if run.status != "succeeded" or not artifact:
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
