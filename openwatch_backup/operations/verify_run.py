"""Verify as a recorded run (kind `verify`, linked to its backup run through parent_id).

The run reads the local file while it is there, else the S3 object (operations/read_source.py), or the copy
asked for (`verify --copy s3`). details["read_from"] says which; only that copy's row moves.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.read_source import DETAILS_KEY, choose_copy
from openwatch_backup.operations.remote_verify import check_metadata, located, record_remote
from openwatch_backup.operations.sweep import sweep_leftovers
from openwatch_backup.operations.verify import deep_verify, quick_verify, verify_error


def run_verify(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun, deep: bool,
               copy: CopyStorage | None = None) -> VerifyResult | None:
    """Carry out a queued verify run; None when another delivery already claimed it."""
    if not ctx.recorder.claim(run_id):
        return None
    try:
        reading = choose_copy(ctx, backup, copy)
        ctx.recorder.progress(run_id, "quick", details={DETAILS_KEY: reading.copy.value, "copy": reading.copy.value})
        result, manifest = quick_verify(reading.ctx, backup, missing=reading.missing)
        if reading.copy is CopyStorage.S3:
            result = check_metadata(ctx, backup, result)
        if deep and manifest is not None and (manifest.config is not None or manifest.redis is not None
                                                     or manifest.volume is not None):
            result = replace(result, deep=True)  # a bundle or an RDB: no database to restore into; quick reads it all
        elif result.passed and deep and manifest is not None:
            ctx.recorder.progress(run_id, "deep")
            sweep_leftovers(ctx, exclude=run_id)  # the service's context: .partial files are local ones
            result = deep_verify(reading.ctx, run_id, manifest, result)
        if reading.copy is CopyStorage.S3:
            result = located(ctx, backup, result)
        details = {"verify": result.as_details(), "backup_run": str(backup.id)}
        if result.reason is VerifyReason.PASSPHRASE:
            pass  # no passphrase, or another one: nothing was learnt about the copy's bytes; its state stays
        elif reading.copy is CopyStorage.S3:
            record_remote(ctx, backup, result)
        else:
            _record_local_copy(ctx, backup, result)
            if reading.missing is not None and ctx.offsite is not None:
                ctx.copies.failed(backup.id, CopyStorage.S3, verify_error(result))  # looked for: gone there too
        if result.passed:
            ctx.recorder.succeed(run_id, location=backup.artifact_location, size=backup.size_bytes,
                                 sha256=backup.sha256, details=details)
        else:
            ctx.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, f"verify_{result.reason}",
                                               verify_error(result), details)
        return result
    except BaseException as exc:
        record_failure(ctx, run_id, exc)
        raise


def _record_local_copy(ctx: OperationContext, backup: BackupRun, result: VerifyResult) -> None:
    """The local copy's state follows the verify of the local file: verified, or failed with the reason."""
    if backup.sha256 is None or backup.size_bytes is None:
        return
    if result.passed:
        ctx.copies.verified(backup.id, CopyStorage.LOCAL, size=backup.size_bytes, sha256=backup.sha256)
    else:
        ctx.copies.failed(backup.id, CopyStorage.LOCAL, verify_error(result))
