"""When scheduled work is due: cron expressions evaluated with celery's crontab, last runs from the catalog.

OpenWatch's beat schedule is static, so the plugin follows its own pattern (dispatch_compliance_scans):
one frequent beat entry whose task reads the schedules from the database (`openwatch-backup schedule`,
later the admin page) or the environment, and queues what is due. Changing a schedule needs no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from celery.schedules import crontab

from openwatch_backup.catalog.settings_store import SettingsStore
from openwatch_backup.errors import ConfigError
from openwatch_backup.settings import Settings

BACKUP_KEY = "schedule.backup"
DRILL_KEY = "schedule.drill"


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


def is_due(expression: str, last_run_at: datetime | None) -> bool:
    """Due when a fire time has passed since the last scheduled run; never run before: due now."""
    if last_run_at is None:
        return True
    return bool(parse_cron(expression).is_due(last_run_at).is_due)


def next_run(expression: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    schedule = parse_cron(expression)
    exact: datetime = now + schedule.remaining_estimate(now)
    return (exact + timedelta(microseconds=500_000)).replace(microsecond=0)  # crontab lands a hair early
