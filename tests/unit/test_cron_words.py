"""cron_words: celery's crontab in plain English, the next runs, and refusals naming the field (issue 14 item 6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openwatch_backup.cron_words import MAX_LENGTH, cron_error, preview
from openwatch_backup.errors import ConfigError

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday

WORDS = [
    ("30 1 * * *", "daily at 01:30 UTC"),
    ("0 3 * * 0", "every Sunday at 03:00 UTC"),
    ("0 3 * * sun", "every Sunday at 03:00 UTC"),
    ("0 3 * * SUN", "every Sunday at 03:00 UTC"),
    ("0 */6 * * *", "at minute 0 of every 6th hour (00:00, 06:00, 12:00 and 18:00 UTC)"),
    ("15 */2 * * *", "at minute 15 of every 2nd hour from 00h UTC"),
    ("*/15 * * * *", "every 15 minutes"),
    ("0,15,30,45 * * * *", "every 15 minutes"),
    ("*/7 * * * *", "every 7th minute from minute 0"),
    ("* * * * *", "every minute"),
    ("30 * * * *", "at minute 30 of every hour"),
    ("5,35 * * * *", "at minutes 5 and 35 of every hour"),
    ("0 0,12 * * *", "at 00:00 and 12:00 UTC"),
    ("0 9-17 * * mon-fri", "at minute 0 of hours 09h to 17h UTC, every Monday to Friday"),
    ("0 9-17/2 * * 1-5", "at 09:00, 11:00, 13:00, 15:00 and 17:00 UTC, every Monday to Friday"),
    ("*/5 9-17 * * *", "every 5 minutes during hours 09h to 17h UTC"),
    ("0 22 * * 1-5", "every Monday to Friday at 22:00 UTC"),
    ("0 6 * * mon,wed,fri", "every Monday, Wednesday and Friday at 06:00 UTC"),
    ("0 6 * * sat,sun", "every Sunday and Saturday at 06:00 UTC"),
    ("0 2 1 * *", "on day 1 of every month at 02:00 UTC"),
    ("0 0 1,15 * *", "on days 1 and 15 of every month at 00:00 UTC"),
    ("0 0 1-7 * *", "on days 1 to 7 of every month at 00:00 UTC"),
    ("0 0 * jan,jul *", "every day in January and July at 00:00 UTC"),
    ("0 0 1 1 *", "on day 1 of January at 00:00 UTC"),
    ("0 4 * 6-8 sun", "every Sunday in June to August at 04:00 UTC"),
    ("0 0 29 2 *", "on day 29 of February at 00:00 UTC"),
    # celery needs both day fields to match when both are restricted (classic cron fires on either)
    ("0 0 13 * fri", "at 00:00 UTC, on day 13 of every month, only when it is a Friday"),
    ("  30   1 * *  * ", "daily at 01:30 UTC"),
]


@pytest.mark.parametrize(("expression", "text"), WORDS, ids=[w[0] for w in WORDS])
def test_words(expression: str, text: str) -> None:
    assert preview(expression, NOW).text == text


def test_next_runs_follow_celery() -> None:
    assert preview("30 1 * * *", NOW).next_runs == [datetime(2026, 12, d, 1, 30, tzinfo=UTC) for d in (2, 3, 4)]
    assert preview("*/15 * * * *", NOW).next_runs == [NOW.replace(minute=m) for m in (15, 30, 45)]
    assert [r.isoformat() for r in preview("0 3 * * sun", NOW).next_runs] == [
        "2026-12-06T03:00:00+00:00", "2026-12-13T03:00:00+00:00", "2026-12-20T03:00:00+00:00"]
    friday_13th = preview("0 0 13 * fri", NOW).next_runs
    assert all(run.day == 13 and run.weekday() == 4 for run in friday_13th)  # both, not either
    assert preview("0 0 29 2 *", NOW).next_runs[0] == datetime(2028, 2, 29, tzinfo=UTC)


def test_time_of_day_and_weekdays_for_the_local_time() -> None:
    daily = preview("30 1 * * *", NOW)
    assert (daily.time_of_day, daily.weekdays) == ("01:30", False)
    weekly = preview("0 3 * * sun", NOW)
    assert (weekly.time_of_day, weekly.weekdays) == ("03:00", True)
    assert preview("0 */6 * * *", NOW).time_of_day is None


REFUSED = [
    ("61 * * * *", "the minute '61' is not valid (61 is more than 59); it takes 0-59, e.g. 30, */15 or 0,30"),
    ("0 25 * * *", "the hour '25' is not valid (25 is more than 23); it takes 0-23, e.g. 2, */6 or 9-17"),
    ("0 0 0 * *", "the day of month '0' is not valid (0 is less than 1); it takes 1-31, e.g. 1 or 1,15"),
    ("0 0 * 13 *", "the month '13' is not valid (13 is more than 12); it takes 1-12 or jan-dec, e.g. 1 or jan,jul"),
    ("0 0 * * 7", "the day of week '7' is not valid (7 is more than 6); it takes 0-6 (0 is Sunday) or sun-sat, "
     "e.g. sun or mon-fri"),
    ("x 1 * * *", "the minute 'x' is not valid; it takes 0-59, e.g. 30, */15 or 0,30"),
    ("0 0 ? * *", "the day of month '?' is not valid; it takes 1-31, e.g. 1 or 1,15"),
    ("0 0 * * funday", "the day of week 'funday' is not valid; it takes 0-6 (0 is Sunday) or sun-sat, "
     "e.g. sun or mon-fri"),
    ("0 0 31 2 *", "day of month '31' never occurs in month '2'"),
    ("* *", "has 2 fields; a cron expression has 5: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"),
    ("", "has 0 fields; a cron expression has 5: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"),
    ("0 0 * * * *", "has 6 fields; a cron expression has 5: minute hour day-of-month month day-of-week, "
     "e.g. '0 2 * * *'"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSED, ids=[r[0] or "empty" for r in REFUSED])
def test_refusals_name_the_field(expression: str, message: str) -> None:
    assert cron_error(expression) == message
    with pytest.raises(ConfigError) as refused:
        preview(expression, NOW)
    assert refused.value.message == message
    assert "\n" not in message


def test_valid_expressions_have_no_error() -> None:
    for expression, _ in WORDS:
        assert cron_error(" ".join(expression.split())) is None


def test_too_long_is_refused_before_parsing() -> None:
    with pytest.raises(ConfigError, match=f"at most {MAX_LENGTH}"):
        preview("1," * 200 + "2 * * * *", NOW)
