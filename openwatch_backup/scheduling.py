"""When scheduled work is due: cron expressions evaluated with celery's crontab, last runs from the catalog.

OpenWatch's beat schedule is static, so the plugin follows its own pattern (dispatch_compliance_scans):
one frequent beat entry whose task reads the schedules from the database (`openwatch-backup schedule`,
later the admin page) or the environment, and queues what is due. Changing a schedule needs no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery.schedules import crontab

from openwatch_backup.catalog.settings_store import SettingsStore
from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.stored_settings import SettingProblem
from openwatch_backup.settings import Settings, cron_problem, env_name

BACKUP_KEY = "schedule.backup"
DRILL_KEY = "schedule.drill"
# Per schedule, the expression the dispatcher last saw and since when: {"expression": ..., "since": iso}.
CRON_ALLOWED = "5-field cron (celery's crontab), e.g. '0 2 * * *'"
SEEN_KEYS = {"backup": "scheduler.seen.backup", "drill": "scheduler.seen.drill",
             "volume": "scheduler.seen.volume"}


@dataclass(frozen=True)
class Schedules:
    backup: str
    drill: str
    backup_source: str  # "database" or "environment"
    drill_source: str
    # Values that cannot be evaluated: a stored one falls back to the environment's; an environment one that is
    # also in use (no good stored value over it) leaves its schedule unusable (see `unusable`).
    problems: tuple[SettingProblem, ...] = ()
    unusable: tuple[tuple[str, str], ...] = ()  # (schedule, its environment problem): nothing valid to evaluate

    def require_usable(self) -> None:
        """The one-line ConfigError naming the variable, for callers that need every schedule (dispatcher,
        `schedule`): the line load_settings gave before the check moved here."""
        if self.unusable:
            raise ConfigError(self.unusable[0][1])

    def usable(self) -> dict[str, str]:
        """The schedules that can be evaluated, by name."""
        skip = {name for name, _ in self.unusable}
        return {name: expr for name, expr in (("backup", self.backup), ("drill", self.drill)) if name not in skip}


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


def _stored_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a cron expression (a JSON string such as '0 2 * * *')"
    return cron_problem(value)


def current_schedules(settings: Settings, store: SettingsStore) -> Schedules:
    """The schedules in force: a stored one (backup_settings) when celery's crontab accepts it, else the
    environment's. Never raises for a bad value: each one is a SettingProblem, so beat's tick, the status and
    `check` go on and say what is wrong (a value written around the API, e.g. by psql, is not checked before)."""
    overrides = store.all("schedule.")
    chosen: dict[str, tuple[str, str]] = {}
    problems: list[SettingProblem] = []
    unusable: list[tuple[str, str]] = []
    for name, key, field, option in (("backup", BACKUP_KEY, "schedule", "--backup"),
                                     ("drill", DRILL_KEY, "drill_schedule", "--drill")):
        env, default = env_name(field), str(getattr(settings, field))
        env_problem = cron_problem(default)
        env_line = f"{env}: {env_problem} (got {default!r})" if env_problem else ""
        if env_problem:  # the environment's value is judged here, not when the settings load (celery is slow)
            problems.append(SettingProblem(env, env_line, CRON_ALLOWED))
        stored = overrides.get(key)
        stored_problem = _stored_problem(stored) if stored is not None else None
        if stored is not None and stored_problem is None:
            chosen[name] = (str(stored), "database")
            continue
        if stored is not None:
            fallback = "nothing (it is invalid too)" if env_problem else f"{env} {default!r}"
            problems.append(SettingProblem(key, f"backup_settings {key} {stored!r} {stored_problem}; the {name} "
                                           f"schedule uses {fallback} until it is fixed: `openwatch-backup schedule "
                                           f"{option} CRON` or the admin page's settings", CRON_ALLOWED))
        if env_problem:
            unusable.append((name, env_line))
        chosen[name] = (default, "environment")
    return Schedules(backup=chosen["backup"][0], drill=chosen["drill"][0], backup_source=chosen["backup"][1],
                     drill_source=chosen["drill"][1], problems=tuple(problems), unusable=tuple(unusable))


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
