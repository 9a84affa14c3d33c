"""Restore a backup, safer than the guide's drop-and-recreate: nothing is destroyed before it succeeded.

Full restore: verify the file, pass the compatibility gate and the guards, take a safety backup, restore
into a scratch database, check it against the manifest (row counts, canary, migration head), carry the
catalog over, then swap names. The old database is kept under a dated name and reported, never dropped.
A restore that fails or is killed at any point leaves the live database as it was.
The backup is read from its local file while it is there, else streamed from its S3 copy (no temporary
copy); details["read_from"] says which.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.errors import RestoreFailed, RestoreRefused
from openwatch_backup.operations.compat import check_compatibility
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.created_databases import KEY as CREATED_KEY
from openwatch_backup.operations.created_databases import create_recorded, drop_recorded
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.lifecycle import record_failure, throttled_progress
from openwatch_backup.operations.read_source import DETAILS_KEY as READ_FROM
from openwatch_backup.operations.read_source import Reading, choose_copy
from openwatch_backup.operations.remote_verify import located
from openwatch_backup.operations.restore_checks import check_restored
from openwatch_backup.operations.restore_stream import stream_into_database
from openwatch_backup.operations.restore_table import check_table_names, restore_rows
from openwatch_backup.operations.scratch_list import scratch_restore_options
from openwatch_backup.operations.sweep import sweep_leftovers
from openwatch_backup.operations.verify import client_for, quick_verify
from openwatch_backup.source.catalog_copy import copy_catalog
from openwatch_backup.source.connection import connect
from openwatch_backup.source.facts import row_counts, server_facts
from openwatch_backup.source.scratch import PREFIX as SCRATCH_PREFIX
from openwatch_backup.source.scratch import drop_database, scratch_name
from openwatch_backup.source.sessions import describe, other_sessions
from openwatch_backup.source.swap import free_kept_name, swap_in


@dataclass(frozen=True)
class RestoreRequest:
    into: str | None = None
    tables: tuple[str, ...] = ()
    data_only: bool = False
    confirm: str | None = None
    terminate_connections: bool = False
    safety_backup: bool = True
    allow_newer_server: bool = False
    allow_newer_migrations: bool = False
    copy: str | None = None  # "local" or "s3": read that copy (the host drill reads the off-site one)
    internal_scratch: bool = False  # the host drill's --into: a scratch name (owbscratch_...) it recorded itself

    def as_details(self) -> dict[str, Any]:
        return {"into": self.into, "tables": list(self.tables), "data_only": self.data_only,
                "terminate_connections": self.terminate_connections, "safety_backup": self.safety_backup,
                "allow_newer_server": self.allow_newer_server, "allow_newer_migrations": self.allow_newer_migrations,
                **({"copy": self.copy} if self.copy else {})}


@dataclass
class RestoreOutcome:
    mode: str  # "full", "into" or "table"
    database: str
    kept_database: str | None = None
    safety_backup_run: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


log = logging.getLogger(__name__)
CLEANUP_LOCK_TIMEOUT = "10s"  # a failed run's cleanup never hangs on someone's lock: the sweeper finishes it
SafetyBackup = Callable[[], BackupRun]  # the service passes its own backup method
PostSteps = Callable[[], dict[str, Any]]  # migrations and health check after a full restore; raise on failure
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _phase(ctx: OperationContext, run_id: uuid.UUID, phase: str, details: dict[str, Any] | None = None) -> None:
    """Record the phase (the sweeper and the kill tests read it), then the test-only kill point."""
    ctx.recorder.progress(run_id, phase, details=details)
    kill_point(phase)


def _verified_manifest(reading: Reading, backup: BackupRun) -> Manifest:
    result, manifest = quick_verify(reading.ctx, backup, missing=reading.missing)
    if reading.copy is CopyStorage.S3:
        result = located(reading.ctx, backup, result)  # the refusal says it was the S3 copy that failed
    if not result.passed or manifest is None:
        raise RestoreRefused(f"backup {backup.id} failed verification ({result.reason}): {result.message}")
    return manifest


def _guard(ctx: OperationContext, request: RestoreRequest, manifest: Manifest) -> dict[str, Any]:
    live = ctx.target.dbname
    if request.into is not None:
        if request.confirm is not None:
            raise RestoreRefused(f"--confirm {request.confirm} and --into {request.into} contradict each other: "
                                 f"--into creates a new database and needs no --confirm; --confirm {live} alone "
                                 "replaces the live one")
        if request.into.lower().startswith(SCRATCH_PREFIX) and not request.internal_scratch:
            raise RestoreRefused(f"--into {request.into}: names starting with {SCRATCH_PREFIX} are this tool's "
                                 "scratch databases (the sweeper drops them); choose another name")
    with connect(ctx.target, ctx.redact) as conn:
        facts = server_facts(conn)
        compat = check_compatibility(manifest, facts.major, ctx.settings.openwatch_backend_dir,
                                     allow_newer_server=request.allow_newer_server,
                                     allow_newer_migrations=request.allow_newer_migrations)
        if compat.problems:
            raise RestoreRefused("; ".join(compat.problems))
        if request.into is None:
            if request.confirm != live:
                raise RestoreRefused(f"this replaces database {live}: type its name to confirm (--confirm {live})")
            others = other_sessions(conn, live)
            if others and not request.terminate_connections:
                raise RestoreRefused(f"{describe(others)} connected to {live}; stop OpenWatch's backend, worker and "
                                     "beat first (docker stop openwatch-backend openwatch-worker "
                                     "openwatch-celery-beat), or pass --terminate-connections")
        elif request.into == live or not _DATABASE_NAME.match(request.into):
            raise RestoreRefused(f"--into needs a new database name other than {live} (letters, digits, _)")
        else:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (request.into,)).fetchone()
            if exists:
                raise RestoreRefused(f"database {request.into} already exists; --into restores only into a new "
                                     "database (drop it or choose another name)")
    return {"server_version": facts.version, "compat_notes": compat.notes}


def run_restore(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun, request: RestoreRequest,
                safety_backup: SafetyBackup, post_steps: PostSteps | None = None) -> RestoreOutcome | None:
    if not ctx.recorder.claim(run_id):
        return None
    started = time.monotonic()
    try:
        # The local file while it is there, else the S3 object, streamed; or the copy the request names.
        reading = choose_copy(ctx, backup, CopyStorage(request.copy) if request.copy else None)
        _phase(ctx, run_id, "verifying", details={READ_FROM: reading.copy.value})
        manifest = _verified_manifest(reading, backup)
        _phase(ctx, run_id, "guards")
        details = _guard(ctx, request, manifest)
        if not request.tables and not request.into and manifest.kind not in ("full", "plain"):
            raise RestoreRefused(f"backup {backup.id} is of kind {manifest.kind}: it does not hold the whole database; "
                                 "restore it --into a new database, or use --table with a tables backup")
        # reading.ctx reads the chosen copy; the sweep of .partial files stays on the service's (local) storage.
        if request.tables:
            outcome = _restore_tables(reading.ctx, run_id, manifest, request, safety_backup, details)
        elif request.into:
            outcome = _restore_into(reading.ctx, run_id, manifest, request.into, details)
        else:
            sweep_leftovers(ctx, exclude=run_id)
            outcome = _restore_full(reading.ctx, run_id, manifest, request, safety_backup, details)
        outcome.seconds = round(time.monotonic() - started, 3)
        if post_steps is not None and outcome.mode == "full":
            _phase(ctx, run_id, "post_restore")
            try:
                outcome.details["post_restore"] = post_steps()
            except RestoreFailed as exc:
                # The restore itself happened: keep its facts on the run, not only in the error text.
                ctx.recorder.add_details(run_id, {"restore": {"mode": outcome.mode, "database": outcome.database,
                                                              "kept_database": outcome.kept_database,
                                                              "safety_backup_run": outcome.safety_backup_run,
                                                              "seconds": outcome.seconds, **outcome.details}})
                kept = f"; the old database is kept as {outcome.kept_database}" if outcome.kept_database else ""
                raise RestoreFailed(f"restored {outcome.database} from {backup.id}{kept}, but {exc.message}") from None
        ctx.recorder.succeed(run_id, location=backup.artifact_location, size=backup.size_bytes, sha256=backup.sha256,
                             details={"restore": {"mode": outcome.mode, "database": outcome.database,
                                                  "kept_database": outcome.kept_database,
                                                  "safety_backup_run": outcome.safety_backup_run,
                                                  "seconds": outcome.seconds, **outcome.details},
                                      "backup_run": str(backup.id), READ_FROM: reading.copy.value,
                                      # The --into database is the operator's now; a scratch one is live.
                                      CREATED_KEY: []})
        return outcome
    except BaseException as exc:
        record_failure(ctx, run_id, exc)
        raise


def _take_safety_backup(ctx: OperationContext, run_id: uuid.UUID, safety_backup: SafetyBackup) -> str:
    _phase(ctx, run_id, "safety_backup")
    run = safety_backup()
    return str(run.id)


def _restore_and_check(ctx: OperationContext, run_id: uuid.UUID, manifest: Manifest, dbname: str) -> dict[str, Any]:
    _phase(ctx, run_id, "restoring", details={"restoring_into": dbname})
    client = client_for(manifest, "pg_restore" if manifest.format == "custom" else "psql", ctx)
    with scratch_restore_options(ctx, manifest, client) as options:  # a tables backup: all but foreign keys
        stats = stream_into_database(ctx, manifest, client, dbname, options,
                                     on_bytes=throttled_progress(ctx, run_id, "restoring"))
    if stats.sha256 != manifest.sha256:
        raise RestoreFailed(f"{manifest.artifact} changed while it was read (sha256 {stats.sha256}, manifest "
                            f"{manifest.sha256})")
    _phase(ctx, run_id, "checking")
    result = check_restored(ctx, manifest, dbname, {}, deep=True)
    if not result.passed:
        raise RestoreFailed(f"the restored database did not check out ({result.reason}): {result.message}")
    return {"checks": result.checks, "restore_stream_seconds": round(stats.seconds, 3)}


def _drop_own(ctx: OperationContext, run_id: uuid.UUID, name: str) -> None:
    """Drop a database this run created, after its failure. If that fails too (the server went away), the
    original error wins and the recorded name is left for the sweeper."""
    try:
        with connect(ctx.target, ctx.redact) as admin:
            drop_recorded(ctx, run_id, admin, name, lock_timeout=CLEANUP_LOCK_TIMEOUT)
    except Exception as exc:
        log.warning("run %s could not drop its database %s (%s); the sweeper will", run_id, name,
                    ctx.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__))


def _restore_into(ctx: OperationContext, run_id: uuid.UUID, manifest: Manifest, name: str,
                  details: dict[str, Any]) -> RestoreOutcome:
    with connect(ctx.target, ctx.redact) as admin:
        create_recorded(ctx, run_id, admin, name)  # recorded first: a kill from here on is the sweeper's
    try:
        details.update(_restore_and_check(ctx, run_id, manifest, name))
    except BaseException:
        _drop_own(ctx, run_id, name)  # --into made it; a failed restore leaves nothing behind
        raise
    return RestoreOutcome(mode="into", database=name, details=details)


def _restore_full(ctx: OperationContext, run_id: uuid.UUID, manifest: Manifest, request: RestoreRequest,
                  safety_backup: SafetyBackup, details: dict[str, Any]) -> RestoreOutcome:
    safety = _take_safety_backup(ctx, run_id, safety_backup) if request.safety_backup else None
    scratch = scratch_name("restore", run_id)
    with connect(ctx.target, ctx.redact) as admin:
        drop_database(admin, scratch)  # an earlier delivery's, by its name
        create_recorded(ctx, run_id, admin, scratch)
    try:
        details.update(_restore_and_check(ctx, run_id, manifest, scratch))
        kept = free_kept_name(ctx.target, ctx.redact, datetime.now(UTC))
        # Recorded before the catalog is carried over, so both databases' catalogs know the plan: after a
        # kill the sweeper tells a completed swap (the kept name exists) from one that never happened.
        _phase(ctx, run_id, "swapping", details={"swap": {"kept": kept, "restored": scratch}})
        details["catalog_rows_carried"] = copy_catalog(ctx.target, scratch, ctx.redact)
        kill_point("catalog_copied")
        ctx.recorder.release_connections()  # our own pooled sessions would block the rename
        swap_in(ctx.target, ctx.redact, scratch, kept, terminate_others=request.terminate_connections,
                pause=kill_point)
        kill_point("swapped")
    except BaseException:
        _drop_own(ctx, run_id, scratch)
        raise
    return RestoreOutcome(mode="full", database=ctx.target.dbname, kept_database=kept, safety_backup_run=safety,
                          details=details)


def _restore_tables(ctx: OperationContext, run_id: uuid.UUID, manifest: Manifest, request: RestoreRequest,
                    safety_backup: SafetyBackup, details: dict[str, Any]) -> RestoreOutcome:
    """The guide's "Restore a Single Table", in one transaction: all of the table's rows or none."""
    live = ctx.target.dbname
    if request.into is not None:
        raise RestoreRefused("--table restores rows into the live database; to inspect a table, restore the "
                             "backup --into a new database instead")
    if request.confirm != live:
        raise RestoreRefused(f"this writes into database {live}: type its name to confirm (--confirm {live})")
    if manifest.format != "custom":
        raise RestoreRefused("a plain-SQL backup restores whole; --table needs a backup of kind full or tables")
    # Names checked against the archive's own table list before any work: a typo or an injection attempt
    # is refused here, not after a safety backup and a restore of nothing.
    check_table_names(ctx, manifest, request.tables, data_only=request.data_only)
    safety = _take_safety_backup(ctx, run_id, safety_backup) if request.safety_backup else None
    _phase(ctx, run_id, "restoring")
    stats = restore_rows(ctx, manifest, live, request.tables, data_only=request.data_only,
                         on_bytes=throttled_progress(ctx, run_id, "restoring"),
                         before_commit=lambda: kill_point("table_before_commit"))
    with connect(ctx.target, ctx.redact) as conn:
        details["row_counts_after"] = row_counts(conn, list(request.tables))
    details["restore_stream_seconds"] = round(stats.seconds, 3)
    details["sha256_checked"] = stats.sha256
    return RestoreOutcome(mode="table", database=live, safety_backup_run=safety, details=details)
