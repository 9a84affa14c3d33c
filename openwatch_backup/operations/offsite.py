"""An off-site copy as a recorded run (kind `offsite`, parent_id = the backup run): the artifact and its manifest
streamed from the local file to S3, then checked there, and the backup's s3 copy row set to what happened.

Intent first: the copy row is `copying` before a byte leaves, and the multipart upload's id is on it as soon as
the upload exists, so a process killed mid-upload leaves an upload the sweeper finds and aborts. The local file
is only ever read. A re-run finds a matching object (HEAD: size and our sha256 metadata) and uploads nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyState, CopyStorage
from openwatch_backup.core.naming import artifact_key, manifest_key
from openwatch_backup.errors import (
    BackupError,
    StorageError,
    StorageIntegrityError,
    StorageObjectMissing,
)
from openwatch_backup.foreign_errors import as_backup_error
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.lifecycle import record_failure, throttled_progress
from openwatch_backup.operations.presence import present_artifact
from openwatch_backup.storage.factory import required_offsite

if TYPE_CHECKING:
    from openwatch_backup.storage.s3 import S3Storage
    from openwatch_backup.storage.s3_upload import S3Writer

CHUNK = 1 << 20


@dataclass(frozen=True)
class _Source:
    """What is copied: the backup's artifact and manifest keys, and the size and sha256 the catalog recorded."""

    key: str
    manifest: str
    size: int
    sha256: str
    manifest_bytes: bytes  # read and checked before anything is uploaded


def offsite_source(ctx: OperationContext, backup: BackupRun) -> _Source:
    """The backup to copy, refused (one line) unless it is present, succeeded and its local file is there."""
    artifact = present_artifact(backup)
    key = artifact_key(artifact)
    if backup.sha256 is None or backup.size_bytes is None:
        raise StorageIntegrityError(f"backup {backup.id} has no recorded size or sha256; nothing to check a copy "
                                    "against")
    if not ctx.storage.exists(key):
        raise StorageObjectMissing(f"{ctx.storage.location(key)} does not exist, so backup {str(backup.id)[:8]} "
                                   "cannot be copied off-site from this host")
    manifest = manifest_key(artifact)
    data = ctx.storage.read_bytes(manifest)
    recorded = backup.details.get("manifest_sha256")
    if recorded and hashlib.sha256(data).hexdigest() != recorded:
        raise StorageIntegrityError(f"{ctx.storage.location(manifest)} was changed after the backup (its sha256 "
                                    "differs from the one the catalog recorded); nothing is copied off-site")
    return _Source(key=key, manifest=manifest, size=backup.size_bytes, sha256=backup.sha256, manifest_bytes=data)


def run_offsite(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun) -> bool:
    """Carry out a queued offsite run; False when another delivery already claimed it."""
    if not ctx.recorder.claim(run_id):
        return False
    started = False  # from here on, a failure is the copy's too (and counts as one of its attempts)
    try:
        remote = required_offsite(ctx.offsite)
        source = offsite_source(ctx, backup)
        ctx.copies.record(backup.id, CopyStorage.S3, key=source.key, location=remote.location(source.key))
        ctx.recorder.progress(run_id, "checking")
        begun = time.monotonic()
        copy = ctx.copies.get(backup.id, CopyStorage.S3)
        verified = copy is not None and copy.state == CopyState.VERIFIED.value
        if verified:
            # A verified copy is checked before anything changes: a bucket that does not answer, or is not there
            # (OPENWATCH_BACKUP_S3_BUCKET changed: an object HEAD's bare 404 cannot tell that from a lost object),
            # is the setting's problem and does not fail the copy.
            remote.check_writable()
        if not (verified and _already_there(remote, source)):
            _start_copying(ctx, backup, remote, source)
            started = True
            kill_point("offsite_started")
        if started and not _already_there(remote, source):  # there: a run killed after its upload completed
            ctx.recorder.progress(run_id, "uploading", 0)
            _upload(ctx, run_id, backup, remote, source)
            kill_point("offsite_uploaded")
            uploaded = source.size
        else:
            uploaded = 0
        ctx.recorder.progress(run_id, "manifest")
        _put_manifest(ctx, remote, source)
        ctx.copies.verified(backup.id, CopyStorage.S3, size=source.size, sha256=source.sha256)
        _succeed(ctx, run_id, backup, remote, source, begun, uploaded=uploaded)
        return True
    except BaseException as exc:
        if started or isinstance(exc, StorageIntegrityError):  # the latter: a verified copy found altered
            _copy_failed(ctx, backup, exc)
        record_failure(ctx, run_id, exc)
        raise


def _already_there(remote: S3Storage, source: _Source) -> bool:
    """True when the bucket holds this backup's object already (size and sha256 metadata match: a re-run).
    An object that differs is not ours to replace: the operator looks at it first."""
    try:
        head = remote.head(source.key)
    except StorageObjectMissing:
        return False
    if head.size == source.size and head.sha256 == source.sha256:
        return True
    raise StorageIntegrityError(f"{remote.location(source.key)} already exists as {head.size} bytes with sha256 "
                                f"{head.sha256}, not this backup's {source.size} bytes with sha256 {source.sha256}; "
                                "look at it, delete it if it is not needed, then run `openwatch-backup offsite` "
                                "again")


def _start_copying(ctx: OperationContext, backup: BackupRun, remote: S3Storage, source: _Source) -> None:
    """The copy row -> copying (one more attempt). A row that says verified while the object is gone is failed
    first: the catalog catches up with the bucket."""
    if ctx.copies.start_copying(backup.id, CopyStorage.S3):
        return
    copy = ctx.copies.get(backup.id, CopyStorage.S3)
    if copy is not None and copy.state == CopyState.DELETED.value:
        raise StorageError(f"the off-site copy of backup {str(backup.id)[:8]} was deleted by retention; it is not "
                           "copied again")
    ctx.copies.failed(backup.id, CopyStorage.S3, f"{remote.location(source.key)} is gone from the bucket")
    if not ctx.copies.start_copying(backup.id, CopyStorage.S3):
        raise StorageError(f"the off-site copy of backup {str(backup.id)[:8]} changed state while it was being "
                           "started; run `openwatch-backup offsite` again")


def _upload(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun, remote: S3Storage, source: _Source) -> None:
    """Stream the local file into a multipart upload whose id is recorded before its first part goes."""
    def recorded(upload_id: str) -> None:
        ctx.copies.set_upload(backup.id, CopyStorage.S3, upload_id)
        kill_point("offsite_upload_created")

    writer: S3Writer = remote.open_writer(source.key, size_hint=source.size, sha256=source.sha256,
                                          on_upload=recorded)
    report = throttled_progress(ctx, run_id, "uploading")
    sent = 0
    try:
        with ctx.storage.open_reader(source.key) as reader:
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
                sent += len(chunk)
                report(sent)
        if sent != source.size:
            raise StorageIntegrityError(f"{ctx.storage.location(source.key)} read as {sent} bytes, not the "
                                        f"{source.size} its backup recorded; nothing was copied")
        kill_point("offsite_uploading")
    except BaseException:
        writer.abort()  # the copy row's failure (the caller's) clears the recorded upload id
        raise
    writer.commit()  # refuses bytes whose sha256 differs, then HEAD-checks size and sha256 metadata
    ctx.copies.set_upload(backup.id, CopyStorage.S3, None)  # completed: nothing left for the sweeper to abort


def _put_manifest(ctx: OperationContext, remote: S3Storage, source: _Source) -> None:
    """The manifest next to the artifact (what `catalog rebuild --from s3` reads). One already there must be the
    same bytes."""
    data = source.manifest_bytes
    try:
        there = remote.read_bytes(source.manifest)
    except StorageObjectMissing:
        remote.put_bytes(source.manifest, data)
        return
    if there != data:
        raise StorageIntegrityError(f"{remote.location(source.manifest)} already exists with other content than "
                                    f"{ctx.storage.location(source.manifest)}; look at it, delete it if it is not "
                                    "needed, then run `openwatch-backup offsite` again")


def _succeed(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun, remote: S3Storage, source: _Source,
             started: float, *, uploaded: int) -> None:
    seconds = max(time.monotonic() - started, 1e-6)
    details: dict[str, Any] = {"backup_run": str(backup.id), "offsite": {
        "key": source.key, "location": remote.location(source.key),
        "manifest_location": remote.location(source.manifest), "already_there": uploaded == 0,
        "seconds": round(seconds, 3), "bytes": uploaded,
        "bytes_per_second": round(uploaded / seconds) if uploaded else None}}
    ctx.recorder.succeed(run_id, location=remote.location(source.key), size=source.size, sha256=source.sha256,
                         details=details, bytes_done=uploaded)


def _copy_failed(ctx: OperationContext, backup: BackupRun, exc: BaseException) -> None:
    """The copy row -> failed with the failure's one line; the run's own failure is recorded by the caller."""
    if isinstance(exc, BackupError):
        reason = exc.message
    elif isinstance(exc, KeyboardInterrupt):
        reason = "interrupted by the operator"
    else:
        reason = as_backup_error(exc, where=ctx.target.describe(), redact=ctx.redact).message
    # The catalog away: the run's failure says so, and the sweeper fails the copy once the run is abandoned.
    with contextlib.suppress(BackupError):
        ctx.copies.failed(backup.id, CopyStorage.S3, ctx.redact(reason.splitlines()[0] if reason else "failed"))
