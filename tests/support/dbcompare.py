"""Fingerprints of a database's content, so a restore can be compared with its source table by table."""

from __future__ import annotations

import subprocess

import psycopg
from psycopg import sql

_USER_TABLES = """
    SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2
"""


def table_fingerprints(url: str, *, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """{schema.table: (row count, md5 over the sorted md5 of every row's text form)}."""
    result: dict[str, tuple[int, str]] = {}
    with psycopg.connect(url) as conn:
        for schema, table in conn.execute(_USER_TABLES).fetchall():
            name = f"{schema}.{table}"
            if name in skip:
                continue
            query = sql.SQL("SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) "
                            "FROM {}.{} t").format(sql.Identifier(schema), sql.Identifier(table))
            row = conn.execute(query).fetchone()
            assert row is not None
            result[name] = (int(row[0]), str(row[1]))
    return result


def sequence_values(url: str) -> dict[str, int | None]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences "
                            "ORDER BY 1").fetchall()
    return {str(name): value for name, value in rows}


def schema_dump(url: str) -> str:
    """pg_dump --schema-only text minus the lines that differ between any two dumps (the \\restrict key)."""
    out = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-d", url],
                         capture_output=True, text=True, check=True).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def reference_schema(source_url: str, scratch_url: str) -> str:
    """The source's schema after one plain `pg_dump --schema-only | psql` cycle into scratch_url.

    PostgreSQL does not print some expressions back the way it parsed them (an `IN (...)` over varchar
    becomes `= ANY ((ARRAY[...])::text[])`, then `= ANY (ARRAY[(...)::text])` after a reload), so a restored
    schema is compared with the source's schema after the same one reload, not with the source's text.
    """
    dump = subprocess.run(["pg_dump", "--schema-only", "-d", source_url], capture_output=True, check=True).stdout
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", scratch_url], input=dump,
                   capture_output=True, check=True)
    return schema_dump(scratch_url)
