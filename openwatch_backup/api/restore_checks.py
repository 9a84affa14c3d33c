"""What a restore through the API needs before it is queued, as a list of checks: one place for the wizard's
GET runs/{id}/restore/check and for POST runs/{id}/restore's early 409s (what would otherwise fail in the
background, minutes later).

Read-only: nothing here writes to the catalog or the server. The compatibility gate is operations/compat.py's,
the same the background restore passes; the file check reads the manifest of the copy a restore would read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import manifest_key
from openwatch_backup.operations.compat import check_compatibility
from openwatch_backup.operations.presence import present_artifact
from openwatch_backup.operations.read_source import choose_copy
from openwatch_backup.service import BackupService
from openwatch_backup.service.base import DATABASE_KIND_NAMES
from openwatch_backup.source.connection import connect
from openwatch_backup.source.facts import server_facts
from openwatch_backup.source.scratch import PREFIX as SCRATCH_PREFIX
from openwatch_backup.source.sessions import describe, other_sessions
from openwatch_backup.source.swap import database_exists

ALLOW_RESTORE_KEY = "api.allow_restore"
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RESTORABLE_KINDS = DATABASE_KIND_NAMES
REPLACEABLE_KINDS = (BackupKind.FULL.value, BackupKind.PLAIN.value)  # hold the whole database
# Runs that would race a restore for the server or the backup folder.
BLOCKING_KINDS = (*RESTORABLE_KINDS, "restore")
# The checks POST runs/{id}/restore refuses on (409), in this order; "allowed" is its 403.
REFUSING = ("restorable", "verified", "file", "compatible", "target", "sessions", "idle")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _restorable(backup: BackupRun) -> Check:
    kind, status, run = backup.kind, backup.status, str(backup.id)[:8]
    if kind == BackupKind.CONFIG.value:
        why = f"a config bundle restores into a new folder with the CLI (openwatch-backup restore {run} --to DIR)"
    elif kind == BackupKind.REDIS.value:
        why = "a Redis snapshot restores by hand (README, section \"Redis snapshot\")"
    elif kind == BackupKind.VOLUME.value:
        why = f"a volume snapshot restores with the CLI (openwatch-backup restore {run} --volume NAME)"
    elif kind not in RESTORABLE_KINDS:
        why = f"run {backup.id} is a {kind} run, not a backup; pick a database backup"
    elif status != RunStatus.SUCCEEDED.value:
        why = f"backup {backup.id} {status}: only a succeeded backup can be restored; pick another"
    elif backup.pruned_at is not None:
        why = f"backup {backup.id} was deleted by retention: its files are gone; pick another"
    else:
        return Check("restorable", True, f"a succeeded {kind} backup of the database")
    return Check("restorable", False, why)


def _verified(service: BackupService, backup: BackupRun) -> Check:
    verifies = service.recorder.list(limit=1, kind="verify", parent_id=backup.id, finished_only=True)
    if not verifies:
        return Check("verified", True, "not verified yet: the restore checks the file's checksum before it starts")
    last = verifies[0]
    if last.status == RunStatus.FAILED.value:
        return Check("verified", False, f"its last verify (run {last.id}) failed: {last.error}; verify it again "
                                        "or pick another backup")
    return Check("verified", True, f"its last verify (run {last.id}) {last.status}")


def _file(service: BackupService, backup: BackupRun) -> tuple[Check, Manifest | None]:
    reading = choose_copy(service.context, backup)
    if reading.missing is not None:
        return Check("file", False, reading.missing), None
    key = manifest_key(present_artifact(backup))
    if not reading.ctx.storage.exists(key):
        return Check("file", False, f"the manifest {reading.ctx.storage.location(key)} is missing"), None
    manifest = Manifest.from_json(reading.ctx.storage.read_bytes(key), source=key)
    if backup.sha256 and manifest.sha256 != backup.sha256:
        return Check("file", False, f"the manifest's sha256 {manifest.sha256} is not the catalog's {backup.sha256}: "
                                    "the file was replaced; pick another backup"), None
    return Check("file", True, f"{manifest.artifact} ({reading.copy.value} copy), sha256 {manifest.sha256}"), manifest


def _compatible(service: BackupService, manifest: Manifest) -> Check:
    with connect(service.target, service.redact) as conn:
        facts = server_facts(conn)
    report = check_compatibility(manifest, facts.major, service.settings.openwatch_backend_dir,
                                 allow_newer_server=False, allow_newer_migrations=False)
    if report.problems:
        return Check("compatible", False, "; ".join(report.problems))
    notes = f" ({'; '.join(report.notes)})" if report.notes else ""
    return Check("compatible", True, f"a PostgreSQL {manifest.server_version} dump onto this PostgreSQL "
                                     f"{facts.major} server{notes}")


def _new_database(service: BackupService, into: str | None) -> Check:
    live = service.target.dbname
    if not into:
        return Check("target", False, "give the new database's name")
    if not DATABASE_NAME.match(into):
        return Check("target", False, f"{into[:70]} is not a database name: letters, digits and _, up to 63, not "
                                      "starting with a digit")
    if into == live:
        return Check("target", False, f"into names the live database {live}; to restore over it send "
                                      f"{{\"confirm\": \"{live}\"}}")
    if into.lower().startswith(SCRATCH_PREFIX):
        return Check("target", False, f"names starting with {SCRATCH_PREFIX} belong to the backup tool's scratch "
                                      "databases, which the sweeper drops; choose another name")
    with connect(service.target, service.redact) as conn:
        exists = database_exists(conn, into)
    if exists:
        return Check("target", False, f"database {into} already exists; into restores only into a new database "
                                      "(choose another name)")
    return Check("target", True, f"database {into} does not exist yet: the restore creates it")


def _target(service: BackupService, backup: BackupRun, into: str | None) -> Check:
    if into is not None:
        return _new_database(service, into)
    live = service.target.dbname
    if backup.kind not in REPLACEABLE_KINDS:
        return Check("target", False, f"a {backup.kind} backup does not hold the whole database: restore it into "
                                      "a new database instead")
    return Check("target", True, f"replaces {live}; the old database is kept under a dated name, never dropped")


def _sessions(service: BackupService, terminate: bool) -> Check:
    """Replace only: the swap needs the live database to itself (the worker refuses otherwise, after its checks)."""
    live = service.target.dbname
    with connect(service.target, service.redact) as conn:
        others = other_sessions(conn, live)
    if not others:
        return Check("sessions", True, f"no other session is connected to {live}")
    if terminate:
        return Check("sessions", True, f"{describe(others)} connected to {live}: disconnected at the swap")
    return Check("sessions", False, f"{describe(others)} connected to {live}; stop OpenWatch's backend, worker and "
                                    "beat first, or disconnect them at the swap (terminate_connections)")


def _idle(service: BackupService) -> Check:
    for state in (RunStatus.RUNNING.value, RunStatus.QUEUED.value):
        active = service.recorder.list(limit=1, kinds=BLOCKING_KINDS, status=state)
        if active:
            run = active[0]
            what = "a restore" if run.kind == "restore" else f"a {run.kind} backup"
            return Check("idle", False, f"{what} is already {state} (run {run.id}); wait for it to finish")
    return Check("idle", True, "no backup or restore is queued or running")


def restore_checks(service: BackupService, backup: BackupRun, *, into: str | None,
                   terminate: bool = False) -> list[Check]:
    """Every check, in the wizard's order; `into` None means "replace the live database" (then also the sessions
    connected to it; `terminate`: they are to be disconnected). The file, verify and server checks are left out
    when the backup is ruled out already."""
    allowed = bool(service.settings_store.get(ALLOW_RESTORE_KEY, False))
    checks = [Check("allowed", allowed, "restores through the API are on" if allowed else
                    "restores through the API are off; turn on \"allow restore\" in the backup settings first"),
              _restorable(backup)]
    if checks[-1].ok:
        checks.append(_verified(service, backup))
        file_check, manifest = _file(service, backup)
        checks.append(file_check)
        checks.append(_compatible(service, manifest) if manifest is not None else
                      Check("compatible", False, "not checked: the backup's manifest could not be read"))
    checks.append(_target(service, backup, into))
    if into is None:
        checks.append(_sessions(service, terminate))
    checks.append(_idle(service))
    return checks


def first_refusal(checks: list[Check]) -> Check | None:
    """The check POST runs/{id}/restore refuses on with 409 (the first failing, in REFUSING's order)."""
    failing = {check.name: check for check in checks if not check.ok}
    return next((failing[name] for name in REFUSING if name in failing), None)
