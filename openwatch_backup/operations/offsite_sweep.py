"""The sweeper's off-site part: abort the multipart uploads killed copies left, and pick the one copy to retry.

An offsite run records its upload's id on the s3 copy row before the first part goes (operations/offsite.py), so
a copy still `copying` whose run no longer runs names exactly the upload to abort. Uploads under our prefix that
no copy owns (the id was lost: the catalog was away, or an abort failed) are aborted once older than an hour,
which no live upload of ours reaches without its row.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyState, CopyStorage
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import StorageObjectMissing
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.presence import BACKUP_KINDS, is_present

OFFSITE_KIND = "offsite"
INTERRUPTED = "interrupted (its offsite run ended without finishing); retried by the next run"
ORPHAN_AGE = timedelta(hours=1)
MAX_ATTEMPTS = 5  # a copy failing this often needs the operator (`check` and the alerts say so), not a loop
_ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def _offsite_runs(ctx: OperationContext, backup_id: uuid.UUID) -> list[BackupRun]:
    return ctx.recorder.list(limit=20, kind=OFFSITE_KIND, parent_id=backup_id)


def abort_interrupted_uploads(ctx: OperationContext, now: datetime | None = None) -> list[str]:
    """Abort the uploads of copies whose offsite run ended (abandoned, failed, cancelled) and of uploads nobody
    owns that are over an hour old; fail those copies. Returns the keys aborted."""
    remote = ctx.offsite
    if remote is None:
        return []
    now = now or datetime.now(UTC)
    aborted: list[str] = []
    owned: set[str] = set()
    for copy in ctx.copies.in_state(CopyStorage.S3, CopyState.COPYING):
        if any(run.status in _ACTIVE for run in _offsite_runs(ctx, copy.run_id)):
            if copy.upload_id:
                owned.add(copy.upload_id)
            continue
        if copy.upload_id:
            with contextlib.suppress(StorageObjectMissing):  # completed or aborted already: nothing to abort
                remote.abort_upload(copy.key, copy.upload_id)
            aborted.append(copy.key)
        ctx.copies.failed(copy.run_id, CopyStorage.S3, INTERRUPTED)
    for upload in remote.open_uploads():
        if upload.upload_id in owned or now - upload.initiated < ORPHAN_AGE:
            continue
        with contextlib.suppress(StorageObjectMissing):
            remote.abort_upload(upload.key, upload.upload_id)
        aborted.append(upload.key)
    return aborted


BACKLOG = 500  # backups looked at, newest first: far more than any retention keeps locally


def offsite_to_retry(ctx: OperationContext, now: datetime | None = None) -> BackupRun | None:
    """The newest locally verified backup whose s3 copy is missing, failed or pending with no offsite run active,
    tried fewer than MAX_ATTEMPTS times and not within OPENWATCH_BACKUP_STALE_AFTER_SECONDS.

    Not only the newest backup: one turned on for an install with backups already (or a copy that failed on a
    night the endpoint was down) is worked through one backup a sweep, newest first, so every verified backup
    leaves the host and local retention, which waits for the off-site copy, can go on."""
    if ctx.offsite is None:
        return None
    now = now or datetime.now(UTC)
    backups = [r for r in ctx.recorder.list(limit=BACKLOG, kinds=tuple(BACKUP_KINDS), status=RunStatus.SUCCEEDED.value)
               if is_present(r)]
    copies = ctx.copies.of_runs(r.id for r in backups)
    for backup in backups:
        if not any(c.storage == CopyStorage.LOCAL.value and c.state == CopyState.VERIFIED.value
                   for c in copies[backup.id]):
            continue  # not verified here (yet): nothing to copy
        remote = next((c for c in copies[backup.id] if c.storage == CopyStorage.S3.value), None)
        if remote is not None and (remote.state not in (CopyState.FAILED.value, CopyState.PENDING.value)
                                   or remote.attempts >= MAX_ATTEMPTS):
            continue
        runs = _offsite_runs(ctx, backup.id)
        if any(run.status in _ACTIVE for run in runs):
            return None  # one copy at a time
        if runs and (now - runs[0].created_at).total_seconds() < ctx.settings.stale_after_seconds:
            return None  # tried a moment ago: the endpoint gets time to come back
        return backup
    return None
