"""Bulk-load backup_runs rows with COPY: the shared loader of the catalog benchmarks (prune, API listing)."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql


def copy_runs(url: str, columns: Sequence[str], rows: list[tuple[object, ...]], *, analyze: bool = False) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        copy = sql.SQL("COPY backup_runs ({}) FROM STDIN").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
        with cur.copy(copy) as writer:
            for row in rows:
                writer.write_row(row)
        if analyze:
            cur.execute("ANALYZE backup_runs")
