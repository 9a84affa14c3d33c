"""The catalog queries retention needs: every backup with its latest verify verdict, and the conditional
updates that record prune's intent, its result, and pins.

The intent (`details.pruning` = the prune run's id) is written before any file is deleted and `pruned_at` after,
so a crash in between leaves a marked row the next prune completes. `details.pruning` stays afterwards: it names
the prune that took the backup. Marking and pinning are conditional
UPDATEs on the same row, so a backup pinned while a prune plans is never deleted by that prune.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, Text, Uuid, any_, func, literal, text, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql import cast

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import catalog_errors

_TABLE = typing.cast(Table, BackupRun.__table__)
_PRUNING = literal("pruning", Text())

# The newest verify verdict of each backup: passed, or failed on the backup itself (error codes verify_*);
# a verify that could not run (no pg_restore, cancelled) says nothing about the backup.
_LOAD = text("""
WITH verdict AS (
    SELECT DISTINCT ON (parent_id) parent_id, status
    FROM backup_runs
    WHERE kind = 'verify' AND parent_id IS NOT NULL
      AND (status = 'succeeded' OR (status = 'failed' AND error_code LIKE 'verify\\_%'))
    ORDER BY parent_id, created_at DESC, id DESC
)
SELECT b.id, b.kind, b.status, b.created_at, b.size_bytes, b.pinned, b.pruned_at IS NOT NULL AS pruned,
       b.details->>'pruning' AS pruning, b.details->>'artifact' AS artifact,
       b.details->>'artifact_in_progress' AS in_progress, v.status AS verdict,
       b.details->>'pruning_local' AS pruning_local, b.details->>'pruning_s3' AS pruning_s3,
       lc.state AS local_state, rc.state AS s3_state, b.details->>'set_id' AS set_id
FROM backup_runs b LEFT JOIN verdict v ON v.parent_id = b.id
LEFT JOIN backup_copies lc ON lc.run_id = b.id AND lc.storage = 'local'
LEFT JOIN backup_copies rc ON rc.run_id = b.id AND rc.storage = 's3'
WHERE b.kind = ANY(:kinds)
""")
_COPIES_DELETED = text("""
UPDATE backup_copies SET state = 'deleted', upload_id = NULL, updated_at = now(),
       deleted_at = coalesce(deleted_at, now())
WHERE run_id = ANY(:runs) AND storage = ANY(:storages)
""")
# A backup from before backup_copies had no local copy row: one is added (as deleted) when its file goes.
_LOCAL_ROW = text("""
INSERT INTO backup_copies (run_id, storage, state, key, location, attempts, created_at, updated_at)
SELECT b.id, 'local', 'pending', :prefix || (b.details->>'artifact'), '', 0, now(), now()
FROM backup_runs b WHERE b.id = ANY(:runs) AND b.details ? 'artifact'
ON CONFLICT ON CONSTRAINT uq_backup_copies_run_id_storage DO NOTHING
""")


@dataclass(frozen=True)
class BackupRow:
    run_id: str
    kind: str
    status: str
    created_at: datetime
    size: int
    pinned: bool
    pruned: bool
    pruning: str | None
    artifact: str | None  # file name under the prefix (details.artifact)
    in_progress: str | None  # storage key (details.artifact_in_progress)
    verified: bool  # the newest verify verdict passed
    pruning_local: str | None = None  # a prune's intent to delete only the local copy (the s3 one stays)
    pruning_s3: str | None = None  # a prune's intent to delete only the s3 copy (the local one stays)
    local_state: str | None = None  # backup_copies state of the local copy (None: no row, an older backup)
    s3_state: str | None = None  # ... of the s3 copy (None: never copied)
    set_id: str | None = None  # the nightly set it belongs to (service/sets.py)


def _among(run_ids: Sequence[str]) -> Any:
    """id = ANY(one array parameter): thousands of ids without thousands of bind parameters."""
    return _TABLE.c.id == any_(literal([uuid.UUID(r) for r in run_ids], ARRAY(Uuid())))


class PruneStore:
    def __init__(self, engine: Engine, database: str) -> None:
        self._engine = engine
        self._database = database

    def load(self, kinds: Sequence[str]) -> tuple[datetime, list[BackupRow]]:
        """The database's clock (the one that stamped created_at) and every run of these kinds."""
        with catalog_errors(self._database), self._engine.connect() as conn:
            now = conn.execute(text("SELECT now()")).scalar_one()
            rows = conn.execute(_LOAD, {"kinds": list(kinds)}).all()
        return now, [BackupRow(run_id=str(r.id), kind=r.kind, status=r.status, created_at=r.created_at,
                               size=r.size_bytes or 0, pinned=bool(r.pinned), pruned=bool(r.pruned),
                               pruning=r.pruning, artifact=r.artifact, in_progress=r.in_progress,
                               verified=r.verdict == "succeeded", pruning_local=r.pruning_local,
                               pruning_s3=r.pruning_s3, local_state=r.local_state, s3_state=r.s3_state,
                               set_id=r.set_id)
                for r in rows]

    def mark_pruning(self, run_ids: Sequence[str], prune_run: uuid.UUID) -> list[str]:
        """Record the intent to delete these backups; returns those marked (a backup pinned meanwhile is not)."""
        if not run_ids:
            return []
        with catalog_errors(self._database), self._engine.begin() as conn:
            marked = conn.execute(
                update(_TABLE).where(_among(run_ids), _TABLE.c.status == "succeeded",
                                     _TABLE.c.pruned_at.is_(None), _TABLE.c.pinned.is_(False))
                .values(details=_TABLE.c.details.op("||")(cast({"pruning": str(prune_run)}, JSONB)))
                .returning(_TABLE.c.id)).scalars().all()
        return [str(m) for m in marked]

    def mark_pruned(self, run_ids: Sequence[str], storages: Sequence[str] = ("local",)) -> None:
        """Their files are gone: stamp pruned_at (the row stays as history; details.pruning says who), and mark
        their copies in `storages` deleted, in the same transaction."""
        if not run_ids:
            return
        with catalog_errors(self._database), self._engine.begin() as conn:
            conn.execute(update(_TABLE).where(_among(run_ids)).values(pruned_at=func.now()))
            conn.execute(_COPIES_DELETED, {"runs": [uuid.UUID(r) for r in run_ids], "storages": list(storages)})

    def mark_location(self, run_id: str, storage: str, prune_run: uuid.UUID) -> bool:
        """Record the intent to delete one copy (details.pruning_<storage>) of a backup whose other copy stays;
        False when the backup was pinned, taken or marked meanwhile."""
        with catalog_errors(self._database), self._engine.begin() as conn:
            marked = conn.execute(
                update(_TABLE).where(_TABLE.c.id == uuid.UUID(run_id), _TABLE.c.status == "succeeded",
                                     _TABLE.c.pruned_at.is_(None), _TABLE.c.pinned.is_(False),
                                     ~_TABLE.c.details.has_key("pruning"))
                .values(details=_TABLE.c.details.op("||")(cast({f"pruning_{storage}": str(prune_run)}, JSONB)))
                .returning(_TABLE.c.id)).first()
        return marked is not None

    def unmark_location(self, run_id: str, storage: str) -> None:
        """Drop a copy's delete intent when nothing of it was deleted (a refused delete): the copy is as before."""
        with catalog_errors(self._database), self._engine.begin() as conn:
            conn.execute(update(_TABLE).where(_TABLE.c.id == uuid.UUID(run_id))
                         .values(details=_TABLE.c.details.op("-")(literal(f"pruning_{storage}", Text()))))

    def copy_deleted(self, run_id: str, storage: str, prefix: str = "") -> None:
        """One copy of a backup is gone (its other copy stays, so pruned_at stays NULL). The intent marker stays
        as history: it names the prune that took this copy."""
        runs = [uuid.UUID(run_id)]
        with catalog_errors(self._database), self._engine.begin() as conn:
            if storage == "local":
                conn.execute(_LOCAL_ROW, {"runs": runs, "prefix": prefix})
            conn.execute(_COPIES_DELETED, {"runs": runs, "storages": [storage]})

    def release(self, run_ids: Sequence[str]) -> None:
        """Drop the intent of a prune that stopped before deleting anything: the backup is planned again."""
        if not run_ids:
            return
        with catalog_errors(self._database), self._engine.begin() as conn:
            conn.execute(update(_TABLE).where(_among(run_ids), _TABLE.c.pruned_at.is_(None))
                         .values(details=_TABLE.c.details.op("-")(_PRUNING)))

    def set_pinned(self, run_id: uuid.UUID, pinned: bool, pin_info: dict[str, Any]) -> bool:
        """Pin only a successful backup that no prune has taken; unpin always. False when nothing matched."""
        condition = [_TABLE.c.id == run_id]
        if pinned:
            condition += [_TABLE.c.status == "succeeded", _TABLE.c.pruned_at.is_(None),
                          ~_TABLE.c.details.has_key("pruning")]
        with catalog_errors(self._database), self._engine.begin() as conn:
            found = conn.execute(update(_TABLE).where(*condition).values(
                pinned=pinned, details=_TABLE.c.details.op("||")(cast({"pin": pin_info}, JSONB)))
                .returning(_TABLE.c.id)).first()
        return found is not None
