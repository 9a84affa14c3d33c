"""Remove what killed runs left behind: scratch databases and `.partial` files of runs no longer running.

Everything is found by name (`owbscratch_<purpose>_<run>` databases, `<artifact>.partial` files) and
checked against the catalog, so the work of a run that is still alive is never touched.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.core.naming import PARTIAL_SUFFIX
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.source.scratch import sweep_scratch_databases

POSTGRES_PREFIX = "postgres"


@dataclass
class SweepReport:
    databases: list[str] = field(default_factory=list)
    partial_files: list[str] = field(default_factory=list)


def sweep_leftovers(ctx: OperationContext, exclude: uuid.UUID | None = None) -> SweepReport:
    running = [r for r in ctx.recorder.list(limit=1000, status=RunStatus.RUNNING.value) if r.id != exclude]
    report = SweepReport()

    def is_finished_run(prefix: str) -> bool:
        if exclude is not None and exclude.hex.startswith(prefix):
            return True  # the caller's own leftover from an earlier attempt
        status = ctx.recorder.status_by_prefix(prefix)
        return status is not None and RunStatus(status).is_final

    report.databases = sweep_scratch_databases(ctx.target, ctx.redact, is_finished_run)
    in_progress = {str(r.details.get("artifact_in_progress")) + PARTIAL_SUFFIX for r in running}
    for obj in ctx.storage.list(POSTGRES_PREFIX):
        if obj.key.endswith(PARTIAL_SUFFIX) and obj.key not in in_progress:
            ctx.storage.delete(obj.key)
            report.partial_files.append(obj.key)
    return report
