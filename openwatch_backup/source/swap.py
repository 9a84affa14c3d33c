"""Swap a checked, restored database into place under the live name; keep the old one, renamed.

Both renames commit in ONE transaction (PostgreSQL runs `ALTER DATABASE ... RENAME` in a transaction
block), so a kill at any instant leaves the live name on a whole database: the old one (nothing
committed) or the restored one (all committed). There is no committed in-between state such as the
live name missing, or the live database left with ALLOW_CONNECTIONS false.

New sessions cannot slip in between: the first rename takes an exclusive lock on the live database,
and a client connecting meanwhile waits on that lock, then finds the name moved. Sessions that were
there before are ended first (ours always, others only with --terminate-connections); one that
reconnects in the gap makes the rename fail, and the swap is retried. lock_timeout bounds every wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg import errors, sql

from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.errors import DatabaseInUse, DatabaseUnavailable, RestoreFailed
from openwatch_backup.source.connection import connect
from openwatch_backup.source.sessions import describe, other_sessions, terminate

MAX_IDENTIFIER = 63
LOCK_TIMEOUT = "10s"  # per lock wait; PostgreSQL itself waits up to 5 s for a terminated session to go
ATTEMPTS = 3  # a session of ours (a heartbeat) may reconnect between the terminate and the lock

Pause = Callable[[str], None]  # a named instant inside the swap, for the kill-anywhere tests


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


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def free_kept_name(target: DatabaseTarget, redact: Callable[[str], str], when: datetime) -> str:
    """The name the old database will be kept under: dated, and free (two restores within one second must
    not collide). Chosen before the swap so the run can record it first (the sweeper reports it)."""
    wanted = kept_name(target.dbname, when)
    with maintenance_connection(target, redact) as conn:
        name, suffix = wanted, 1
        while database_exists(conn, name):
            suffix += 1
            name = f"{wanted[:MAX_IDENTIFIER - 4]}_{suffix}"
    return name


def _rename(conn: psycopg.Connection, old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def swap_in(target: DatabaseTarget, redact: Callable[[str], str], restored: str, kept: str, *,
            terminate_others: bool, pause: Pause | None = None) -> None:
    """Rename live -> kept and restored -> live, in one transaction. Raises DatabaseInUse (a RestoreFailed,
    exit 8, one line) when a session or a lock stands in the way; then nothing has changed."""
    live = target.dbname
    with maintenance_connection(target, redact) as conn:
        for attempt in range(1, ATTEMPTS + 1):
            foreign = other_sessions(conn, live)
            if foreign and not terminate_others:
                raise RestoreFailed(f"{describe(foreign)} connected to {live} at the swap; stop OpenWatch's backend, "
                                    "worker and beat, or pass --terminate-connections")
            terminate(conn, other_sessions(conn, live, include_ours=True))
            try:
                _swap_transaction(conn, live, restored, kept, pause)
                return
            except errors.ObjectInUse as exc:
                if restored in str(exc):
                    busy = other_sessions(conn, restored, include_ours=True)
                    raise DatabaseInUse(
                        f"{describe(busy) if busy else 'a session'} connected to the restored database {restored} "
                        f"blocked the swap; nothing was changed ({live} is as it was); close it and restore "
                        "again") from None
                if attempt == ATTEMPTS:
                    raise DatabaseInUse(redact(f"sessions kept connecting to {live} during the swap; nothing was "
                                               "changed; stop OpenWatch's backend, worker and beat and restore "
                                               "again")) from None
            except errors.LockNotAvailable:
                raise DatabaseInUse(f"the swap waited {LOCK_TIMEOUT} for a lock on {live} or {restored} and gave up; "
                                    f"nothing was changed; restore again when they are idle") from None
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    # The COMMIT may or may not have reached the server; either way it was all or nothing, and
                    # the sweep reports a swap that committed (its kept database exists).
                    raise RestoreFailed(redact(f"the connection broke during the swap ({_first_line(exc)}); it "
                                               "either committed whole or not at all: `openwatch-backup sweep` "
                                               f"reports {kept} if the restored database is now {live}")) from None
                raise RestoreFailed(redact(f"the swap failed and nothing was changed ({type(exc).__name__}: "
                                           f"{_first_line(exc)})")) from None


def _swap_transaction(conn: psycopg.Connection, live: str, restored: str, kept: str, pause: Pause | None) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        _rename(conn, live, kept)  # takes the live database's lock: new sessions wait, then find it moved
        if pause is not None:
            pause("swap_first_rename")
        _rename(conn, restored, live)
        # Both must take connections whatever an older version left behind; part of the same commit.
        for name in (live, kept):
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
        if pause is not None:
            pause("swap_before_commit")
