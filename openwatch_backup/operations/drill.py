"""The disaster-recovery drill: restore the newest backup into a scratch database, check it, time it.

The guide's quarterly "full restore test" and "recovery time measured against RTO targets", as a run:
the time to recover (verify + restore + checks) is compared with the RTO for database corruption.
The backup is read from its local file while it is there, else from its S3 copy. With off-site on, the drill
also re-reads the newest verified remote copy in full (details["remote"]); a mismatch fails the drill.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.core.verify_result import VerifyReason
from openwatch_backup.errors import RunNotFound
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.presence import is_present
from openwatch_backup.operations.read_source import DETAILS_KEY as READ_FROM
from openwatch_backup.operations.read_source import choose_copy
from openwatch_backup.operations.remote_verify import drill_remote, located
from openwatch_backup.operations.sweep import sweep_leftovers
from openwatch_backup.operations.verify import deep_verify, quick_verify, verify_error

GUIDE_RTO = "15-30 min (database corruption: restore from pg_dump)"


def newest_restorable(ctx: OperationContext) -> BackupRun:
    for kind in (BackupKind.FULL, BackupKind.PLAIN):
        runs = ctx.recorder.list(limit=50, kind=kind.value, status=RunStatus.SUCCEEDED.value)
        runs = [r for r in runs if is_present(r)]  # not pruned by retention
        if runs:
            return runs[0]
    raise RunNotFound("no successful full backup to drill with; take one with `openwatch-backup backup`")


def run_drill(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun) -> bool | None:
    """Carry out a queued drill run. True when it passed (checks passed, within the RTO)."""
    if not ctx.recorder.claim(run_id):
        return None
    try:
        sweep_leftovers(ctx, exclude=run_id)
        started = time.monotonic()
        reading = choose_copy(ctx, backup)  # the local file while it is there, else the S3 object, streamed
        ctx.recorder.progress(run_id, "quick", details={READ_FROM: reading.copy.value})
        # The restore hashes every byte it reads, so the quick check skips its own full read here.
        result, manifest = quick_verify(reading.ctx, backup, read_content=False, missing=reading.missing)
        if result.passed and manifest is not None:
            ctx.recorder.progress(run_id, "restoring")
            result = deep_verify(reading.ctx, run_id, manifest, result, purpose="drill")
            if result.reason in (VerifyReason.UNREADABLE, VerifyReason.CHECKSUM):
                # Only when it failed: read the whole file to say why (a changed file, or a bad dump).
                full, _ = quick_verify(reading.ctx, backup)
                if not full.passed:
                    result = full
        if reading.copy is CopyStorage.S3:
            result = located(ctx, backup, result)  # a failure says it was the S3 copy that failed
        seconds = time.monotonic() - started
        target = ctx.settings.rto_minutes * 60
        details: dict[str, Any] = {
            "drill": {"backup_run": str(backup.id), "rto_seconds": round(seconds, 3), "rto_target_seconds": target,
                      "within_rto": seconds <= target, "guide_rto": GUIDE_RTO, "verify": result.as_details(),
                      READ_FROM: reading.copy.value}}
        if not result.passed:
            ctx.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, f"verify_{result.reason}",
                                               verify_error(result), details)
            return False
        ctx.recorder.progress(run_id, "remote")
        details["drill"]["remote"], remote = drill_remote(ctx)  # outside the RTO: not part of the recovery
        if remote is not None and not remote.passed:
            ctx.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, f"remote_{remote.reason}",
                                               f"the off-site copy of backup {details['drill']['remote']['backup_run']}"
                                               f" failed its re-read: {verify_error(remote)}", details)
            return False
        if seconds > target:
            ctx.recorder.finish_unsuccessfully(
                run_id, RunStatus.FAILED, "rto_exceeded",
                f"recovery took {seconds:.1f} s, over the {ctx.settings.rto_minutes:g} min objective "
                "(OPENWATCH_BACKUP_RTO_MINUTES)", details)
            return False
        ctx.recorder.succeed(run_id, location=backup.artifact_location, size=backup.size_bytes, sha256=backup.sha256,
                             details=details)
        return True
    except BaseException as exc:
        record_failure(ctx, run_id, exc)
        raise
