"""Remove what killed runs left behind: scratch and half-restored databases, `.partial` files.

Scratch databases are found by name (`owbscratch_<purpose>_<run>`) and `--into` targets by what their run
recorded before creating them; either is dropped only once its run has ended without succeeding, so the
work of a run that is still alive, or a database a run did not create, is never touched. The database a
completed swap kept (`<db>_pre_restore_...`) is the operator's: it is reported, never dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.core.naming import PARTIAL_SUFFIX
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.created_databases import KEY as CREATED_KEY
from openwatch_backup.operations.created_databases import recorded
from openwatch_backup.operations.families import list_families
from openwatch_backup.source.connection import connect
from openwatch_backup.source.scratch import drop_database, sweep_scratch_databases

_SCANNED = 1000  # runs that create databases looked at, newest first
_CREATORS = ("restore", "verify", "drill")  # the kinds of run that create databases (recorded before creating)


@dataclass
class SweepReport:
    databases: list[str] = field(default_factory=list)
    partial_files: list[str] = field(default_factory=list)
    kept_databases: list[str] = field(default_factory=list)  # of completed swaps: the operator drops them


def _ended_unsuccessfully(run: BackupRun) -> bool:
    return RunStatus(run.status).is_final and run.status != RunStatus.SUCCEEDED.value


def _sweep_recorded(ctx: OperationContext, runs: list[BackupRun], report: SweepReport) -> None:
    """Drop the databases that ended runs recorded as created by themselves; report completed swaps."""
    live = ctx.target.dbname
    with connect(ctx.target, ctx.redact) as conn:
        existing = {str(r[0]) for r in conn.execute("SELECT datname FROM pg_database")}
        for run in runs:
            if not _ended_unsuccessfully(run):
                continue
            names = recorded(run.details)
            for name in names:
                if name in existing and name != live:  # never the live name, whatever a row says
                    drop_database(conn, name)
                    report.databases.append(name)
            if names:
                ctx.recorder.add_details(run.id, {CREATED_KEY: []})  # gone: a name reused later is not ours
            swap = run.details.get("swap")
            kept, restored = (str(swap.get("kept")), str(swap.get("restored"))) if isinstance(swap, dict) else ("", "")
            if kept in existing and restored not in existing:
                report.kept_databases.append(kept)
                ctx.recorder.add_details(run.id, {"swap_completed": {
                    "database": live, "kept_database": kept,
                    "note": "the swap committed before the run ended: the restored backup is live, the old "
                            f"database is kept as {kept}; drop it once it is no longer needed"}})


def sweep_leftovers(ctx: OperationContext, exclude: uuid.UUID | None = None) -> SweepReport:
    running = [r for r in ctx.recorder.list(limit=1000, status=RunStatus.RUNNING.value) if r.id != exclude]
    report = SweepReport()

    def is_finished_run(prefix: str) -> bool:
        if exclude is not None and exclude.hex.startswith(prefix):
            return True  # the caller's own leftover from an earlier attempt
        status = ctx.recorder.status_by_prefix(prefix)
        return status is not None and RunStatus(status).is_final

    creators = [r for r in ctx.recorder.list(limit=_SCANNED, kinds=_CREATORS) if r.id != exclude]
    _sweep_recorded(ctx, creators, report)
    report.databases += [n for n in sweep_scratch_databases(ctx.target, ctx.redact, is_finished_run)
                         if n not in report.databases]
    in_progress = {str(r.details.get("artifact_in_progress")) + PARTIAL_SUFFIX for r in running}
    for obj in list_families(ctx.storage):  # every family: a killed config bundle leaves its .partial too
        if obj.key.endswith(PARTIAL_SUFFIX) and obj.key not in in_progress:
            ctx.storage.delete(obj.key)
            report.partial_files.append(obj.key)
    return report
