"""Is this backup still there? One answer for verify, restore, drill, check, the API and the service's manifest.

A backup's files can be read when its run is a successful backup with an artifact that retention has neither
taken (`pruned_at`) nor begun to take (`details.pruning`: a prune recorded its intent and may have deleted
part of the files before it stopped; the next prune finishes it).
"""

from __future__ import annotations

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.errors import RunNotFound

BACKUP_KINDS = frozenset(k.value for k in BackupKind)


def _not_a_backup(run: BackupRun) -> bool:
    return run.kind not in BACKUP_KINDS or run.status != RunStatus.SUCCEEDED.value or not run.details.get("artifact")


def _taken_by_retention(run: BackupRun) -> bool:
    return run.pruned_at is not None or "pruning" in run.details


def is_present(run: BackupRun) -> bool:
    """A successful backup whose files retention has not taken nor begun to take."""
    return not _not_a_backup(run) and not _taken_by_retention(run)


def present_artifact(run: BackupRun) -> str:
    """The artifact name of a backup that is still there; RunNotFound (one line, with the fix) otherwise."""
    if _not_a_backup(run):
        raise RunNotFound(f"run {run.id} is not a successful backup (kind {run.kind}, status {run.status}); "
                          "verify takes a backup run from `openwatch-backup list --status succeeded`")
    if _taken_by_retention(run):
        raise RunNotFound(f"backup {run.id} was pruned by retention: its files are deleted; pick another from "
                          "`openwatch-backup list --status succeeded`")
    return str(run.details["artifact"])
