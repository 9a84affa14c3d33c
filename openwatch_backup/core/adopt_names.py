"""Which file of the guide's backup folder is which backup, and when it was taken (pure, stdlib only).

The guide's procedures (shared/seed/BACKUP_RECOVERY.md) write, under /opt/openwatch/backups:
  - `postgres/openwatch_YYYYMMDD_HHMMSS.dump` (its daily script) or `openwatch_YYYYMMDD.dump`: pg_dump -Fc;
  - `config_YYYYMMDD.tar.gz.enc`: `tar czf - DIR | openssl enc -aes-256-cbc -salt -pbkdf2`;
  - `redis/dump_YYYYMMDD.rdb`: Redis's dump.rdb after a BGSAVE;
  - `volumes/<volume>_YYYYMMDD.tar.gz`: `tar czf` of a docker volume;
and besides those, files that are not backups openwatch-backup can take over (plain SQL, a partial dump, an
unencrypted .env copy) and its logs. The name says which; the file's content is checked by the adopt itself.

`date +%Y%m%d` writes the host's local date, so a name is read in the local time zone. A name without a time
of day takes it from the file's mtime when that falls on the named day (the file was written then: the
script's `docker cp`), else midnight of that day: retention then orders the history by the day it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo

_STAMP = r"(?P<day>\d{8})(?:_(?P<clock>\d{6}))?"
DUMP = re.compile(rf"^openwatch_{_STAMP}\.dump$")
CONFIG = re.compile(rf"^config_{_STAMP}\.tar\.gz\.enc$")
REDIS = re.compile(rf"^dump_{_STAMP}\.rdb$")
VOLUME = re.compile(rf"^(?P<volume>[A-Za-z0-9][A-Za-z0-9_.-]*?)_{_STAMP}\.tar\.gz$")
# Written by the guide's script beside the backups: not backups, and not worth a "skipped" line each run.
LOGS = frozenset({"backup.log", "cron.log"})


@dataclass(frozen=True)
class GuideFile:
    family: str  # postgres, config, redis, volume
    day: date
    clock: time | None
    volume: str | None = None  # the docker volume a volume tarball holds


class NotAdoptable(ValueError):
    """The file is not one of the guide's backups that openwatch-backup takes over; the message says why."""


def _stamp(match: re.Match[str]) -> tuple[date, time | None]:
    day_text, clock_text = match.group("day"), match.group("clock")
    try:
        day = datetime.strptime(day_text, "%Y%m%d").date()
        clock = datetime.strptime(clock_text, "%H%M%S").time() if clock_text else None
    except ValueError:
        raise NotAdoptable(f"its name's date {day_text}{'_' + clock_text if clock_text else ''} is not a "
                           "valid date and time (YYYYMMDD or YYYYMMDD_HHMMSS)") from None
    return day, clock


def classify(name: str) -> GuideFile:
    """The guide backup the file name `name` is, or NotAdoptable saying why it is not taken over."""
    for family, pattern in (("postgres", DUMP), ("config", CONFIG), ("redis", REDIS), ("volume", VOLUME)):
        match = pattern.match(name)
        if match:
            day, clock = _stamp(match)
            return GuideFile(family, day, clock, match.group("volume") if family == "volume" else None)
    if name.endswith(".sql"):
        raise NotAdoptable("plain SQL (pg_dump without -Fc) is not adopted: its completeness cannot be checked "
                           "without replaying it; restore it with psql as the guide says, or take a new backup "
                           "with `openwatch-backup backup`")
    if name.startswith("scan_data_") and name.endswith(".dump"):
        raise NotAdoptable("a dump of some tables only (the guide's scan_data_ dump) is not adopted: only whole "
                           "database dumps (openwatch_YYYYMMDD[_HHMMSS].dump) are")
    if name.startswith("env_"):
        raise NotAdoptable("an unencrypted copy of .env is not adopted (secrets are kept only encrypted): take a "
                           "config bundle with `openwatch-backup backup --kind config`")
    raise NotAdoptable("not a file the guide's backup procedures write (openwatch_*.dump, config_*.tar.gz.enc, "
                       "dump_*.rdb, <volume>_*.tar.gz)")


def taken_at(found: GuideFile, mtime: float, zone: tzinfo | None = None) -> datetime:
    """When the backup was taken (UTC): the name's day and time, or its day and the mtime's time of day when the
    mtime falls on that day, or that day's midnight; all in `zone` (default: this host's local zone)."""
    zone = zone or datetime.now().astimezone().tzinfo or UTC
    if found.clock is not None:
        return datetime.combine(found.day, found.clock, zone).astimezone(UTC)
    modified = datetime.fromtimestamp(mtime, zone)
    if modified.date() == found.day:
        return modified.astimezone(UTC)
    return datetime.combine(found.day, time(0), zone).astimezone(UTC)
