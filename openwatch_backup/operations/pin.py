"""Pin a backup ("keep forever": no retention rule deletes it) or unpin it."""

from __future__ import annotations

from datetime import UTC, datetime

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.prune_store import PruneStore
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.core.retention import FAMILY_OF_KIND
from openwatch_backup.errors import RunNotFound
from openwatch_backup.operations.context import OperationContext


def set_pin(ctx: OperationContext, store: PruneStore, ref: str, pinned: bool, requested_by: str | None) -> BackupRun:
    run = ctx.recorder.get(ref)
    short = str(run.id)[:8]
    if run.kind not in FAMILY_OF_KIND or run.status != RunStatus.SUCCEEDED.value:
        raise RunNotFound(f"run {short} is not a successful backup (kind {run.kind}, status {run.status}); only "
                          "backups can be pinned: pick one from `openwatch-backup list --status succeeded`")
    if pinned and run.pruned_at is not None:
        raise RunNotFound(f"backup {short} was pruned at {run.pruned_at:%Y-%m-%d %H:%M} UTC: its files are "
                          "deleted, there is nothing left to keep")
    info = {"pinned": pinned, "by": ctx.redact(requested_by) if requested_by else None,
            "at": datetime.now(UTC).isoformat()}
    if not store.set_pinned(run.id, pinned, info):
        raise RunNotFound(f"backup {short} is being pruned right now; it cannot be pinned")
    return ctx.recorder.get(str(run.id))
