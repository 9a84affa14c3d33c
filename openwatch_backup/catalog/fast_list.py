"""Read runs for the CLI's `list` with psycopg alone: one SELECT on backup_runs, rows as plain tuples.

`list` must start within 0.3 s (bench/bench_cli_start.py), and SQLAlchemy's ORM costs more than that to import.
This is RunRecorder.list for the CLI's filters: the same rows in the same order (newest first by created_at,
then id), read with the same driver, so that catalog/serialize.py's run_to_dict and the CLI's table take a
RunRow as they take a BackupRun. tests/test_list_fast_path.py holds it to the ORM: RunRow's fields are
BackupRun's columns, and `list --json` equals run_to_dict of the ORM's rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from openwatch_backup.catalog import read_errors
from openwatch_backup.core.dsn import DatabaseTarget

APPLICATION_NAME = "openwatch-backup"  # as catalog/engine.py names the ORM's connections


class RunRow(NamedTuple):
    """One backup_runs row; the fields are the table's columns, in its order."""

    id: uuid.UUID
    kind: str
    status: str
    trigger: str
    requested_by: str | None
    parent_id: uuid.UUID | None
    phase: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    bytes_done: int
    artifact_location: str | None
    size_bytes: int | None
    sha256: str | None
    details: dict[str, Any]
    error_code: str | None
    error: str | None
    pinned: bool
    pruned_at: datetime | None


COLUMNS: tuple[str, ...] = RunRow._fields


def list_query(*, kind: str | None, status: str | None) -> tuple[str, list[str]]:
    """The SELECT (with %s placeholders, LIMIT last) and its parameters before the limit."""
    conditions, params = [], []
    for column, value in (("kind", kind), ("status", status)):
        if value:
            conditions.append(f'"{column}" = %s')
            params.append(value)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    select = ", ".join(f'"{column}"' for column in COLUMNS)
    return f"SELECT {select} FROM backup_runs{where} ORDER BY created_at DESC, id DESC LIMIT %s", params


# backup_copies' columns as catalog/copies.copy_to_dict shows them (tests/test_offsite_list.py holds the two equal).
COPY_FIELDS = ("storage", "state", "location", "size_bytes", "sha256", "attempts", "error", "created_at",
               "updated_at", "verified_at", "reverified_at", "deleted_at")
COPIES_QUERY = (f"SELECT run_id, {', '.join(COPY_FIELDS)} FROM backup_copies WHERE run_id = ANY(%s) "
                "ORDER BY run_id, storage")


def copy_row_to_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """One backup_copies row (without run_id) as copy_to_dict gives the ORM's."""
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in zip(COPY_FIELDS, row, strict=True)}


class Listing(list[RunRow]):
    """The runs `list` shows, newest first, and each one's copies (copy_to_dict's form, local first): None on a
    catalog from before backup_copies (`db upgrade` adds it), where the runs still list."""

    copies: dict[uuid.UUID, list[dict[str, Any]]] | None = None


def list_runs(target: DatabaseTarget, *, limit: int, kind: str | None = None, status: str | None = None
              ) -> Listing:
    """Runs newest first, with their copies read by one more SELECT on the same connection. A missing table or
    an unreachable server raises recorder's one-line errors (catalog/read_errors.py); any other driver error
    propagates for the caller's as_backup_error."""
    import psycopg  # the only driver import of `list`

    query, params = list_query(kind=kind, status=status)
    database = target.describe()
    connect = target.connect_kwargs()
    connect["application_name"] = APPLICATION_NAME  # the ORM's connect_args win over the URL's too
    try:
        with psycopg.connect(**connect, autocommit=True) as conn:  # type: ignore[arg-type]
            listing = Listing(RunRow._make(row) for row in conn.execute(query, [*params, limit]).fetchall())
            listing.copies = _copies(conn, [row.id for row in listing])
    except psycopg.ProgrammingError as exc:
        raise read_errors.refused(exc, exc.sqlstate, database) from None
    except psycopg.OperationalError as exc:
        raise read_errors.unreachable(exc, exc, database) from None
    return listing


def _copies(conn: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]] | None:
    import psycopg

    found: dict[uuid.UUID, list[dict[str, Any]]] = {run_id: [] for run_id in ids}
    if not ids:
        return found
    try:
        for row in conn.execute(COPIES_QUERY, [ids]).fetchall():
            found[row[0]].append(copy_row_to_dict(row[1:]))
    except psycopg.errors.UndefinedTable:  # autocommit: the failed statement leaves the connection usable
        return None
    return found
