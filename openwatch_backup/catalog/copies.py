"""Record a backup's copies in backup_copies: one row per (backup run, storage), each with its own state.

Short transactions, database clock, Core statements, like the run recorder. Every error text stored here has
passed the redactor. A transition names the states it may leave, so a late writer (a second delivery, a sweeper
racing an upload) cannot move a copy backwards.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from openwatch_backup.catalog.models import BackupCopy
from openwatch_backup.catalog.recorder import CatalogWriter, catalog_errors
from openwatch_backup.core.copies import CopyState, CopyStorage

_TABLE = typing.cast(Table, BackupCopy.__table__)


def copy_to_dict(copy: BackupCopy) -> dict[str, Any]:
    """A copy as the CLI's --json, the API and the page show it."""
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {"storage": copy.storage, "state": copy.state, "location": copy.location, "size_bytes": copy.size_bytes,
            "sha256": copy.sha256, "attempts": copy.attempts, "error": copy.error,
            "created_at": when(copy.created_at), "updated_at": when(copy.updated_at),
            "verified_at": when(copy.verified_at), "reverified_at": when(copy.reverified_at),
            "deleted_at": when(copy.deleted_at)}


class CopyStore(CatalogWriter):
    # --- writes
    def record(self, run_id: uuid.UUID, storage: CopyStorage, *, key: str, location: str,
               state: CopyState = CopyState.PENDING, size: int | None = None, sha256: str | None = None,
               conn: Connection | None = None) -> None:
        """Create the copy row, or leave an existing one as it is (a second delivery, a re-run)."""
        statement = insert(_TABLE).values(run_id=run_id, storage=storage.value, state=state.value, key=key,
                                          location=location, size_bytes=size, sha256=sha256,
                                          verified_at=func.now() if state is CopyState.VERIFIED else None)
        statement = statement.on_conflict_do_nothing(constraint="uq_backup_copies_run_id_storage")
        if conn is not None:
            conn.execute(statement)
            return
        with self._begin() as own:
            own.execute(statement)

    def _move(self, run_id: uuid.UUID, storage: CopyStorage, allowed_from: Iterable[CopyState],
              **values: Any) -> bool:
        """Set `values` if the copy is in one of `allowed_from`; True if it was."""
        with self._begin() as conn:
            result = conn.execute(update(_TABLE).where(
                _TABLE.c.run_id == run_id, _TABLE.c.storage == storage.value,
                _TABLE.c.state.in_([s.value for s in allowed_from])).values(updated_at=func.now(), **values))
            return result.rowcount > 0

    def start_copying(self, run_id: uuid.UUID, storage: CopyStorage) -> bool:
        """pending/failed/copying -> copying, one more attempt. False if verified or deleted already."""
        return self._move(run_id, storage, (CopyState.PENDING, CopyState.FAILED, CopyState.COPYING),
                          state=CopyState.COPYING.value, attempts=_TABLE.c.attempts + 1, error=None, upload_id=None)

    def set_upload(self, run_id: uuid.UUID, storage: CopyStorage, upload_id: str | None) -> None:
        """The intent: a multipart upload exists under this id until it completes or is aborted."""
        self._move(run_id, storage, (CopyState.COPYING,), upload_id=upload_id)

    def verified(self, run_id: uuid.UUID, storage: CopyStorage, *, size: int, sha256: str) -> bool:
        return self._move(run_id, storage, (CopyState.PENDING, CopyState.COPYING, CopyState.FAILED,
                                            CopyState.VERIFIED),
                          state=CopyState.VERIFIED.value, size_bytes=size, sha256=sha256, error=None, upload_id=None,
                          verified_at=func.now())

    def failed(self, run_id: uuid.UUID, storage: CopyStorage, error: str) -> bool:
        """A failed copy or check. A deleted copy stays deleted."""
        return self._move(run_id, storage, (CopyState.PENDING, CopyState.COPYING, CopyState.FAILED,
                                            CopyState.VERIFIED),
                          state=CopyState.FAILED.value, error=self._redact(error), upload_id=None)

    def reverified(self, run_id: uuid.UUID, storage: CopyStorage, *, size: int, sha256: str) -> bool:
        """A full re-read matched: verified, and the time of that re-read kept."""
        return self._move(run_id, storage, (CopyState.PENDING, CopyState.VERIFIED, CopyState.FAILED),
                          state=CopyState.VERIFIED.value, size_bytes=size, sha256=sha256, error=None,
                          verified_at=func.coalesce(_TABLE.c.verified_at, func.now()), reverified_at=func.now())

    def deleted(self, run_id: uuid.UUID, storage: CopyStorage) -> bool:
        return self._move(run_id, storage, tuple(CopyState), state=CopyState.DELETED.value, upload_id=None,
                          deleted_at=func.coalesce(_TABLE.c.deleted_at, func.now()))

    # --- reads
    def get(self, run_id: uuid.UUID, storage: CopyStorage) -> BackupCopy | None:
        query = select(BackupCopy).where(_TABLE.c.run_id == run_id, _TABLE.c.storage == storage.value)
        with catalog_errors(self._database), Session(self._engine, expire_on_commit=False) as session:
            return session.scalars(query).first()

    def of_runs(self, run_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[BackupCopy]]:
        """Each run's copies, local first: one query for a whole listing."""
        ids = list(run_ids)
        found: dict[uuid.UUID, list[BackupCopy]] = {run_id: [] for run_id in ids}
        if not ids:
            return found
        query = select(BackupCopy).where(_TABLE.c.run_id.in_(ids)).order_by(_TABLE.c.run_id, _TABLE.c.storage)
        with catalog_errors(self._database), Session(self._engine, expire_on_commit=False) as session:
            for copy in session.scalars(query):
                found[copy.run_id].append(copy)
        return found

    def in_state(self, storage: CopyStorage, *states: CopyState, limit: int = 1000) -> list[BackupCopy]:
        """Copies of `storage` in any of `states`, oldest change first (the sweeper's work list)."""
        query = select(BackupCopy).where(_TABLE.c.storage == storage.value,
                                         _TABLE.c.state.in_([s.value for s in states])) \
            .order_by(_TABLE.c.updated_at.asc()).limit(limit)
        with catalog_errors(self._database), Session(self._engine, expire_on_commit=False) as session:
            return list(session.scalars(query))
