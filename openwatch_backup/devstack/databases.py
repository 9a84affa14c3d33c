"""Databases on a PostgreSQL server of the local stack: create, drop and test for them, scratch database
names that record their owning process (so leftovers of dead processes can be dropped), and the seeded
demo database."""

from __future__ import annotations

import importlib
import os
import re
import secrets
from types import ModuleType

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from openwatch_backup.devstack.errors import DevstackError
from openwatch_backup.devstack.postgres import PostgresHandle
from openwatch_backup.devstack.processes import _pid_alive


def create_database(pg: PostgresHandle, name: str, *, template: str | None = None) -> bool:
    """CREATE DATABASE `name` (optionally from `template`); False if it already existed."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with pg.connect() as conn:
        try:
            conn.execute(query)
        except pg_errors.DuplicateDatabase:
            return False
    return True


def drop_database(pg: PostgresHandle, name: str) -> None:
    """DROP DATABASE IF EXISTS `name` WITH (FORCE): open sessions on it are ended first."""
    with pg.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_exists(pg: PostgresHandle, name: str) -> bool:
    with pg.connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


SCRATCH_PREFIX = "owb_"
_SCRATCH_NAME = re.compile(r"^owb_[a-z0-9]+_(\d+)_[0-9a-f]+$")


def scratch_database_name(tag: str = "t") -> str:
    """A new database name `owb_<tag>_<pid>_<8 hex>` that records which process made it, so that
    `drop_orphan_databases` can tell leftovers of dead processes from databases still in use."""
    clean = re.sub(r"[^a-z0-9]", "", tag.lower())[:20] or "t"
    return f"{SCRATCH_PREFIX}{clean}_{os.getpid()}_{secrets.token_hex(4)}"


def drop_orphan_databases(pg: PostgresHandle) -> list[str]:
    """Drop the scratch databases (see `scratch_database_name`) whose process is no longer alive; returns
    their names. Other databases, and those of live processes, are left alone."""
    with pg.connect() as conn:
        names = [str(row[0]) for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'owb\\_%' ESCAPE '\\'")]
    dropped = []
    for name in names:
        match = _SCRATCH_NAME.match(name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        drop_database(pg, name)
        dropped.append(name)
    return dropped


def _load_sample() -> ModuleType:
    """openwatch_backup.sample, imported only when needed (only the demo and the tests use it)."""
    try:
        sample = importlib.import_module("openwatch_backup.sample")
    except ImportError as exc:
        raise DevstackError(f"the sample data module openwatch_backup.sample cannot be imported: {exc}") from exc
    lacking = [name for name in ("create_schema", "is_seeded", "seed") if not hasattr(sample, name)]
    if lacking:
        raise DevstackError(f"openwatch_backup.sample lacks {', '.join(lacking)}")
    return sample


def ensure_demo_database(pg: PostgresHandle, name: str = "openwatch_demo", target_mib: float = 20) -> str:
    """Create database `name` if missing and seed it with sample OpenWatch data unless already seeded
    (schema and seed run in one transaction). Returns the database's URL."""
    sample = _load_sample()
    create_database(pg, name)
    url = pg.url_for(name)
    with psycopg.connect(url, connect_timeout=10) as conn:
        stale = sample.is_seeded(conn) and not sample.credentials_fit(conn)
        conn.rollback()
    if stale:  # seeded by an earlier version, before its credentials were encrypted: the demo's data, made again
        drop_database(pg, name)
        create_database(pg, name)
    with psycopg.connect(url, connect_timeout=10) as conn:
        seeded = sample.is_seeded(conn)
        conn.rollback()  # end is_seeded's read transaction: schema and seed get one of their own
        if not seeded:
            sample.create_schema(conn)
            sample.seed(conn, target_mib=target_mib)
            conn.commit()
    return url
