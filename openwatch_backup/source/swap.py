"""Swap a checked, restored database into place under the live name; keep the old one, renamed.

The live database stops taking new connections first (ALLOW_CONNECTIONS false), so nothing reconnects
between the last session ending and the rename. If the second rename fails the first is undone, so the
live name always points at a whole database: the old one or the restored one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.errors import DatabaseUnavailable, RestoreFailed
from openwatch_backup.source.connection import connect
from openwatch_backup.source.sessions import describe, other_sessions, terminate

MAX_IDENTIFIER = 63


def kept_name(live: str, when: datetime) -> str:
    name = f"{live}_pre_restore_{when.astimezone(UTC).strftime('%Y%m%d_%H%M%S')}"
    return name if len(name) <= MAX_IDENTIFIER else f"owb_pre_restore_{when.astimezone(UTC).strftime('%Y%m%d_%H%M%S')}"


def maintenance_connection(target: DatabaseTarget, redact: Callable[[str], str]) -> psycopg.Connection:
    """A connection to another database of the server (one cannot rename the database one is connected to)."""
    last = ""
    for name in ("postgres", "template1"):
        try:
            return connect(target.with_dbname(name), redact)
        except DatabaseUnavailable as exc:
            last = exc.message
    raise RestoreFailed(f"no maintenance database (postgres or template1) to rename databases from: {last}")


def _free_name(conn: psycopg.Connection, wanted: str) -> str:
    """wanted, or wanted_2, wanted_3... (two restores within one second must not collide)."""
    name, suffix = wanted, 1
    while conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        suffix += 1
        name = f"{wanted[:MAX_IDENTIFIER - 4]}_{suffix}"
    return name


def _rename(conn: psycopg.Connection, old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


def _allow(conn: psycopg.Connection, name: str, allowed: bool) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
        sql.Identifier(name), sql.SQL("true" if allowed else "false")))


def swap_in(target: DatabaseTarget, redact: Callable[[str], str], restored: str, *, terminate_others: bool,
            when: datetime) -> str:
    """Rename live -> kept name, restored -> live. Returns the kept name of the old database."""
    live = target.dbname
    with maintenance_connection(target, redact) as conn:
        kept = _free_name(conn, kept_name(live, when))
        _allow(conn, live, False)
        try:
            sessions = other_sessions(conn, live, include_ours=True)
            foreign = other_sessions(conn, live)
            if foreign and not terminate_others:
                raise RestoreFailed(f"{describe(foreign)} connected to {live} at the swap; stop OpenWatch's backend, "
                                    "worker and beat, or pass --terminate-connections")
            terminate(conn, sessions)
            _rename(conn, live, kept)
        except BaseException:
            with contextlib.suppress(Exception):
                _allow(conn, live, True)
            raise
        try:
            _rename(conn, restored, live)
        except BaseException:
            _rename(conn, kept, live)  # put the original back under its name
            _allow(conn, live, True)
            raise
        _allow(conn, kept, True)  # the kept database stays inspectable
    return kept
