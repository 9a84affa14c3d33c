"""`recover` at the service: the catalog made ready on a bare host, then the recorded run (operations/recover.py).

Before a run can be recorded there must be a catalog: the live database is created when the server lacks it
(a new host whose OpenWatch never started), the plugin's tables are created or updated (`db upgrade`), and the
catalog is rebuilt from the store (`catalog rebuild --from s3|local`). Those are the catalog step; each is
idempotent, so a second recover simply does them again. Recover then resumes the newest recover run that ended
without succeeding, when it was asked the same (operations/recover_steps.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind, Trigger

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.operations.recover import Observer, RecoverRequest
    from openwatch_backup.operations.recover_plan import Plan
    from openwatch_backup.service import BackupService


@dataclass
class _ServiceHooks:
    service: BackupService
    label: str

    def safety_backup(self) -> BackupRun:
        return self.service.backup(self.service.build_request(BackupKind.FULL), trigger=Trigger.CLI,
                                   requested_by=f"safety backup before {self.label}")

    def migrate(self) -> dict[str, Any]:
        from openwatch_backup.operations.post_restore import run_migrations

        return run_migrations(self.service.settings, self.service.redact)


def _where(request: RecoverRequest) -> CopyStorage:
    return CopyStorage.S3 if request.source == "s3" else CopyStorage.LOCAL


def ensure_database(service: BackupService) -> bool:
    """CREATE DATABASE when the server lacks the live one; True when it was created."""
    from openwatch_backup.source.swap import database_exists, maintenance_connection

    name = service.target.dbname
    with maintenance_connection(service.target, service.redact) as admin:
        if database_exists(admin, name):
            return False
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def prepare_catalog(service: BackupService, request: RecoverRequest) -> dict[str, Any]:
    started = time.monotonic()
    created = ensure_database(service)
    revision = service.db_upgrade()
    report = service.rebuild_catalog(source=_where(request).value)
    where = service.require_offsite().config.location if request.source == "s3" else str(service.settings.dir)
    lines = [f"created database {service.target.dbname}"] if created else []
    lines.append(f"catalog at revision {revision}: {len(report.inserted)} run(s) recreated from {where}, "
                 f"{len(report.already_present)} already present, {len(report.skipped)} manifest(s) skipped")
    lines += [f"  skipped {key}: {reason}" for key, reason in report.skipped.items()]
    return {"created_database": created, "inserted": len(report.inserted),
            "already_present": len(report.already_present), "skipped": report.skipped, "lines": lines,
            "seconds": round(time.monotonic() - started, 3)}


def _check_request(service: BackupService, request: RecoverRequest) -> None:
    """Refusals before anything is created or recorded."""
    from openwatch_backup.errors import ConfigError
    from openwatch_backup.service.config import require_passphrase

    if request.source == "s3":
        service.require_offsite()
    elif not service.settings.dir.is_dir():
        raise ConfigError(f"--from {service.settings.dir}: no such folder; give the folder holding the backups "
                          "(the one with postgres/ and config/ in it), or --from s3")
    if request.config and request.skip_config:
        raise ConfigError("--config and --skip-config contradict each other: give one of them")
    if not request.skip_config:
        require_passphrase(service)  # the bundle cannot be opened without it: say so before anything happens


def recover(service: BackupService, request: RecoverRequest, observer: Observer | None = None) -> BackupRun:
    from openwatch_backup.operations.heartbeat import abandon_dead_cli_runs
    from openwatch_backup.operations.recover import run_recover
    from openwatch_backup.operations.recover_steps import KIND, resumable
    from openwatch_backup.operations.sweep import sweep_leftovers

    _check_request(service, request)
    if request.config_to:
        from pathlib import Path

        from openwatch_backup.operations.config_restore import check_destination

        check_destination(Path(request.config_to))
    catalog = prepare_catalog(service, request)
    abandon_dead_cli_runs(service.recorder)  # an earlier recover killed on this host: ended now, so resumable
    run_id = service.recorder.create(KIND, Trigger.CLI.value, None, details={"request": request.as_details()})
    sweep_leftovers(service.context, exclude=run_id)
    previous = resumable(service.context, request.as_details(), exclude=run_id)
    with service._operation(run_id, exclusive=True):
        run_recover(service.context, run_id, request, catalog=catalog,
                    hooks=_ServiceHooks(service, f"recover {str(run_id)[:8]}"), previous=previous, observer=observer)
    return service.recorder.get(str(run_id))


def dry_run(service: BackupService, request: RecoverRequest) -> tuple[Plan, list[str]]:
    """The plan from the store's manifests; nothing is created, recorded or written."""
    from openwatch_backup.operations.recover_dry import dry_run_plan

    _check_request(service, request)
    storage = service.require_offsite() if request.source == "s3" else service.storage
    return dry_run_plan(service.context, storage, _where(request), backup_ref=request.backup,
                        config_ref=request.config, skip_config=request.skip_config, volumes=request.volumes)
