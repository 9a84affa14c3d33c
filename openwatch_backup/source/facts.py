"""What the manifest records about the source: versions, size, migration head, row counts."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from openwatch_backup.core.dump_plan import CANARY_TABLE


@dataclass(frozen=True)
class ServerFacts:
    database: str
    version: str  # "15.20"
    major: int
    size_bytes: int


def server_facts(conn: psycopg.Connection) -> ServerFacts:
    row = conn.execute("SELECT current_database(), current_setting('server_version'), "
                       "current_setting('server_version_num')::int, pg_database_size(current_database())"
                       ).fetchone()
    assert row is not None
    database, version, version_num, size = row
    return ServerFacts(database=database, version=str(version).split()[0], major=version_num // 10000,
                       size_bytes=int(size))


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def alembic_head(conn: psycopg.Connection) -> str | None:
    """OpenWatch's own migration head, if its alembic_version table exists (several heads: comma-joined)."""
    if not table_exists(conn, "public.alembic_version"):
        return None
    heads = sorted(str(r[0]) for r in conn.execute("SELECT version_num FROM public.alembic_version"))
    return ",".join(heads) or None


def row_counts(conn: psycopg.Connection, tables: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Exact counts of the tables that exist; run inside the dump's snapshot so they match the dump."""
    counts: dict[str, int] = {}
    for name in tables:
        if table_exists(conn, name):
            ident = sql.Identifier(*name.split("."))
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
            counts[name] = int(row[0]) if row else 0
    return counts


def write_canary(conn: psycopg.Connection, run_id: uuid.UUID) -> str | None:
    """Commit a fresh nonce just before the dump's snapshot; None if the plugin's table is absent."""
    if not table_exists(conn, CANARY_TABLE):
        return None
    nonce = secrets.token_hex(16)
    with conn.transaction():
        # One row only: the restored database then holds exactly the nonce of the dump it came from.
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(CANARY_TABLE)))
        conn.execute(sql.SQL("INSERT INTO {} (run_id, nonce) VALUES (%s, %s)").format(sql.Identifier(CANARY_TABLE)),
                     (run_id, nonce))
    return nonce
