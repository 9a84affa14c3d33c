"""Carry the backup history into a restored database before it is swapped in.

Dumps leave out backup_runs' rows (a restore must not resurrect an old "running" row) and backup_copies' rows
(they point at the runs), so the live catalog is copied into the restored database just before the swap: the
history, each backup's copies, and the restore run itself, survive the restore.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.source.connection import connect
from openwatch_backup.source.facts import table_exists

TABLE = "backup_runs"
COPIES = "backup_copies"  # after the runs: its rows reference them


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum", (table,)).fetchall()
    return [str(r[0]) for r in rows]


def copy_catalog(live: DatabaseTarget, restored_db: str, redact: Callable[[str], str]) -> int:
    """Replace backup_runs' (and backup_copies') rows in restored_db with the live ones, in one transaction.
    Returns the number of runs copied."""
    with connect(live, redact) as source, connect(live.with_dbname(restored_db), redact, autocommit=False) as dest:
        if not (table_exists(source, TABLE) and table_exists(dest, TABLE)):
            return 0
        copies = table_exists(source, COPIES) and table_exists(dest, COPIES)
        if copies:
            dest.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(COPIES)))
        dest.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(TABLE)))
        _copy_rows(source, dest, TABLE)
        if copies:
            _copy_rows(source, dest, COPIES)
        row = dest.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE))).fetchone()
        copied = int(row[0]) if row else 0
        dest.commit()
        return copied


def _copy_rows(source: psycopg.Connection, dest: psycopg.Connection, table: str) -> None:
    # Columns both sides have, in one order: a dump taken before a later plugin migration still loads.
    common = [c for c in _columns(source, table) if c in set(_columns(dest, table))]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in common)
    with source.cursor().copy(sql.SQL("COPY {} ({}) TO STDOUT").format(sql.Identifier(table), columns)) as out, \
            dest.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), columns)) as into:
        for block in out:
            into.write(block)
