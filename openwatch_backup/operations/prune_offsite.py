"""Prune per location: the off-site (S3) copies' plan and deletes, and the local-only deletes of backups whose
S3 copy stays (operations/prune.py runs the local plan and calls these).

A backup has up to two copies (backup_copies: local, s3), each judged by its own age limit with the same floor,
tiers and pins. Which intent a delete records depends on what stays:
  - the copy is the backup's last one: `details.pruning` (as before S3), and `pruned_at` once it is gone;
  - the other copy stays: `details.pruning_<storage>`, and that copy's row becomes `deleted` once it is gone;
    `pruned_at` stays NULL, so the backup is still present (readable from the copy that stays).
A kill between the intent and the row update leaves a marker whose copy is not `deleted`: the next prune
deletes what is left of that copy and records it, or, when all of it is still there, drops the marker so the
copy is planned again (`complete_marked`).
Only keys our catalog names are deleted in S3 (a backup's artifact and manifest), one DeleteObject each, under our
prefix (S3Storage adds it); nothing is ever deleted by listing a pattern. A refused delete (Object Lock, 403)
stops the S3 deletes, leaves that copy's row as it was, and fails the prune run with the storage's one line.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from openwatch_backup.catalog.prune_store import BackupRow, PruneStore
from openwatch_backup.core.naming import artifact_key, manifest_key
from openwatch_backup.core.retention import ArtifactRecord, Decision
from openwatch_backup.errors import StorageError
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.families import artifact_folder, list_families
from openwatch_backup.operations.kill_points import kill_point

LOCAL, S3 = "local", "s3"
GONE = (None, "deleted")  # a copy that is not there: never made, or deleted
NOT_VERIFIED_YET = "off-site copy not verified yet"


def named_keys(row: BackupRow) -> tuple[str, ...]:
    """The keys our catalog names for a backup: its artifact and its manifest (the only keys prune deletes)."""
    return (artifact_key(row.artifact), manifest_key(row.artifact)) if row.artifact else ()


def s3_live(row: BackupRow) -> bool:
    """The backup has an S3 copy that retention has not deleted (it may still be pending or failed)."""
    return row.s3_state not in GONE


def local_live(row: BackupRow) -> bool:
    return row.local_state != "deleted" and not row.pruned


def local_hold(row: BackupRow) -> str:
    """Why a local file must stay although the local policy would delete it: S3 is on and its off-site copy is
    not verified. A backup that never verified and was never queued for a copy is not held (no copy will come)."""
    if row.s3_state == "verified" or row.s3_state == "deleted" or (row.s3_state is None and not row.verified):
        return ""
    return f"{NOT_VERIFIED_YET} (s3: {row.s3_state or 'not copied'})"


def remote_records(rows: Iterable[BackupRow], present: set[str]) -> tuple[list[ArtifactRecord], list[str]]:
    """Successful backups with an S3 copy still there, as the planner sees them. Verified there: the backup's
    verify passed, its copy is `verified` and both objects are listed."""
    records, warnings = [], []
    for row in rows:
        if row.status != "succeeded" or row.pruned or row.pruning or row.pruning_s3 or not s3_live(row):
            continue
        keys = named_keys(row)
        intact = bool(keys) and all(k in present for k in keys)
        if not intact and row.s3_state == "verified":
            warnings.append(f"{row.kind} backup {row.run_id[:8]}'s s3 copy is recorded as verified but "
                            f"{keys[0] if keys else 'its artifact'} or its manifest is not in the bucket")
        hold = "being copied now" if row.s3_state == "copying" else ""
        records.append(ArtifactRecord(row.run_id, row.kind, row.created_at, row.status,
                                      row.verified and row.s3_state == "verified" and intact, row.pinned, row.size,
                                      keys, hold, row.set_id or ""))
    return records, warnings


@dataclass
class RemoteResult:
    deleted: list[str] = field(default_factory=list)  # S3 keys deleted
    copies: list[str] = field(default_factory=list)  # backups whose S3 copy was deleted
    pruned: list[str] = field(default_factory=list)  # ... of which the S3 copy was the last one
    skipped: list[str] = field(default_factory=list)  # warnings
    error: StorageError | None = None  # the refused delete that stopped the S3 deletes


def _delete_remote(ctx: OperationContext, keys: Iterable[str], result: RemoteResult) -> None:
    """Delete our named keys one by one (a key already gone is deleted: S3 answers a missing key with success)."""
    assert ctx.offsite is not None
    for key in keys:
        ctx.offsite.delete(key)
        result.deleted.append(key)
        kill_point(f"prune:s3-deleted:{len(result.deleted)}")


def delete_remote_keys(ctx: OperationContext, keys: Iterable[str], result: RemoteResult) -> None:
    """For the ordinary repair: what is left of a last S3 copy a stopped prune began to delete."""
    _delete_remote(ctx, keys, result)


def apply_remote(ctx: OperationContext, store: PruneStore, prune_run: uuid.UUID, deletes: list[Decision],
                 rows: dict[str, BackupRow], stays: set[str]) -> RemoteResult:
    """Delete the S3 copies the off-site plan deletes, one backup at a time: intent, objects, row. `stays` are
    keys S3 copies that stay name: a backup that names one is left out."""
    result = RemoteResult()
    for decision in deletes:
        if not stays.isdisjoint(decision.keys):
            result.skipped.append(f"{decision.kind} backup {decision.run_id[:8]}'s s3 copy was planned for deletion "
                                  f"but {sorted(stays.intersection(decision.keys))[0]} is named by a copy that stays: "
                                  "not deleted")
            continue
        row = rows[decision.run_id]
        last = not local_live(row)
        marked = bool(store.mark_pruning([row.run_id], prune_run)) if last else \
            store.mark_location(row.run_id, S3, prune_run)
        if not marked:
            continue  # pinned or taken meanwhile
        kill_point("prune:s3-marked")
        before = len(result.deleted)
        try:
            _delete_remote(ctx, decision.keys, result)
        except StorageError as exc:
            if len(result.deleted) == before:  # nothing of this copy was deleted: it stays exactly as it was
                store.release([row.run_id]) if last else store.unmark_location(row.run_id, S3)
            result.error = exc
            return result
        if last:
            store.mark_pruned([row.run_id], (LOCAL, S3))
            result.pruned.append(row.run_id)
        else:
            store.copy_deleted(row.run_id, S3)
        result.copies.append(row.run_id)
        kill_point("prune:s3-recorded")
    return result


def delete_local_only(store: PruneStore, prune_run: uuid.UUID, decision: Decision,
                      delete: Callable[[str], None]) -> bool:
    """Delete a backup's local files while its S3 copy stays: intent, files, local copy row. False when the backup
    was pinned or taken meanwhile."""
    if not store.mark_location(decision.run_id, LOCAL, prune_run):
        return False
    kill_point("prune:local-marked")
    for key in decision.keys:
        delete(key)
    # The folder of the backup's family (the copy row a backup from before backup_copies gets names it).
    store.copy_deleted(decision.run_id, LOCAL, decision.keys[0].rpartition("/")[0] + "/" if decision.keys else "")
    kill_point("prune:local-recorded")
    return True


def unfinished(rows: Iterable[BackupRow]) -> list[tuple[BackupRow, str]]:
    """Copies a stopped prune began to delete (marker set, row not yet `deleted`), with the storage."""
    found = []
    for row in rows:
        if row.pruned or row.pruning:
            continue  # the whole backup's intent: the ordinary repair finishes it
        if row.pruning_local and row.local_state != "deleted":
            found.append((row, LOCAL))
        if row.pruning_s3 and row.s3_state not in GONE:
            found.append((row, S3))
    return found


def complete_marked(ctx: OperationContext, store: PruneStore, marked: list[tuple[BackupRow, str]],
                    local_present: set[str], remote_present: set[str] | None, delete_local: Callable[[str], None],
                    result: RemoteResult) -> None:
    """Finish the copies a stopped prune began to delete: what is left of them goes, their rows say deleted. A copy
    whose files are all still there is released instead (planned again), as a whole backup's intent is."""
    for row, storage in marked:
        keys = named_keys(row)
        present = local_present if storage == LOCAL else remote_present
        if present is None:
            continue  # an S3 copy while S3 is not configured: left for a prune that can reach it
        if keys and all(k in present for k in keys):
            store.unmark_location(row.run_id, storage)
        elif storage == LOCAL:
            for key in keys:
                if key in local_present:
                    delete_local(key)
            store.copy_deleted(row.run_id, LOCAL, artifact_folder(row.artifact))
        else:
            _delete_remote(ctx, keys, result)
            store.copy_deleted(row.run_id, S3)
        kill_point("prune:repair-recorded")


def check_remote_gone(ctx: OperationContext, deleted: list[str]) -> None:
    if ctx.offsite is None or not deleted:
        return
    still = sorted(set(deleted) & {o.key for o in list_families(ctx.offsite)})
    if still:
        raise StorageError(f"{len(still)} object(s) prune deleted are still listed in the bucket (first: "
                           f"{ctx.offsite.location(still[0])}); the storage did not delete them")
