"""The guide's "Backup Checklist" as data: each item ok, failing (with what to do) or skipped (and why).

`openwatch-backup check` prints it and exits non-zero when any item fails, so monitoring can run it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import RunNotFound
from openwatch_backup.operations.checklist_config import config_items
from openwatch_backup.operations.checklist_offsite import (
    ACCESS_TITLE,
    COPY_TITLE,
    offsite_copy_item,
    offsite_reread_item,
)
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.drill import newest_restorable
from openwatch_backup.operations.preflight import human_bytes
from openwatch_backup.operations.presence import is_present
from openwatch_backup.operations.rto import rto_items
from openwatch_backup.operations.stored_settings import SettingProblem
from openwatch_backup.operations.verify import backup_manifest_key

RETENTION_CHECK_DAYS = 2  # the nightly chain prunes after every verified backup
VERDICT_KINDS = ("verify", "drill")  # the runs that say whether a backup reads back
FAILURE_SCAN = 500  # recent verdicts searched for failures (beat makes about 8 a week)


class ItemStatus(StrEnum):
    OK = "ok"
    WARN = "warn"  # passes (healthy stays true), but something needs doing soon: a certificate about to expire
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckItem:
    key: str
    title: str
    cadence: str  # "each backup" or "quarterly"
    status: ItemStatus
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def _age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "at an unknown time"
    hours = (now - then).total_seconds() / 3600
    return f"{hours:.1f} h ago" if hours < 48 else f"{hours / 24:.0f} days ago"


def run_checklist(ctx: OperationContext, now: datetime | None = None,
                  problems: Sequence[SettingProblem] = (), last_config_check: Any = None) -> list[CheckItem]:
    """`problems`: settings in force that cannot be used (operations/stored_settings.py), one failing item.
    `last_config_check`: backup_settings `config.checked_at` (the dispatcher's last on-change check; its problem,
    a missing input, fails the config bundle item)."""
    now = now or datetime.now(UTC)
    items: list[CheckItem] = []
    each, quarterly = "each backup", "quarterly"
    try:
        newest = newest_restorable(ctx)
    except RunNotFound:
        newest = None
    if newest is None:
        items.append(CheckItem("backup_present", "Backup file exists and has non-zero size", each, ItemStatus.FAIL,
                               "no successful full backup in the catalog", "run `openwatch-backup backup`"))
        items.append(CheckItem("backup_verified", "The backup reads back (pg_restore --list, checksum)", each,
                               ItemStatus.FAIL, "no backup to verify", "run `openwatch-backup backup`, then "
                               "`openwatch-backup verify RUN`"))
    else:
        key, _ = backup_manifest_key(newest)
        size = ctx.storage.size(key) if ctx.storage.exists(key) else None
        too_old = newest.finished_at is not None and (now - newest.finished_at).total_seconds() > \
            ctx.settings.max_age_hours * 3600
        if size is None or size == 0:
            items.append(CheckItem("backup_present", "Backup file exists and has non-zero size", each,
                                   ItemStatus.FAIL, f"{ctx.storage.location(key)} is missing or empty",
                                   "take a new backup and find out what removed the file"))
        elif too_old:
            items.append(CheckItem("backup_present", "Backup file exists and has non-zero size", each,
                                   ItemStatus.FAIL, f"the newest backup is from {_age(newest.finished_at, now)}, over "
                                   f"{ctx.settings.max_age_hours:g} h", "check that the nightly schedule runs; "
                                   "run `openwatch-backup backup`"))
        else:
            items.append(CheckItem("backup_present", "Backup file exists and has non-zero size", each, ItemStatus.OK,
                                   f"{newest.details.get('artifact')} ({human_bytes(size)}, "
                                   f"{_age(newest.finished_at, now)})"))
        items.append(_verified_item(ctx, newest, now, each))
    items.append(_verify_failures_item(ctx, now, each))
    items.append(CheckItem("offsite_copy", COPY_TITLE, each, *_item(offsite_copy_item(ctx, newest, now, _age))))
    items.append(_retention_item(ctx, now, each))
    finished = ctx.recorder.list(limit=1, finished_only=True)
    if finished and finished[0].status == RunStatus.FAILED.value:
        last = finished[0]
        items.append(CheckItem("log_clean", "The last run's log is free of errors", each, ItemStatus.FAIL,
                               f"{last.kind} run {str(last.id)[:8]} failed {_age(last.finished_at, now)}: {last.error}",
                               f"see `openwatch-backup show {str(last.id)[:8]}`, fix the cause, run it again"))
    else:
        items.append(CheckItem("log_clean", "The last run's log is free of errors", each, ItemStatus.OK,
                               "no error" if finished else "no run yet"))
    items.append(_settings_item(problems, each))
    for key, title, found in config_items(ctx, last_config_check, now, _age):
        items.append(CheckItem(key, title, each, *_item(found)))
    items.append(_drill_item(ctx, now, quarterly))
    for key, title, status, detail, fix in rto_items(ctx, now, _age):  # the guide's RTO table, row by row
        items.append(CheckItem(key, title, quarterly, ItemStatus(status), detail, fix))
    items.append(CheckItem("offsite_accessible", ACCESS_TITLE, quarterly, *_item(offsite_reread_item(ctx, now, _age))))
    items.append(CheckItem("procedures_reviewed", "Backup scripts and procedures reviewed", quarterly,
                           ItemStatus.SKIP, "a person's task: read this README and the guide"))
    return items


def _item(found: tuple[str, str, str]) -> tuple[ItemStatus, str, str]:
    status, detail, fix = found
    return ItemStatus(status), detail, fix


@dataclass(frozen=True)
class _Verdict:
    """What a verify or a drill said about its backup. A drill is a deep verify (timed): one that restored and
    checked the backup but ran over the RTO still verified it."""

    run: BackupRun
    passed: bool
    deep: bool

    @property
    def what(self) -> str:
        return "drill" if self.run.kind == "drill" else f"{'deep' if self.deep else 'quick'} verify"


def _verdict(run: BackupRun) -> _Verdict | None:
    """None for a run that said nothing about the backup (cancelled, abandoned, still running)."""
    if run.status not in (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value):
        return None
    if run.kind == "drill":
        checked = run.details.get("drill", {}).get("verify", {}).get("result") == "passed"
        return _Verdict(run, run.status == RunStatus.SUCCEEDED.value or checked, True)
    deep = bool(run.details.get("request", {}).get("deep") or run.details.get("verify", {}).get("deep"))
    return _Verdict(run, run.status == RunStatus.SUCCEEDED.value, deep)


def _verdicts(ctx: OperationContext, backup_id: uuid.UUID | None = None, limit: int = 20) -> list[_Verdict]:
    runs = ctx.recorder.list(limit=limit, kinds=VERDICT_KINDS, parent_id=backup_id, finished_only=True)
    return [v for v in map(_verdict, runs) if v is not None]


def _verified_item(ctx: OperationContext, newest: BackupRun, now: datetime, cadence: str) -> CheckItem:
    """The newest backup's latest verdict: a quick or deep verify, or a drill (a deep verify, timed)."""
    title = "The backup reads back (pg_restore --list, checksum)"
    latest = next(iter(_verdicts(ctx, newest.id)), None)
    if latest is not None and latest.passed:
        return CheckItem("backup_verified", title, cadence, ItemStatus.OK,
                         f"{latest.what} passed {_age(latest.run.finished_at, now)}")
    detail = (latest.run.error or "failed") if latest else "never verified"
    return CheckItem("backup_verified", title, cadence, ItemStatus.FAIL, str(detail),
                     f"run `openwatch-backup verify {str(newest.id)[:8]}`")


def _verify_failures_item(ctx: OperationContext, now: datetime, cadence: str) -> CheckItem:
    """Every stored backup, of any kind, whose last quick or last deep check failed (a later deep pass clears
    a quick failure; a later quick pass does not clear a deep one)."""
    title = "No stored backup failed its last verify"
    cleared: dict[uuid.UUID, set[bool]] = {}  # backup -> depths a later verdict passed (True: deep)
    failures: dict[uuid.UUID, _Verdict] = {}  # backup -> its newest failure not cleared since
    for verdict in _verdicts(ctx, limit=FAILURE_SCAN):  # newest first
        backup_id = verdict.run.parent_id
        if backup_id is None:
            continue
        passed = cleared.setdefault(backup_id, set())
        if verdict.passed:
            passed.update({True, False} if verdict.deep else {False})
        elif verdict.deep not in passed and backup_id not in failures:
            failures[backup_id] = verdict
    stored = [(v, b) for v, b in ((v, _backup(ctx, b)) for b, v in failures.items())
              if b is not None and is_present(b)]  # still there: not pruned, nor being pruned
    if not stored:
        return CheckItem("verify_failures", title, cadence, ItemStatus.OK, "none failed" if cleared else
                         "no verify yet")
    verdict, backup = stored[0]
    more = f" (and {len(stored) - 1} more)" if len(stored) > 1 else ""
    return CheckItem("verify_failures", title, cadence, ItemStatus.FAIL,
                     f"{backup.kind} backup {str(backup.id)[:8]}: {verdict.what} failed "
                     f"{_age(verdict.run.finished_at, now)}: {verdict.run.error}{more}",
                     f"see `openwatch-backup show {str(verdict.run.id)[:8]}`; fix the cause and verify it again "
                     f"(`openwatch-backup verify {str(backup.id)[:8]}{' --deep' if verdict.deep else ''}`), or take "
                     "a new backup")


def _backup(ctx: OperationContext, run_id: uuid.UUID) -> BackupRun | None:
    try:
        return ctx.recorder.get(str(run_id))
    except RunNotFound:  # a catalog rebuilt without it: nothing stored to warn about
        return None


def _retention_item(ctx: OperationContext, now: datetime, cadence: str) -> CheckItem:
    """ok when retention was applied (prune --apply) and succeeded within RETENTION_CHECK_DAYS."""
    title = "Old backups cleaned up per retention policy"
    prunes = ctx.recorder.list(limit=20, kind="prune", status=RunStatus.SUCCEEDED.value)
    applied = next((p for p in prunes if p.details.get("apply")), None)
    if applied is None or applied.finished_at is None or \
            (now - applied.finished_at).total_seconds() > RETENTION_CHECK_DAYS * 86400:
        when = f"last one {_age(applied.finished_at, now)}" if applied else "never applied"
        return CheckItem("retention_applied", title, cadence, ItemStatus.FAIL,
                         f"no applied prune in {RETENTION_CHECK_DAYS} days ({when})",
                         "run `openwatch-backup prune --apply`")
    summary = applied.details.get("summary", {})
    return CheckItem("retention_applied", title, cadence, ItemStatus.OK,
                     f"applied {_age(applied.finished_at, now)}: {summary.get('backups_deleted', 0)} backup(s) and "
                     f"{summary.get('files_deleted', 0)} file(s) deleted, {human_bytes(summary.get('bytes_freed', 0))} "
                     f"freed, {summary.get('backups_kept', 0)} kept")


def _settings_item(problems: Sequence[SettingProblem], cadence: str) -> CheckItem:
    """A schedule beat cannot evaluate, or a retention value the prune refuses: failing, with the first one's line
    (each line names its key, what is used meanwhile, and the fix)."""
    title = "Schedules and retention settings are valid"
    if not problems:
        return CheckItem("settings_valid", title, cadence, ItemStatus.OK, "schedules and retention settings valid")
    more = f" (and {len(problems) - 1} more: {', '.join(p.key for p in problems[1:])})" if len(problems) > 1 else ""
    return CheckItem("settings_valid", title, cadence, ItemStatus.FAIL, f"{problems[0].detail}{more}",
                     f"fix {problems[0].key} (allowed: {problems[0].allowed})")


def _drill_item(ctx: OperationContext, now: datetime, cadence: str) -> CheckItem:
    title = "Full restore test performed, recovery time measured against the RTO"
    drills = ctx.recorder.list(limit=1, kind="drill", status=RunStatus.SUCCEEDED.value)
    limit = ctx.settings.drill_max_age_days * 86400
    if not drills or drills[0].finished_at is None or (now - drills[0].finished_at).total_seconds() > limit:
        when = f"last one {_age(drills[0].finished_at, now)}" if drills else "never run"
        return CheckItem("restore_drill", title, cadence, ItemStatus.FAIL,
                         f"no passed drill in {ctx.settings.drill_max_age_days:g} days ({when})",
                         "run `openwatch-backup drill`")
    drill = drills[0].details.get("drill", {})
    return CheckItem("restore_drill", title, cadence, ItemStatus.OK,
                     f"passed {_age(drills[0].finished_at, now)}: recovered in {drill.get('rto_seconds')} s "
                     f"(objective {ctx.settings.rto_minutes:g} min)")
