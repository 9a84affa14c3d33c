"""What the manifest records about the source: versions, size, migration head, row counts."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from openwatch_backup.core.dump_plan import CANARY_TABLE, system_table_problem
from openwatch_backup.errors import ConfigError, DumpFailed


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


# Every relation whose data a dump holds: tables, materialized views, and sequences (their SEQUENCE SET),
# each sequence with the table that owns it (a serial or identity column), if any.
_DATA_RELATIONS = """
    SELECT n.nspname || '.' || c.relname, c.relkind = 'S', owner_n.nspname || '.' || owner.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_depend d ON c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LEFT JOIN pg_class owner ON owner.oid = d.refobjid
    LEFT JOIN pg_namespace owner_n ON owner_n.oid = owner.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm', 'S') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY 1
"""
_RESOLVE = """
    SELECT n.nspname || '.' || c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = to_regclass(%s)
"""


def resolve_table(conn: psycopg.Connection, name: str) -> str:
    """`schema.table` of a table named as OpenWatch's settings name it (`hosts`: through the search path, as
    pg_dump -t would). A missing table fails the dump (DumpFailed); a system catalog is refused (ConfigError)."""
    try:
        row = conn.execute(_RESOLVE, (name,)).fetchone()
    except psycopg.errors.InvalidName:  # settings and the API check names first; a forged request does not
        raise DumpFailed(f"{name!r} is not a table name (letters, digits, _ and one optional schema.)") from None
    found = str(row[0]) if row else None
    problem = system_table_problem(name, found)
    if problem:
        raise ConfigError(problem)
    if row is None or found is None:
        database = conn.info.dbname
        raise DumpFailed(f"no table {name} in database {database}; the tables kind backs up tables named by "
                         "--tables or OPENWATCH_BACKUP_TABLES, and each must exist")
    if row[1] not in ("r", "p"):
        raise DumpFailed(f"{name} is not a table (a view or sequence); name tables in --tables or "
                         "OPENWATCH_BACKUP_TABLES")
    return found


def tables_left_out(conn: psycopg.Connection, names: list[str], *, canary: bool) -> list[str]:
    """`schema.name` of every table, and every sequence not owned by a kept table, whose data a `tables` backup
    of `names` leaves out (see dump_plan.py). Sequences count: a plain `pg_restore --data-only` of the archive
    would otherwise set every sequence of the database back to its value at backup time. Run inside the
    dump's snapshot, so the list matches what pg_dump sees."""
    kept = {resolve_table(conn, name) for name in names}
    if canary and table_exists(conn, CANARY_TABLE):
        kept.add(resolve_table(conn, CANARY_TABLE))
    left_out: list[str] = []
    for name, is_sequence, owner in conn.execute(_DATA_RELATIONS):
        keep = owner in kept if is_sequence else name in kept
        if not keep:
            left_out.append(str(name))
    return left_out
