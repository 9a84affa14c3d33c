"""Backups: request, execute, the catalog's own maintenance (rebuild, migrations)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from openwatch_backup.catalog.recorder import catalog_errors
from openwatch_backup.core.kinds import BackupKind, Compression, Trigger
from openwatch_backup.service.base import DATABASE_KIND_NAMES, ServiceBase

if TYPE_CHECKING:
    from pathlib import Path

    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.operations.adopt import AdoptReport
    from openwatch_backup.operations.backup import BackupRequest, Observer
    from openwatch_backup.operations.rebuild import RebuildReport

# Operations are imported by the methods that run them (see service/recovery.py).


class BackupsService(ServiceBase):
    def build_request(self, kind: BackupKind | None = None, compression: Compression | None = None,
                      tables: list[str] | None = None) -> BackupRequest:
        from openwatch_backup.operations.backup import BackupRequest

        kind = kind or self.settings.kind
        chosen = tables or self.settings.tables
        if kind is BackupKind.CONFIG:  # gzip inside the encrypted tar; the database compression does not apply
            return BackupRequest(kind=kind, compression=Compression.NONE, tables=[])
        if kind is BackupKind.REDIS:  # dump.rdb is always zstd-wrapped
            return BackupRequest(kind=kind, compression=Compression.ZSTD, tables=[])
        if kind is BackupKind.VOLUME:  # one run per volume, each naming it: request_volume_snapshots
            from openwatch_backup.errors import ConfigError

            raise ConfigError("volume snapshots are taken per volume: `openwatch-backup backup --kind volume` (or "
                              "the weekly OPENWATCH_BACKUP_VOLUME_SCHEDULE); OPENWATCH_BACKUP_KIND takes a database "
                              "kind")
        return BackupRequest(kind=kind, compression=compression or self.settings.compression,
                             tables=list(chosen) if kind is BackupKind.TABLES else [])

    def request_backup(self, request: BackupRequest, trigger: Trigger = Trigger.CLI,
                       requested_by: str | None = None) -> uuid.UUID:
        """Create a queued run; whoever executes it later needs only its id."""
        return self.recorder.create(request.kind.value, trigger.value, requested_by,
                                    details={"request": request.as_details()})

    def execute_backup(self, run_id: uuid.UUID, observer: Observer | None = None) -> BackupRun:
        from openwatch_backup.operations.backup import BackupRequest, run_backup

        run = self.recorder.get(str(run_id))
        request = BackupRequest.from_details(run.details["request"])
        if request.kind is BackupKind.CONFIG:
            from openwatch_backup.operations.config_backup import run_config_backup

            # Reads files, touches no database: no need to wait for a running dump or restore.
            with self._operation(run_id, exclusive=False):
                run_config_backup(self.context, run_id, trigger=run.trigger)
            return self.recorder.get(str(run_id))
        if request.kind is BackupKind.VOLUME:
            from openwatch_backup.operations.volume_snapshot import VolumeRequest, run_volume_snapshot

            # No database lock: a volume is read through the Docker API; consistent mode refuses up front when a
            # database run is in flight (volume_runs.py), since it may stop the database container.
            with self._operation(run_id, exclusive=False):
                run_volume_snapshot(self.context, run_id, VolumeRequest.from_details(run.details["request"]),
                                    trigger=run.trigger)
            return self.recorder.get(str(run_id))
        if request.kind is BackupKind.REDIS:
            from openwatch_backup.operations.redis_snapshot import run_redis_snapshot

            # BGSAVE and a file from the redis container: no PostgreSQL data, no database lock to wait for.
            with self._operation(run_id, exclusive=False):
                run_redis_snapshot(self.context, run_id, trigger=run.trigger)
            return self.recorder.get(str(run_id))
        with self._operation(run_id, exclusive=True):
            run_backup(self.context, run_id, request, observer, trigger=run.trigger)
        return self.recorder.get(str(run_id))

    def request_volume_snapshots(self, volumes: list[str] | None = None, stop: list[str] | None = None, *,
                                 trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> list[uuid.UUID]:
        """Queue one volume run per volume (operations/volume_runs.py checks every name first)."""
        from openwatch_backup.operations.volume_runs import plan_volume_requests

        requests = plan_volume_requests(self.context, volumes, stop)
        return [self.recorder.create(BackupKind.VOLUME.value, trigger.value, requested_by,
                                     details={"request": r.as_details()}) for r in requests]

    def request_backup_once(self, request: BackupRequest, trigger: Trigger = Trigger.CLI,
                            requested_by: str | None = None) -> tuple[BackupRun, bool]:
        """Queue a backup unless one is queued or running; then return that one (created False). A config bundle
        and a database dump are different work: one of each may run at once."""
        kinds = (request.kind.value,) if request.kind in (BackupKind.CONFIG, BackupKind.REDIS) else \
            DATABASE_KIND_NAMES
        run_id, created = self.recorder.create_unless_active(
            request.kind.value, kinds, trigger.value, requested_by, details={"request": request.as_details()})
        return self.recorder.get(str(run_id)), created

    def backup(self, request: BackupRequest, *, trigger: Trigger = Trigger.CLI, requested_by: str | None = None,
               observer: Observer | None = None) -> BackupRun:
        return self.execute_backup(self.request_backup(request, trigger, requested_by), observer)

    def adopt(self, folder: Path, *, dry_run: bool = False, requested_by: str | None = None) -> AdoptReport:
        """Take over the guide's backup files under folder (operations/adopt.py) as one run of kind adopt, each
        file a backup run of its kind; dry_run reads and checks them and records nothing."""
        from openwatch_backup.operations.adopt import adopt_folder, check_folder
        from openwatch_backup.operations.lifecycle import record_failure

        folder = check_folder(self.context, folder)
        if dry_run:
            return adopt_folder(self.context, self.engine, folder, None)
        run_id = self.recorder.create("adopt", Trigger.CLI.value, requested_by, details={"folder": str(folder)})
        # Reads files and writes new ones: no database lock to wait for (a dump's restore does not touch them).
        with self._operation(run_id, exclusive=False):
            self.recorder.claim(run_id)
            try:
                report = adopt_folder(self.context, self.engine, folder, run_id)
            except BaseException as exc:
                record_failure(self.context, run_id, exc)
                raise
            self.recorder.succeed(run_id, location=None, size=None, sha256=None, details=report.as_dict())
        return report

    def rebuild_catalog(self, *, any_database: bool = False, source: str = "local") -> RebuildReport:
        """Rows from the manifests in storage (local, or s3 on a new host); those of another database than ours
        only with any_database."""
        from openwatch_backup.core.copies import CopyStorage
        from openwatch_backup.operations.rebuild import rebuild_catalog

        where = CopyStorage(source)
        storage = self.storage if where is CopyStorage.LOCAL else self.require_offsite()
        return rebuild_catalog(storage, self.engine, self.target.describe(), self.target.dbname,
                               copies=self.copies, where=where, any_database=any_database)

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
