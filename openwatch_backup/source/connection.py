"""psycopg 3 connections to the source database, with errors turned into one redacted line."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg.conninfo import make_conninfo

from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.errors import DatabaseUnavailable

APPLICATION_NAME = "openwatch-backup"


def connect(target: DatabaseTarget, redact: Callable[[str], str], *, autocommit: bool = True) -> psycopg.Connection:
    try:
        conninfo = make_conninfo("", **target.connect_kwargs(), application_name=APPLICATION_NAME)
        return psycopg.connect(conninfo, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        reason = redact(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)
        raise DatabaseUnavailable(f"cannot connect to {target.describe()} ({reason}); check "
                                  "OPENWATCH_DATABASE_URL and that PostgreSQL is running") from None
