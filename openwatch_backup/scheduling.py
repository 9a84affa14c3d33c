"""When scheduled work is due: cron expressions evaluated with celery's crontab, last runs from the catalog.

OpenWatch's beat schedule is static, so the plugin follows its own pattern (dispatch_compliance_scans):
one frequent beat entry whose task reads the schedules from the database (`openwatch-backup schedule`,
later the admin page) or the environment, and queues what is due. Changing a schedule needs no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from celery.schedules import crontab

from openwatch_backup.catalog.settings_store import SettingsStore
from openwatch_backup.errors import ConfigError
from openwatch_backup.settings import Settings

BACKUP_KEY = "schedule.backup"
DRILL_KEY = "schedule.drill"
# Per schedule, the expression the dispatcher last saw and since when: {"expression": ..., "since": iso}.
SEEN_KEYS = {"backup": "scheduler.seen.backup", "drill": "scheduler.seen.drill"}


@dataclass(frozen=True)
class Schedules:
    backup: str
    drill: str
    backup_source: str  # "database" or "environment"
    drill_source: str


def parse_cron(expression: str, what: str = "schedule") -> crontab:
    """celery's crontab from a 5-field expression, or ConfigError naming the problem."""
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(f"{what} {expression!r} is not a 5-field cron expression (minute hour day-of-month "
                          "month day-of-week), e.g. '0 2 * * *'")
    try:
        return crontab(minute=fields[0], hour=fields[1], day_of_month=fields[2], month_of_year=fields[3],
                       day_of_week=fields[4], nowfun=lambda: datetime.now(UTC))
    except ValueError as exc:
        raise ConfigError(f"{what} {expression!r} is not a valid cron expression ({exc})") from None


def current_schedules(settings: Settings, store: SettingsStore) -> Schedules:
    overrides = store.all("schedule.")
    backup = overrides.get(BACKUP_KEY)
    drill = overrides.get(DRILL_KEY)
    return Schedules(backup=str(backup or settings.schedule), drill=str(drill or settings.drill_schedule),
                     backup_source="database" if backup else "environment",
                     drill_source="database" if drill else "environment")


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time strictly after `after` that the cron expression names (UTC)."""
    start, delta, _ = parse_cron(expression).remaining_delta(after)
    fire: datetime = start + delta
    return fire.astimezone(UTC)


def is_due(expression: str, reference: datetime, now: datetime | None = None) -> bool:
    """Due once a fire time after `reference` has come. `reference` is the last scheduled run or, for a schedule
    that has not run since it was first seen (installed or changed), the time it was first seen: a new schedule
    waits for its next fire time instead of running at the first tick."""
    return next_fire(expression, reference) <= (now or datetime.now(UTC))


def next_run(expression: str, now: datetime | None = None, reference: datetime | None = None) -> datetime:
    """When the dispatcher will queue it: the first fire time after `reference` (default: now), or now when that
    time has already come (beat queues it at its next tick)."""
    now = now or datetime.now(UTC)
    return max(next_fire(expression, reference or now), now)
