"""The checklist's two off-site items: the newest backup has a verified S3 copy; an S3 copy was re-read recently.

Both skip while OPENWATCH_BACKUP_S3_BUCKET is unset. They read only the catalog (backup_copies): `check` must stay
fast and must not touch the bucket; the re-read itself is `verify RUN --copy s3` (the weekly drill runs it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from openwatch_backup.catalog.models import BackupCopy, BackupRun
from openwatch_backup.core.copies import CopyState, CopyStorage
from openwatch_backup.operations.context import OperationContext

REREAD_DAYS = 90  # the guide's quarterly "off-site backup accessibility verified"
NOT_CONFIGURED = "off-site storage is not configured"
COPY_TITLE = "Backup copied to off-site storage"
ACCESS_TITLE = "Off-site backup accessibility verified"
VERIFIED_SCAN = 10_000  # verified S3 copies looked at; retention keeps far fewer

Age = Callable[[datetime | None, datetime], str]


def _short(run_id: object) -> str:
    return str(run_id)[:8]


def offsite_copy_item(ctx: OperationContext, newest: BackupRun | None, now: datetime,
                      age: Age) -> tuple[str, str, str]:
    """(status, detail, fix) of "Backup copied to off-site storage" for the newest backup."""
    if ctx.offsite is None:
        return "skip", NOT_CONFIGURED, ""
    if newest is None:
        return "fail", "no successful backup to copy off-site", "run `openwatch-backup backup --offsite`"
    run = _short(newest.id)
    fix = f"run `openwatch-backup offsite {run}`"
    copy = ctx.copies.get(newest.id, CopyStorage.S3)
    artifact = newest.details.get("artifact")
    if copy is None:
        return "fail", f"backup {run} ({artifact}) has no off-site copy", fix
    if copy.state == CopyState.VERIFIED.value:
        return "ok", f"backup {run} verified at {copy.location} {age(copy.verified_at, now)}", ""
    if copy.state == CopyState.COPYING.value:
        detail = f"backup {run}: its off-site copy is copying (attempt {copy.attempts}, since " \
                 f"{age(copy.updated_at, now)})"
        return "fail", detail, f"wait for the upload to finish, or {fix} again"
    if copy.state == CopyState.FAILED.value:
        return "fail", f"backup {run}: its off-site copy failed: {copy.error or 'no reason recorded'}", fix
    if copy.state == CopyState.PENDING.value:
        return "fail", f"backup {run}: its off-site copy is pending (not copied yet)", fix
    return "fail", f"backup {run}: its off-site copy is {copy.state}", fix


def _newest(copies: list[BackupCopy], when: Callable[[BackupCopy], datetime | None]) -> BackupCopy | None:
    dated = [c for c in copies if when(c) is not None]
    return max(dated, key=lambda c: when(c) or datetime.min) if dated else None


def offsite_reread_item(ctx: OperationContext, now: datetime, age: Age) -> tuple[str, str, str]:
    """(status, detail, fix) of "Off-site backup accessibility verified": a verified S3 copy whose full re-read
    (verify --copy s3) matched within REREAD_DAYS. A copy whose last check failed does not count."""
    if ctx.offsite is None:
        return "skip", NOT_CONFIGURED, ""
    copies = ctx.copies.in_state(CopyStorage.S3, CopyState.VERIFIED, CopyState.FAILED, limit=VERIFIED_SCAN)
    verified = [c for c in copies if c.state == CopyState.VERIFIED.value]
    reread = _newest(verified, lambda c: c.reverified_at)
    if reread is not None and reread.reverified_at is not None and \
            (now - reread.reverified_at).total_seconds() <= REREAD_DAYS * 86400:
        return "ok", f"backup {_short(reread.run_id)} re-read from {reread.location} " \
                     f"{age(reread.reverified_at, now)}", ""
    last = _newest(copies, lambda c: c.reverified_at)
    if last is None:
        when = "never re-read"
    elif last.state == CopyState.FAILED.value:  # re-read once, failed a check since: that copy says nothing now
        when = f"backup {_short(last.run_id)}'s copy, re-read {age(last.reverified_at, now)}, failed since: " \
               f"{last.error}"
    else:
        when = f"last one {age(last.reverified_at, now)}"
    detail = f"no off-site copy re-read and verified in {REREAD_DAYS} days ({when})"
    target = _newest(verified, lambda c: c.verified_at)
    if target is None:
        return "fail", detail, "copy a backup off-site (`openwatch-backup offsite RUN`), then run " \
                               "`openwatch-backup verify RUN --copy s3`"
    return "fail", detail, f"run `openwatch-backup verify {_short(target.run_id)} --copy s3`"
