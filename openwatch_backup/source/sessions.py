"""Who else is connected to a database, and ending those sessions when the operator asked for it."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from openwatch_backup.source.connection import APPLICATION_NAME


@dataclass(frozen=True)
class Session:
    pid: int
    application: str
    user: str


def other_sessions(conn: psycopg.Connection, dbname: str, *, include_ours: bool = False) -> list[Session]:
    """Sessions on dbname other than this connection (and, unless include_ours, other openwatch-backup ones)."""
    rows = conn.execute(
        "SELECT pid, coalesce(application_name, ''), coalesce(usename, '') FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'", (dbname,)).fetchall()
    sessions = [Session(int(pid), str(app), str(user)) for pid, app, user in rows]
    return [s for s in sessions if include_ours or s.application != APPLICATION_NAME]


def terminate(conn: psycopg.Connection, sessions: list[Session]) -> None:
    for session in sessions:
        conn.execute("SELECT pg_terminate_backend(%s)", (session.pid,))


def describe(sessions: list[Session]) -> str:
    names = sorted({s.application or f"pid {s.pid}" for s in sessions})
    return f"{len(sessions)} other session(s) ({', '.join(names)})"
