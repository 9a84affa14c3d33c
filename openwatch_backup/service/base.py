"""The service's foundation: settings -> adapters (engine, recorder, storage), the operation guard."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Self

from sqlalchemy import Engine

from openwatch_backup.catalog.copies import CopyStore
from openwatch_backup.catalog.engine import make_engine
from openwatch_backup.catalog.locks import OperationBusy, exclusive_operation
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import RunRecorder
from openwatch_backup.catalog.settings_store import SettingsStore
from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.core.kinds import DATABASE_KINDS, BackupKind, RunStatus
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.redact import Redactor
from openwatch_backup.executors.select import select_executor
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.heartbeat import heartbeat
from openwatch_backup.operations.presence import is_present
from openwatch_backup.settings import Settings
from openwatch_backup.storage.base import Storage
from openwatch_backup.storage.factory import offsite_storage, required_offsite
from openwatch_backup.storage.local import LocalStorage

if TYPE_CHECKING:
    from openwatch_backup.storage.s3 import S3Storage

BACKUP_KINDS = tuple(kind.value for kind in BackupKind)
DATABASE_KIND_NAMES = tuple(kind.value for kind in DATABASE_KINDS)
STALE_ALERT_KEY = "alerts.stale_backup_at"
STALE_ALERT_EVERY = 6 * 3600


class ServiceBase:
    def __init__(self, settings: Settings, *, storage: Storage | None = None) -> None:
        self.settings = settings
        self.target: DatabaseTarget = settings.target
        self.redact = Redactor([self.target.password, settings.database_url, settings.webhook_url,
                                settings.redis_url])
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
                                executor=select_executor(self.settings), recorder=self.recorder, redact=self.redact,
                                copies=self.copies, offsite=self.offsite)

    @cached_property
    def copies(self) -> CopyStore:
        return CopyStore(self.engine, self.redact, self.target.describe())

    @cached_property
    def offsite(self) -> S3Storage | None:
        """The off-site storage when OPENWATCH_BACKUP_S3_BUCKET is set (boto3 is imported only then)."""
        return offsite_storage(self.settings)

    def require_offsite(self) -> S3Storage:
        return required_offsite(self.offsite)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "context" in self.__dict__:
            self.context.executor.close()  # the docker executor's API connection

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _operation(self, run_id: uuid.UUID, *, exclusive: bool) -> Iterator[None]:
        """Heartbeat while the operation runs; backup, restore and prune also hold the exclusive lock."""
        with ExitStack() as stack:
            stack.enter_context(heartbeat(self.recorder, run_id, self.settings.heartbeat_seconds))
            # A run no longer queued belongs to another delivery of the same task: no lock to wait for, and the
            # operation's own claim will decline it.
            queued = self.recorder.get(str(run_id)).status == RunStatus.QUEUED.value
            if exclusive and queued and not self._holding_lock:
                try:
                    stack.enter_context(exclusive_operation(self.target, self.redact, self.settings.lock_wait_seconds,
                                                            lambda: self._lock_holder(run_id)))
                except OperationBusy as exc:
                    self.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, exc.code, exc.message,
                                                        only_if=RunStatus.QUEUED)
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

    @cached_property
    def settings_store(self) -> SettingsStore:
        return SettingsStore(self.engine, self.target.describe())


    def list_runs(self, *, limit: int = 50, kind: str | None = None, status: str | None = None) -> list[BackupRun]:
        return self.recorder.list(limit=limit, kind=kind, status=status)

    def get_run(self, ref: str) -> BackupRun:
        return self.recorder.get(ref)

    def manifest_of(self, run: BackupRun) -> Manifest | None:
        """The manifest from the copy a restore would read (local first, else the off-site one)."""
        if not is_present(run):  # not a backup, or retention took (or began to take) its files
            return None
        from openwatch_backup.operations.read_source import read_manifest

        return read_manifest(self.context, run)
