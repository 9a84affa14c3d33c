"""Verify, restore, drill, checklist, sweep."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from openwatch_backup.core.kinds import BackupKind, Trigger
from openwatch_backup.errors import ConfigError
from openwatch_backup.service.backups import BackupsService

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.core.verify_result import VerifyResult
    from openwatch_backup.operations.backup import Observer
    from openwatch_backup.operations.checklist import CheckItem
    from openwatch_backup.operations.restore import RestoreRequest
    from openwatch_backup.operations.sweep import SweepReport

# Each operation is imported by the method that runs it: `openwatch-backup list` needs none of them, and
# together they cost a third of its start-up (bench/bench_cli_start.py).


class RecoveryService(BackupsService):
    def verify(self, ref: str, *, deep: bool = False, trigger: Trigger = Trigger.CLI,
               requested_by: str | None = None, copy: str | None = None) -> tuple[BackupRun, VerifyResult | None]:
        """Verify a backup as a recorded run linked to it. The run's status says whether it passed.
        copy: "local" or "s3" reads that copy; None reads the local file while it is there, else the S3 object."""
        run_id = self.request_verify(self.recorder.get(ref), deep=deep, trigger=trigger, requested_by=requested_by,
                                     copy=copy)
        result = self.execute_verify(run_id)
        return self.recorder.get(str(run_id)), result

    def request_verify(self, backup: BackupRun, *, deep: bool = False, trigger: Trigger = Trigger.CLI,
                       requested_by: str | None = None, copy: str | None = None) -> uuid.UUID:
        from openwatch_backup.core.copies import CopyStorage
        from openwatch_backup.operations.verify import backup_manifest_key

        backup_manifest_key(backup)  # refuses a run that is not a successful backup, before recording anything
        request: dict[str, Any] = {"deep": deep}
        if copy is not None:
            if CopyStorage(copy) is CopyStorage.S3:
                self.require_offsite()  # refused before anything is recorded
            request["copy"] = CopyStorage(copy).value
        return self.recorder.create("verify", trigger.value, requested_by, parent_id=backup.id,
                                    details={"request": request})

    def execute_verify(self, run_id: uuid.UUID) -> VerifyResult | None:
        from openwatch_backup.core.copies import CopyStorage
        from openwatch_backup.operations.verify_run import run_verify

        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        asked = run.details.get("request", {})
        copy = CopyStorage(asked["copy"]) if asked.get("copy") else None
        with self._operation(run_id, exclusive=False):
            return run_verify(self.context, run_id, backup, bool(asked.get("deep")), copy)

    def restore(self, ref: str, request: RestoreRequest, *, trigger: Trigger = Trigger.CLI,
                requested_by: str | None = None, migrate: bool = False, health_check: bool = False,
                observer: Observer | None = None) -> BackupRun:
        run_id = self.request_restore(ref, request, trigger=trigger, requested_by=requested_by, migrate=migrate,
                                      health_check=health_check)
        return self.execute_restore(run_id, observer)

    def request_restore(self, ref: str, request: RestoreRequest, *, trigger: Trigger = Trigger.CLI,
                        requested_by: str | None = None, migrate: bool = False,
                        health_check: bool = False) -> uuid.UUID:
        from openwatch_backup.operations.verify import backup_manifest_key

        backup = self.recorder.get(ref)
        backup_manifest_key(backup)
        if backup.kind == BackupKind.CONFIG.value:  # never over the live configuration: only into a new folder
            from openwatch_backup.errors import RestoreRefused

            raise RestoreRefused(f"backup {backup.id} is a config bundle: restore it into a new folder with "
                                 "--to DIR (live configuration is never overwritten in place), or --list it")
        if backup.kind == BackupKind.REDIS.value:  # Redis loads dump.rdb only at its start: the admin's steps
            from openwatch_backup.errors import RestoreRefused

            raise RestoreRefused(f"backup {backup.id} is a Redis snapshot: restore it by hand with the commands in "
                                 "the README, section \"Redis snapshot\" (stop redis, zstd -dc it to dump.rdb, "
                                 "start redis)")
        if backup.kind == BackupKind.VOLUME.value:  # not a database: into a new volume, or --confirm over it
            from openwatch_backup.errors import RestoreRefused

            volume = (backup.details.get("volume") or {}).get("volume", "NAME")
            raise RestoreRefused(f"backup {backup.id} is a volume snapshot: restore it with --volume {volume} "
                                 f"(into a new volume), or --volume {volume} --confirm {volume} (over it)")
        return self.recorder.create("restore", trigger.value, requested_by, parent_id=backup.id,
                                    details={"request": {**request.as_details(), "confirm": request.confirm,
                                                         "migrate": migrate, "health_check": health_check}})

    def execute_restore(self, run_id: uuid.UUID, observer: Observer | None = None) -> BackupRun:
        from openwatch_backup.operations.post_restore import check_health, run_migrations
        from openwatch_backup.operations.restore import RestoreRequest, run_restore

        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        asked = dict(run.details.get("request", {}))
        migrate, health_check = bool(asked.pop("migrate", False)), bool(asked.pop("health_check", False))
        request = RestoreRequest(into=asked.get("into"), tables=tuple(asked.get("tables") or ()),
                                 data_only=bool(asked.get("data_only")), confirm=asked.get("confirm"),
                                 terminate_connections=bool(asked.get("terminate_connections")),
                                 safety_backup=bool(asked.get("safety_backup", True)),
                                 allow_newer_server=bool(asked.get("allow_newer_server")),
                                 allow_newer_migrations=bool(asked.get("allow_newer_migrations")),
                                 copy=asked.get("copy"))

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

    def restore_config(self, ref: str, to: str, *, trigger: Trigger = Trigger.CLI,
                       requested_by: str | None = None) -> BackupRun:
        """Decrypt a config bundle into the new folder `to` as a recorded restore run (parent: the bundle)."""
        from pathlib import Path

        from openwatch_backup.operations.config_restore import check_destination, require_config, run_config_restore
        from openwatch_backup.operations.verify import backup_manifest_key

        if not to.strip():
            raise ConfigError("--to needs the path of a new folder, e.g. --to /root/openwatch-config")
        backup = self.recorder.get(ref)
        backup_manifest_key(backup)
        require_config(backup)
        dest = Path(to).absolute()
        check_destination(dest)  # refused before anything is recorded
        run_id = self.recorder.create("restore", trigger.value, requested_by, parent_id=backup.id,
                                      details={"request": {"config": True, "to": str(dest)}})
        with self._operation(run_id, exclusive=False):  # files only: no database, no lock to wait for
            run_config_restore(self.context, run_id, backup, dest)
        return self.recorder.get(str(run_id))

    def restore_volume(self, ref: str, *, volume: str, into: str | None = None, confirm: str | None = None,
                       trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> BackupRun:
        """A volume snapshot into a new volume (`into`, default VOLUME_restored_YYYYMMDD_HHMMSS), or with
        confirm == volume over the original, after a safety snapshot (operations/volume_restore.py)."""
        from datetime import UTC, datetime

        from openwatch_backup.core.naming import timestamp
        from openwatch_backup.docker_api import docker_client
        from openwatch_backup.errors import RestoreRefused
        from openwatch_backup.operations.verify import backup_manifest_key
        from openwatch_backup.operations.volume_restore import check_target, run_volume_restore, snapshot_volume
        from openwatch_backup.operations.volume_runs import checked_names

        backup = self.recorder.get(ref)
        backup_manifest_key(backup)
        source = snapshot_volume(backup)
        if volume != source:
            raise RestoreRefused(f"backup {backup.id} is a snapshot of volume {source}, not {volume}: give --volume "
                                 f"{source}")
        if confirm is not None and confirm != volume:
            raise RestoreRefused(f"--confirm {confirm} does not match --volume {volume}: type the volume's name to "
                                 "restore over it")
        in_place = confirm is not None
        if in_place and into is not None:
            raise RestoreRefused("--into names a new volume, --confirm restores over the original: give one of them")
        target = volume if in_place else (into or f"{volume}_restored_{timestamp(datetime.now(UTC))}")
        checked_names([target], "--into")
        check_target(docker_client(), volume, target, in_place)  # refused before anything is recorded or stopped
        details: dict[str, Any] = {"request": {"volume": volume, "target": target, "in_place": in_place}}
        if in_place:  # the volume as it is now, first: a snapshot run of its own (succeeded, or nothing happens)
            (safety_id,) = self.request_volume_snapshots([volume], [], trigger=trigger,
                                                         requested_by=f"safety snapshot before restoring {volume}")
            safety = self.execute_backup(safety_id)
            details["safety_snapshot"] = str(safety.id)
        run_id = self.recorder.create("restore", trigger.value, requested_by, parent_id=backup.id, details=details)
        with self._operation(run_id, exclusive=False):  # a volume, not the database: no lock to wait for
            run_volume_restore(self.context, run_id, backup, target, in_place)
        return self.recorder.get(str(run_id))

    def list_config(self, ref: str) -> list[str]:
        """The member names of a config bundle, after its integrity checks. Read-only: no run is recorded."""
        from openwatch_backup.operations.config_restore import list_bundle

        return list_bundle(self.context, self.recorder.get(ref))

    def drill(self, *, trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> BackupRun:
        from openwatch_backup.operations.drill import newest_restorable

        backup = newest_restorable(self.context)
        run_id = self.recorder.create("drill", trigger.value, requested_by, parent_id=backup.id)
        return self.execute_drill(run_id)

    def request_drill(self, trigger: Trigger, requested_by: str | None = None) -> uuid.UUID | None:
        """Queue a drill of the newest backup unless one is queued or running (then None)."""
        from openwatch_backup.operations.drill import newest_restorable

        backup = newest_restorable(self.context)
        run_id, created = self.recorder.create_unless_active("drill", ("drill",), trigger.value, requested_by,
                                                             parent_id=backup.id)
        return run_id if created else None

    def execute_drill(self, run_id: uuid.UUID) -> BackupRun:
        from openwatch_backup.operations.drill import run_drill

        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        with self._operation(run_id, exclusive=False):
            run_drill(self.context, run_id, backup)
        return self.recorder.get(str(run_id))

    def checklist(self) -> list[CheckItem]:
        from openwatch_backup.operations.checklist import run_checklist
        from openwatch_backup.operations.config_schedule import CHECKED_KEY
        from openwatch_backup.operations.stored_settings import settings_problems

        return run_checklist(self.context, problems=settings_problems(self.settings, self.settings_store),
                             last_config_check=self.settings_store.get(CHECKED_KEY))

    def sweep(self) -> SweepReport:
        from openwatch_backup.operations.sweep import sweep_leftovers

        return sweep_leftovers(self.context)
