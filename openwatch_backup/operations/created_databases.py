"""Databases a run creates are written on the run BEFORE they are created (decision 11).

A run killed between CREATE DATABASE and its own cleanup leaves a database only the catalog can name:
the sweeper drops the ones recorded on runs that ended without succeeding. A database is dropped only
if a run recorded it as its own; the record is cleared once the database is gone, so a name reused
later by the operator is never touched.
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg import errors

from openwatch_backup.errors import RestoreRefused
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.source.scratch import create_database, drop_database

KEY = "databases_created"


def create_recorded(ctx: OperationContext, run_id: uuid.UUID, conn: psycopg.Connection, name: str) -> None:
    ctx.recorder.add_details(run_id, {KEY: [name]})
    try:
        create_database(conn, name)
    except errors.DuplicateDatabase:
        # Someone else created it after the guard looked: it is theirs, never ours to drop.
        ctx.recorder.add_details(run_id, {KEY: []})
        raise RestoreRefused(f"database {name} already exists; restore into a new database (drop it or choose "
                             "another name)") from None


def drop_recorded(ctx: OperationContext, run_id: uuid.UUID, conn: psycopg.Connection, name: str, *,
                  lock_timeout: str | None = None) -> None:
    drop_database(conn, name, lock_timeout=lock_timeout)
    ctx.recorder.add_details(run_id, {KEY: []})


def recorded(details: dict[str, object]) -> list[str]:
    names = details.get(KEY)
    return [str(n) for n in names] if isinstance(names, list) else []
