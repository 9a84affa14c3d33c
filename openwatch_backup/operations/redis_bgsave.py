"""BGSAVE on OpenWatch's Redis, and the wait until it is on disk (the first half of a Redis snapshot).

The client connects with OPENWATCH_REDIS_URL as OpenWatch writes it: the password travels inside the redis
protocol's AUTH, never in an argv, and is added to the redactor before the first command. A save counts as done
when LASTSAVE moves past the value read before BGSAVE and no save is in progress; LASTSAVE has one-second
resolution, so a BGSAVE is not sent in the same server second as the previous save (it could not move).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from openwatch_backup.core.redact import Redactor
from openwatch_backup.errors import BackupError, ConfigError, RedisSnapshotFailed

if TYPE_CHECKING:
    import redis

URL_SETTING = "OPENWATCH_REDIS_URL"
TIMEOUT_SETTING = "OPENWATCH_BACKUP_REDIS_SAVE_TIMEOUT_SECONDS"
POLL_SECONDS = 0.1  # Redis notices a finished child in serverCron (10 times a second by default)
SOCKET_TIMEOUT = 30


@dataclass(frozen=True)
class Saved:
    lastsave: int
    redis_version: str
    keys: int | None


def describe(url: str) -> str:
    """Where the URL points, without user or password: `redis:6379/0`, or the socket path."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


def connect(url: str | None, redact: Redactor) -> redis.Redis:
    """A client on the URL (not yet connected); its password and user masked from here on."""
    import redis  # celery's transport brings it; only the snapshot needs it here

    if not url:
        raise ConfigError(f"{URL_SETTING} is not set: a Redis snapshot needs OpenWatch's Redis URL, e.g. "
                          "redis://:PASSWORD@redis:6379/0 (or leave OPENWATCH_BACKUP_REDIS off)")
    parts = urlsplit(url)
    for secret in (parts.password, parts.username):
        if secret:
            redact.add(secret)
            redact.add(unquote(secret))
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=10)


@contextmanager
def redis_errors(where: str) -> Iterator[None]:
    """redis-py's errors as one line naming the server and the fix; ours pass through."""
    import redis

    try:
        yield
    except BackupError:
        raise
    except redis.AuthenticationError:
        raise RedisSnapshotFailed(f"Redis at {where} refused the credentials in {URL_SETTING}: use the URL "
                                  "OpenWatch itself uses") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise RedisSnapshotFailed(f"cannot reach Redis at {where} ({_first_line(exc)}): check {URL_SETTING} and "
                                  "that the redis container runs") from None
    except redis.RedisError as exc:
        raise RedisSnapshotFailed(f"Redis at {where} answered an error ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _already_running(where: str, answer: str) -> RedisSnapshotFailed:
    return RedisSnapshotFailed(f"a Redis save is already running at {where} ({answer}): wait until INFO "
                               "persistence shows rdb_bgsave_in_progress:0 and take the snapshot again")


def _lastsave(client: redis.Redis) -> int:
    value: Any = client.lastsave()  # redis-py gives a naive local datetime
    return int(value.timestamp()) if hasattr(value, "timestamp") else int(value)


def _key_count(client: redis.Redis) -> int | None:
    keyspace: Any = client.info("keyspace")
    try:
        return sum(int(db["keys"]) for db in keyspace.values())
    except (TypeError, KeyError, ValueError):
        return None


def bgsave(client: redis.Redis, where: str, timeout: float, *, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> Saved:
    """BGSAVE, then wait (at most `timeout` s) until LASTSAVE moves. One line for a save already running, a
    failed save (rdb_last_bgsave_status:err) and a save that does not finish in time."""
    import redis as redis_module

    with redis_errors(where):
        persistence: Any = client.info("persistence")
        if int(persistence.get("rdb_bgsave_in_progress", 0)):
            raise _already_running(where, "rdb_bgsave_in_progress:1")
        server: Any = client.info("server")
        keys = _key_count(client)
        before = _lastsave(client)
        seconds, micros = client.time()
        if seconds <= before:  # the previous save was this very second: LASTSAVE could not move
            sleep((1_000_000 - micros) / 1_000_000 + 0.01)
        try:
            client.bgsave()
        except redis_module.ResponseError as exc:
            if "already in progress" in str(exc):
                raise _already_running(where, f"BGSAVE: {_first_line(exc)}") from None
            raise RedisSnapshotFailed(f"Redis at {where} refused BGSAVE ({_first_line(exc)})") from None
        deadline = clock() + timeout
        while True:
            persistence = client.info("persistence")
            if not int(persistence.get("rdb_bgsave_in_progress", 0)):
                lastsave = _lastsave(client)
                if lastsave > before and persistence.get("rdb_last_bgsave_status") == "ok":
                    return Saved(lastsave=lastsave, redis_version=str(server.get("redis_version", "")), keys=keys)
                if persistence.get("rdb_last_bgsave_status") != "ok":
                    raise RedisSnapshotFailed(f"Redis at {where} could not save (INFO persistence "
                                              "rdb_last_bgsave_status:err): its log says why, usually /data is not "
                                              "writable or the disk is full")
            if clock() >= deadline:
                raise RedisSnapshotFailed(f"Redis at {where} did not finish BGSAVE within {timeout:g} s (LASTSAVE "
                                          f"did not move): raise {TIMEOUT_SETTING}, or see INFO persistence")
            sleep(POLL_SECONDS)
