"""Carry the backup history into a restored database before it is swapped in.

Dumps leave out backup_runs' rows (a restore must not resurrect an old "running" row), so the live
catalog is copied into the restored database just before the swap: the history, and the restore run
itself, survive the restore.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.source.connection import connect
from openwatch_backup.source.facts import table_exists

TABLE = "backup_runs"


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum", (table,)).fetchall()
    return [str(r[0]) for r in rows]


def copy_catalog(live: DatabaseTarget, restored_db: str, redact: Callable[[str], str]) -> int:
    """Replace backup_runs' rows in restored_db with the live ones. Returns the number of rows copied."""
    with connect(live, redact) as source, connect(live.with_dbname(restored_db), redact, autocommit=False) as dest:
        if not (table_exists(source, TABLE) and table_exists(dest, TABLE)):
            return 0
        # Columns both sides have, in one order: a dump taken before a later plugin migration still loads.
        common = [c for c in _columns(source, TABLE) if c in set(_columns(dest, TABLE))]
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in common)
        dest.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(TABLE)))
        copied = 0
        with source.cursor().copy(sql.SQL("COPY {} ({}) TO STDOUT").format(sql.Identifier(TABLE), columns)) as out, \
                dest.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(TABLE), columns)) as into:
            for block in out:
                into.write(block)
        row = dest.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE))).fetchone()
        copied = int(row[0]) if row else 0
        dest.commit()
        return copied
