"""core/adopt_names.py: which guide file is which backup, when it was taken, and why others are skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from openwatch_backup.core.adopt_names import GuideFile, NotAdoptable, classify, taken_at

BERLIN_WINTER = timezone(timedelta(hours=1))


@pytest.mark.parametrize(("name", "expected"), [
    ("openwatch_20261126_020000.dump", GuideFile("postgres", date(2026, 11, 26), time(2, 0, 0))),
    ("openwatch_20261126.dump", GuideFile("postgres", date(2026, 11, 26), None)),
    ("config_20261120.tar.gz.enc", GuideFile("config", date(2026, 11, 20), None)),
    ("dump_20261125.rdb", GuideFile("redis", date(2026, 11, 25), None)),
    ("postgres_data_20261122.tar.gz", GuideFile("volume", date(2026, 11, 22), None, "postgres_data")),
    ("ssh_known_hosts_20261122.tar.gz", GuideFile("volume", date(2026, 11, 22), None, "ssh_known_hosts")),
])
def test_guide_names(name: str, expected: GuideFile) -> None:
    assert classify(name) == expected


@pytest.mark.parametrize(("name", "reason"), [
    ("openwatch_20261126.sql", "plain SQL (pg_dump without -Fc) is not adopted"),
    ("schema_20261126.sql", "plain SQL (pg_dump without -Fc) is not adopted"),
    ("scan_data_20261126.dump", "a dump of some tables only (the guide's scan_data_ dump) is not adopted"),
    ("env_20261126_020000", "an unencrypted copy of .env is not adopted"),
    ("notes.txt", "not a file the guide's backup procedures write"),
    ("openwatch_20261399.dump", "its name's date 20261399 is not a valid date and time"),
])
def test_skipped_with_reason(name: str, reason: str) -> None:
    with pytest.raises(NotAdoptable) as caught:
        classify(name)
    assert str(caught.value).startswith(reason)


def test_time_from_name_when_it_has_one() -> None:
    found = classify("openwatch_20261126_020000.dump")
    mtime = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()  # copied later: the name wins
    assert taken_at(found, mtime, BERLIN_WINTER) == datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def test_time_of_day_from_mtime_on_the_named_day() -> None:
    found = classify("dump_20261125.rdb")
    mtime = datetime(2026, 11, 25, 2, 3, 4, tzinfo=BERLIN_WINTER).timestamp()
    assert taken_at(found, mtime, BERLIN_WINTER) == datetime(2026, 11, 25, 1, 3, 4, tzinfo=UTC)


def test_midnight_of_the_named_day_when_mtime_is_another_day() -> None:
    found = classify("config_20261120.tar.gz.enc")
    mtime = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()  # rsynced later without -t
    assert taken_at(found, mtime, UTC) == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
