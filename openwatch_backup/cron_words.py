"""A cron expression in plain English, and why one is refused, as the admin page previews it while it is typed.

Everything is read from celery's crontab (openwatch_backup/scheduling.py's parse_cron, what beat's dispatcher
evaluates), never from a second parser: the words describe the sets of minutes, hours and days celery computed,
so they cannot disagree with when the schedule fires. One difference from classic cron is said in words: celery
fires only on days matching both day-of-month and day-of-week when both are restricted (classic cron: either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from celery.schedules import ParseException, crontab, crontab_parser

from openwatch_backup.errors import ConfigError
from openwatch_backup.scheduling import next_fire, parse_cron

MAX_LENGTH = 200  # longer than any sensible expression; the API refuses longer ones before parsing
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")  # celery: 0 is Sunday
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
# (name, celery's parser bounds (max_, min_), what the field takes), in the expression's order.
FIELDS = (
    ("minute", (60, 0), "0-59, e.g. 30, */15 or 0,30"),
    ("hour", (24, 0), "0-23, e.g. 2, */6 or 9-17"),
    ("day of month", (31, 1), "1-31, e.g. 1 or 1,15"),
    ("month", (12, 1), "1-12 or jan-dec, e.g. 1 or jan,jul"),
    ("day of week", (7, 0), "0-6 (0 is Sunday) or sun-sat, e.g. sun or mon-fri"),
)


@dataclass(frozen=True)
class CronPreview:
    text: str  # e.g. "daily at 01:30 UTC"
    next_runs: list[datetime]  # UTC
    time_of_day: str | None  # "01:30" when it fires once a day at most: the page adds the local time
    weekdays: bool  # the days are named by weekday: the page names the local weekday too


def cron_error(expression: str) -> str | None:
    """Why celery's crontab refuses the expression, naming the field and what it takes; None when it is valid."""
    fields = expression.split()
    if len(fields) != 5:
        return (f"has {len(fields)} field{'' if len(fields) == 1 else 's'}; a cron expression has 5: minute hour "
                "day-of-month month day-of-week, e.g. '0 2 * * *'")
    try:
        parse_cron(expression)
    except ConfigError as exc:
        for value, (name, (max_, min_), takes) in zip(fields, FIELDS, strict=True):
            try:
                crontab_parser(max_, min_).parse(value)
            except (ValueError, ParseException) as field_exc:
                return f"the {name} '{value}' is not valid{_why(str(field_exc))}; it takes {takes}"
        # Each field is fine alone: the combination is impossible (e.g. 31 February). celery's words, tidied.
        reason = exc.message.split(" is not a valid cron expression ", 1)[-1].strip("()").rstrip(".")
        return reason.removeprefix("Invalid crontab: ").replace("day_of_month", "day of month").replace(
            "month_of_year", "month")
    return None


def _why(celery_message: str) -> str:
    """celery's "Invalid end range: 61 > 59." as " (61 is more than 59)"; its other words say little."""
    end = re.search(r"end range: (\d+) > (\d+)", celery_message)
    if end:
        return f" ({end[1]} is more than {end[2]})"
    begin = re.search(r"beginning range: (\d+) < (\d+)", celery_message)
    return f" ({begin[1]} is less than {begin[2]})" if begin else ""


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 5] -> [(1, 3), (5, 5)]."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _listed(values: list[int], name: object = str) -> str:
    """[1, 2, 3, 5] -> "1 to 3 and 5"; a run of two is listed as two."""
    label = name if callable(name) else str
    parts: list[str] = []
    for low, high in _runs(values):
        if high - low >= 2:
            parts.append(f"{label(low)} to {label(high)}")
        else:
            parts.extend(label(v) for v in range(low, high + 1))
    return _and(parts)


def _step(values: list[int], start: int, stop: int) -> int | None:
    """k when the values are every k-th from the field's start (k > 1), as */k gives; None otherwise."""
    if len(values) < 2 or values[0] != start:
        return None
    step = values[1] - values[0]
    return step if list(range(start, stop, step)) == values else None


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _time_phrase(minutes: list[int], hours: list[int]) -> str:
    every_hour = len(hours) == 24
    minute_step, hour_step = _step(minutes, 0, 60), _step(hours, 0, 24)
    if len(minutes) * len(hours) <= 6 and not every_hour and not (hour_step and len(hours) > 2 and len(minutes) == 1):
        return "at " + _and([f"{h:02d}:{m:02d}" for h in hours for m in minutes]) + " UTC"
    if len(minutes) == 60:
        what = "every minute"
    elif minute_step and 60 % minute_step == 0:
        what = f"every {minute_step} minutes"
    elif minute_step:
        what = f"every {_ordinal(minute_step)} minute from minute 0"
    else:
        what = f"at minute{'' if len(minutes) == 1 else 's'} {_listed(minutes)}"
    if every_hour:
        return what if what.startswith("every") else f"{what} of every hour"
    if hour_step:
        times = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
        hours_text = f"every {_ordinal(hour_step)} hour" + (f" ({_and(times)} UTC)" if len(times) <= 6
                                                             else " from 00h UTC")
        return f"{what} of {hours_text}" if what.startswith("at") else f"{what} during {hours_text}"
    hours_text = f"hour{'' if len(hours) == 1 else 's'} {_listed(hours, lambda h: f'{h:02d}h')} UTC"
    return f"{what} of {hours_text}" if what.startswith("at") else f"{what} during {hours_text}"


def _days_phrase(dom: list[int], months: list[int], dow: list[int]) -> str:
    """"" for every day; else e.g. "every Sunday", "on day 1 of every month", "every Monday to Friday in July"."""
    month_text = "every month" if len(months) == 12 else _listed(months, lambda m: MONTHS[m - 1])
    weekday_text = _listed(dow, lambda d: WEEKDAYS[d]) if len(dow) < 7 else ""
    if len(dom) < 31:
        days = f"on day{'' if len(dom) == 1 else 's'} {_listed(dom)} of {month_text}"
        if weekday_text:  # celery needs both to match (classic cron: either)
            days += f", only when it is a {weekday_text.replace(' and ', ' or ')}"
        return days
    in_months = "" if len(months) == 12 else f" in {month_text}"
    if weekday_text:
        return f"every {weekday_text}{in_months}"
    return f"every day{in_months}" if in_months else ""


def describe(schedule: crontab) -> tuple[str, str | None, bool]:
    """(text, time of day when it fires at one time of day, whether the days are weekdays) of a parsed crontab."""
    minutes, hours = sorted(schedule.minute), sorted(schedule.hour)
    dom, months, dow = sorted(schedule.day_of_month), sorted(schedule.month_of_year), sorted(schedule.day_of_week)
    time_text = _time_phrase(minutes, hours)
    days = _days_phrase(dom, months, dow)
    once = len(minutes) == 1 and len(hours) == 1
    if once and "only when" not in days:
        text = f"{days or 'daily'} {time_text}"
    else:
        text = f"{time_text}, {days}" if days else time_text
    return text, (f"{hours[0]:02d}:{minutes[0]:02d}" if once else None), bool(days) and len(dow) < 7


def preview(expression: str, now: datetime | None = None, count: int = 3) -> CronPreview:
    """The expression in words and its next `count` fire times after `now`; ConfigError (one line) when invalid."""
    expression = " ".join(expression.split())
    if len(expression) > MAX_LENGTH:
        raise ConfigError(f"is {len(expression)} characters long; a cron expression has at most {MAX_LENGTH}")
    problem = cron_error(expression)
    if problem:
        raise ConfigError(problem)
    text, time_of_day, weekdays = describe(parse_cron(expression))
    runs: list[datetime] = []
    after = now or datetime.now(UTC)
    for _ in range(count):
        after = next_fire(expression, after)
        runs.append(after)
    return CronPreview(text, runs, time_of_day, weekdays)
