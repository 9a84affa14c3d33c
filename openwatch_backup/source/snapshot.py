"""An exported snapshot that pg_dump joins (`--snapshot`), so our row counts describe the dump exactly.

The exporting transaction must stay open until pg_dump has taken the snapshot; we hold it for the
whole dump (it is read-only, REPEATABLE READ) and end it afterwards.
"""

from __future__ import annotations

import logging
from types import TracebackType

import psycopg

log = logging.getLogger(__name__)


class ExportedSnapshot:
    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self.snapshot_id = ""

    def __enter__(self) -> ExportedSnapshot:
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = self._conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        self.snapshot_id = str(row[0])
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._conn.closed:
            return
        try:
            self._conn.execute("ROLLBACK")
        except psycopg.Error:
            # The server went away (stopped mid-dump): the transaction is gone with it. Raising here would hide
            # the error that says what happened (pg_dump's), and a dump that finished needs no rollback.
            log.warning("could not end the snapshot's transaction (the connection is gone)")
