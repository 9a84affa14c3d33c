"""Re-reading an S3 copy: the checks only a remote copy has, its copy row, and the drill's remote re-read.

A verify that read the S3 object already hashed every byte and compared the remote manifest with the catalog
(operations/verify.quick_verify on a context whose storage is S3). What is left is the object's own metadata
(the sha256 our upload stored; a tool that rewrote the object may have kept or dropped it), and the copy row:
a match is a re-read (`reverified_at`, what `check` asks for within 90 days), a mismatch fails the copy.
A storage error (endpoint down, access denied) is not a verdict on the copy: it propagates and the row stays.
"""

from __future__ import annotations

import time
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyState, CopyStorage
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.core.naming import artifact_key
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult, failed
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.presence import BACKUP_KINDS, is_present
from openwatch_backup.operations.read_source import choose_copy
from openwatch_backup.operations.verify import quick_verify, verify_error

_SCANNED = 50  # the newest backups looked at for the newest verified remote copy


def check_metadata(ctx: OperationContext, backup: BackupRun, result: VerifyResult) -> VerifyResult:
    """After a passing read of the S3 object: its metadata must carry the same sha256."""
    if not result.passed or ctx.offsite is None or backup.sha256 is None:
        return result
    key = artifact_key(str(backup.details["artifact"]))
    head = ctx.offsite.head(key)
    if head.sha256 != backup.sha256:
        return failed(result.deep, VerifyReason.CHECKSUM, f"{ctx.offsite.location(key)} has metadata sha256 "
                      f"{head.sha256}, the manifest says {backup.sha256}", result.checks)
    return result


def located(ctx: OperationContext, backup: BackupRun, result: VerifyResult) -> VerifyResult:
    """A failure found reading the S3 copy says so: the same file name may be fine on local disk."""
    if result.passed or ctx.offsite is None or "s3://" in result.message:
        return result
    location = ctx.offsite.location(artifact_key(str(backup.details["artifact"])))
    return failed(result.deep, result.reason or VerifyReason.CHECKSUM, f"{result.message} (read from the S3 copy "
                  f"{location})", result.checks)


def record_remote(ctx: OperationContext, backup: BackupRun, result: VerifyResult) -> None:
    """The S3 copy's row follows the re-read: reverified (a full re-read matched), or failed with the reason."""
    if result.passed and backup.sha256 is not None and backup.size_bytes is not None:
        ctx.copies.reverified(backup.id, CopyStorage.S3, size=backup.size_bytes, sha256=backup.sha256)
    elif not result.passed:
        ctx.copies.failed(backup.id, CopyStorage.S3, verify_error(result))


def newest_remote(ctx: OperationContext) -> BackupRun | None:
    """The newest present backup whose S3 copy is verified (None when off-site is off or there is none)."""
    if ctx.offsite is None:
        return None
    runs = [r for r in ctx.recorder.list(limit=_SCANNED, kinds=tuple(BACKUP_KINDS), status=RunStatus.SUCCEEDED.value)
            if is_present(r) and "pruning_s3" not in r.details]  # not one retention is deleting from S3
    copies = ctx.copies.of_runs(r.id for r in runs)
    for run in runs:
        if any(c.storage == CopyStorage.S3.value and c.state == CopyState.VERIFIED.value for c in copies[run.id]):
            return run
    return None


def reread_remote(ctx: OperationContext, backup: BackupRun) -> VerifyResult:
    """Read the whole S3 object as verify --copy s3 does (manifest, size, sha256, readable, metadata) and
    record the outcome on its copy row."""
    reading = choose_copy(ctx, backup, CopyStorage.S3)
    result, _ = quick_verify(reading.ctx, backup)
    result = located(ctx, backup, check_metadata(ctx, backup, result))
    record_remote(ctx, backup, result)
    return result


def drill_remote(ctx: OperationContext) -> tuple[dict[str, Any] | None, VerifyResult | None]:
    """The weekly drill's remote part: re-read the newest verified remote copy. (details, result), or
    (None, None) when there is nothing to re-read."""
    backup = newest_remote(ctx)
    if backup is None:
        return None, None
    started = time.monotonic()
    result = reread_remote(ctx, backup)
    details = {"backup_run": str(backup.id), "seconds": round(time.monotonic() - started, 3),
               "verify": result.as_details()}
    return details, result
