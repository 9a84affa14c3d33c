"""Scratch databases for deep verify, drills and restores: created, always dropped, swept by name.

Names are `owbscratch_<purpose>_<first 12 hex of the run id>`, so a database left by a killed run is
recognisable and is dropped by the next sweep once its run is no longer running.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql

from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.source.connection import connect

PREFIX = "owbscratch_"
_NAME = re.compile(r"^owbscratch_(?P<purpose>[a-z]+)_(?P<run>[0-9a-f]{12})$")


def scratch_name(purpose: str, run_id: uuid.UUID) -> str:
    return f"{PREFIX}{purpose}_{run_id.hex[:12]}"


def run_prefix_of(name: str) -> str | None:
    match = _NAME.match(name)
    return match.group("run") if match else None


def create_database(conn: psycopg.Connection, name: str) -> None:
    # template0: nothing a site added to template1 leaks into the restore.
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def drop_database(conn: psycopg.Connection, name: str, *, lock_timeout: str | None = None) -> None:
    """FORCE ends the sessions on it. lock_timeout bounds the wait for a lock someone holds on the database
    (a failed run's cleanup must not hang; what it leaves, the sweeper drops later)."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    if lock_timeout is None:
        conn.execute(statement)
        return
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(lock_timeout)))
    try:
        conn.execute(statement)
    finally:
        conn.execute("RESET lock_timeout")


def list_scratch_databases(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'owbscratch\\_%' ORDER BY 1")
    return [str(r[0]) for r in rows]


def sweep_scratch_databases(target: DatabaseTarget, redact: Callable[[str], str],
                            is_finished_run: Callable[[str], bool]) -> list[str]:
    """Drop scratch databases whose run is in this catalog and finished (left by a killed worker).

    Scratch databases are server-wide but catalogs are not: a database whose run this catalog does not
    know belongs to another OpenWatch (or another catalog) on the same server, and is left alone.
    """
    dropped = []
    with connect(target, redact) as conn:
        for name in list_scratch_databases(conn):
            prefix = run_prefix_of(name)
            if prefix is not None and is_finished_run(prefix):
                drop_database(conn, name)
                dropped.append(name)
    return dropped
