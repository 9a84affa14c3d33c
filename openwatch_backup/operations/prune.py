"""Prune as a recorded run (kind `prune`): repair, plan, store the plan, then (with apply) delete.

1. Repair: backups a stopped prune had marked are completed (files partly gone) or released (all there);
   files of pruned backups that are still there are deleted. Shown, not done, in a dry run.
2. Plan: core/retention.py decides keep/delete per successful backup from the catalog's times and verify
   verdicts; core/prune_files.py sorts every other file (leftovers, work in progress, not ours).
3. The plan is stored on the run (details.plan, .leftovers, .foreign) before anything is deleted.
4. Apply: mark the planned backups (details.pruning), delete artifact then manifest, stamp pruned_at,
   in batches; then the leftovers. Finally the storage is listed again: a deleted key still listed fails
   the run (retention that silently does nothing is how disks fill).
Whatever the plan says, no key that a backup not being pruned (kept, running) names is ever deleted: a
planned backup that names one is left out (and planned again next time), and such a leftover is not deleted.
`kill_point` names each instant between two steps, where the kill-anywhere test (tests/test_prune_kill.py)
SIGKILLs the CLI; the next prune then finishes the work.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from openwatch_backup.catalog.prune_store import BackupRow, PruneStore
from openwatch_backup.core.naming import artifact_key
from openwatch_backup.core.prune_files import FileReport, Repair, RunFiles, StoredFile, classify_files, plan_repairs
from openwatch_backup.core.retention import FAMILY_OF_KIND, ArtifactRecord, PrunePlan, plan_retention
from openwatch_backup.errors import StorageError, StorageUnreachable
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.families import list_families
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.prune_offsite import (
    RemoteResult,
    apply_remote,
    check_remote_gone,
    complete_marked,
    delete_local_only,
    delete_remote_keys,
    local_hold,
    named_keys,
    remote_records,
    s3_live,
    unfinished,
)
from openwatch_backup.operations.retention_policy import effective_values, retention_config

ARTIFACT_KINDS = tuple(FAMILY_OF_KIND)
BATCH = 5000  # backups deleted between two catalog updates (a crash in between is repaired)


@dataclass(frozen=True)
class _State:
    now: datetime
    rows: list[BackupRow]
    files: list[StoredFile]
    runs: list[RunFiles]
    offsite: bool  # S3 is configured: the catalog's S3 copies count (holds, the copy that stays)
    remote: set[str] | None  # keys listed in S3 (None: not configured, or the listing failed)
    remote_error: StorageError | None = None  # why the listing failed


def _artifact_key(row: BackupRow) -> str | None:
    return artifact_key(row.artifact) if row.artifact else None


def _named_elsewhere(runs: list[RunFiles], leaving: set[str]) -> set[str]:
    """Keys that runs staying in storage name: successful unpruned backups and runs under way, except `leaving`
    (the backups this prune takes). Nothing in this set is deleted, whatever the plan says."""
    return {key for run in runs if run.run_id not in leaving and not run.pruned
            and (run.status in ("succeeded", "queued", "running")) for key in run.keys}


def _load(ctx: OperationContext, store: PruneStore) -> _State:
    now, rows = store.load(ARTIFACT_KINDS)
    files = [StoredFile(o.key, o.size) for o in list_families(ctx.storage)]
    runs = [RunFiles(r.run_id, r.status, _artifact_key(r), r.in_progress, r.pruned, r.pruning) for r in rows]
    # A listing that fails is never "no backups": the S3 plan is skipped (nothing is deleted there) and run_prune
    # reports the error; the local plan still runs from the catalog's copy states.
    remote: set[str] | None = None
    try:
        remote = {o.key for o in list_families(ctx.offsite)} if ctx.offsite is not None else None
    except StorageError as exc:
        return _State(now, rows, files, runs, True, None, exc)
    return _State(now, rows, files, runs, ctx.offsite is not None, remote)


def _records(state: _State) -> tuple[list[ArtifactRecord], list[str]]:
    """Successful, unpruned backups as the planner sees them; a backup whose artifact is gone is not verified."""
    present = {f.key for f in state.files}
    records, warnings = [], []
    for row, run in zip(state.rows, state.runs, strict=True):
        if row.pruned or row.pruning is not None or row.status != "succeeded" or row.local_state == "deleted":
            continue  # pruned, being pruned, or only its S3 copy is left (the off-site plan judges that)
        keys = tuple(k for k in run.keys if k in present)
        intact = bool(run.keys) and len(keys) == len(run.keys)
        if not intact:
            warnings.append(f"{row.kind} backup {row.run_id[:8]} is recorded as succeeded but "
                            f"{run.keys[0] if run.keys else 'its artifact'} or its manifest is missing")
        hold = local_hold(row) if state.offsite else ""
        records.append(ArtifactRecord(row.run_id, row.kind, row.created_at, row.status, row.verified and intact,
                                      row.pinned, row.size, keys, hold, row.set_id or ""))
    return records, warnings


def _manifest_run(ctx: OperationContext) -> Any:
    def read(key: str) -> str | None:
        try:
            run_id = json.loads(ctx.storage.read_bytes(key)).get("run_id")
        except (StorageError, ValueError, UnicodeDecodeError, AttributeError):
            return None  # unreadable: treated as not ours, never deleted
        return str(run_id) if isinstance(run_id, str) else None
    return read


def _delete(ctx: OperationContext, key: str, deleted: list[str]) -> None:
    try:
        ctx.storage.delete(key)
    except OSError as exc:
        raise StorageError(f"cannot delete {ctx.storage.location(key)} ({exc.strerror or exc}); fix its "
                           "permissions, then run `openwatch-backup prune --apply` again") from exc
    deleted.append(key)
    kill_point(f"prune:deleted:{len(deleted)}")


def _repair(ctx: OperationContext, store: PruneStore, state: _State, repairs: list[Repair], report: FileReport,
            deleted: list[str], named: set[str], remote: RemoteResult) -> None:
    rows = {r.run_id: r for r in state.rows}
    for repair in repairs:
        if repair.action == "release":
            store.release([repair.run_id])
            kill_point("prune:repair-recorded")
            continue
        for key in repair.delete_keys:
            if key not in named:
                _delete(ctx, key, deleted)
        row = rows[repair.run_id]
        storages: tuple[str, ...] = ("local",)
        if state.offsite and s3_live(row):  # the backup's last copy was its S3 one
            if state.remote is None:
                continue  # the bucket did not answer: finished by a prune that reaches it
            delete_remote_keys(ctx, named_keys(row), remote)
            storages = ("local", "s3")
        store.mark_pruned([repair.run_id], storages)
        kill_point("prune:repair-recorded")
    complete_marked(ctx, store, unfinished(state.rows), {f.key for f in state.files}, state.remote,
                    lambda key: _delete(ctx, key, deleted) if key not in named else None, remote)
    for note in report.stale:
        if note.key not in named:
            _delete(ctx, note.key, deleted)


def _apply(ctx: OperationContext, store: PruneStore, run_id: uuid.UUID, plan: PrunePlan, report: FileReport,
           runs: list[RunFiles], deleted: list[str], s3_stays: set[str]) -> tuple[list[str], list[str]]:
    """Delete what the plan says; returns the backups whose local copy was deleted (a backup pinned meanwhile is
    skipped) and warnings about planned deletes left out because another run names their files. A backup in
    `s3_stays` keeps its S3 copy: only its local files go, and it is not pruned."""
    local_only = [d for d in plan.deletes if d.run_id in s3_stays]
    plan = replace(plan, decisions=tuple(d for d in plan.decisions if d.run_id not in s3_stays))
    marked = set(store.mark_pruning([d.run_id for d in plan.deletes], run_id))
    kill_point("prune:marked")
    chosen = [d for d in plan.deletes if d.run_id in marked]
    # Judged after marking, so that a backup pinned meanwhile (not marked) counts as one that stays.
    named = _named_elsewhere(runs, {d.run_id for d in [*chosen, *local_only]})
    shared = [d for d in chosen if not named.isdisjoint(d.keys)]
    if shared:
        store.release([d.run_id for d in shared])  # a kill before this: the next prune's repair releases them
        chosen = [d for d in chosen if named.isdisjoint(d.keys)]
    warnings = [f"{d.kind} backup {d.run_id[:8]} was planned for deletion but {sorted(named.intersection(d.keys))[0]} "
                "is named by a backup that stays: not deleted" for d in shared]
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start:start + BATCH]
        for decision in batch:
            for key in decision.keys:  # the artifact first: a crash leaves a marked row with its manifest
                _delete(ctx, key, deleted)
        store.mark_pruned([d.run_id for d in batch])
        kill_point("prune:batch-recorded")
    taken = [d.run_id for d in chosen]
    for decision in local_only:
        if not named.isdisjoint(decision.keys):
            warnings.append(f"{decision.kind} backup {decision.run_id[:8]}'s local copy was planned for deletion but "
                            f"{sorted(named.intersection(decision.keys))[0]} is named by a backup that stays: not "
                            "deleted")
        elif delete_local_only(store, run_id, decision, lambda key: _delete(ctx, key, deleted)):
            taken.append(decision.run_id)
    for note in report.leftovers:
        if note.key not in named:
            _delete(ctx, note.key, deleted)
    return taken, warnings


def _check_gone(ctx: OperationContext, deleted: list[str]) -> None:
    still = sorted(set(deleted) & {o.key for o in list_families(ctx.storage)})
    if still:
        raise StorageError(f"{len(still)} file(s) prune deleted are still in storage (first: {still[0]}); "
                           "the storage did not delete them")


def _plan_details(apply: bool, values: dict[str, Any], plan: PrunePlan, report: FileReport, repairs: list[Repair],
                  warnings: list[str], remote: PrunePlan | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "apply": apply, "policy": values, "planned_at": plan.now.isoformat(),
        "plan": [d.as_dict() for d in plan.decisions],
        "leftovers": [n.as_dict() for n in report.leftovers], "foreign": [n.as_dict() for n in report.foreign],
        "left_alone": [n.as_dict() for n in report.left_alone], "stale": [n.as_dict() for n in report.stale],
        "repairs": [r.as_dict() for r in repairs], "warnings": [*plan.warnings, *warnings],
    }
    if remote is not None:  # the off-site copies' own plan (same shape; `plan` is the local one)
        details["s3_plan"] = [d.as_dict() for d in remote.decisions]
        details["warnings"] += [f"s3: {w}" for w in remote.warnings]
    return details


def _location_repairs(state: _State) -> list[Repair]:
    """What a dry run shows of the copies a stopped prune began to delete (an apply finishes them)."""
    return [Repair(row.run_id, f"complete {storage}", named_keys(row),
                   f"prune {((row.pruning_local if storage == 'local' else row.pruning_s3) or '')[:8]} stopped while "
                   f"deleting the {storage} copy: what is left of it is deleted (all there: planned again)")
            for row, storage in unfinished(state.rows)]


def _remote_plan(state: _State, values: dict[str, Any]) -> tuple[PrunePlan | None, list[str]]:
    if state.remote is None:
        return None, []
    records, warnings = remote_records(state.rows, state.remote)
    return plan_retention(records, retention_config(values, remote=True), state.now), warnings


def _summary(apply: bool, plan: PrunePlan, report: FileReport, pruned: list[str], deleted: list[str],
             sizes: dict[str, int], repaired: list[Repair], remote_plan: PrunePlan | None,
             remote: RemoteResult) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "apply": apply, "backups_kept": len(plan.keeps), "backups_to_delete": len(plan.deletes),
        "backups_deleted": len(pruned), "bytes_to_free": plan.bytes_to_free + sum(n.size for n in report.leftovers),
        "bytes_freed": sum(sizes.get(k, 0) for k in deleted), "leftovers": len(report.leftovers),
        "foreign": len(report.foreign), "repaired": len(repaired), "files_deleted": len(deleted),
        "over_budget_bytes": plan.over_budget_bytes,
    }
    if remote_plan is not None:
        summary["s3"] = {"copies_kept": len(remote_plan.keeps), "copies_to_delete": len(remote_plan.deletes),
                         "copies_deleted": len(remote.copies), "objects_deleted": len(remote.deleted),
                         "bytes_to_free": remote_plan.bytes_to_free}
    return summary


def run_prune(ctx: OperationContext, run_id: uuid.UUID, apply: bool, store: PruneStore,
              overrides: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Carry out a queued prune run; returns its summary, None when another delivery already claimed it."""
    kill_point("prune:queued")
    if not ctx.recorder.claim(run_id):
        return None
    kill_point("prune:claimed")
    deleted: list[str] = []
    remote = RemoteResult()
    try:
        values, notes = effective_values(ctx.settings, overrides())
        config = retention_config(values)
        ctx.recorder.progress(run_id, "repairing")
        state = _load(ctx, store)
        sizes = {f.key: f.size for f in state.files}
        repairs = plan_repairs(state.files, state.runs) + _location_repairs(state)
        report = classify_files(state.files, state.runs, _manifest_run(ctx))
        repaired: list[Repair] = []
        if apply and (repairs or report.stale):
            ctx.recorder.progress(run_id, "repairing", details={"repairs": [r.as_dict() for r in repairs]})
            kill_point("prune:repairs-recorded")
            repairing = {r.run_id for r in repairs}
            whole = [r for r in repairs if not r.action.startswith("complete ")]
            _repair(ctx, store, state, whole, report, deleted, _named_elsewhere(state.runs, repairing), remote)
            state = _load(ctx, store)
            sizes.update((f.key, f.size) for f in state.files)
            report = classify_files(state.files, state.runs, _manifest_run(ctx))
            repaired, repairs = repairs, []
        ctx.recorder.progress(run_id, "planning")
        records, warnings = _records(state)
        plan = plan_retention(records, config, state.now)
        remote_plan, remote_warnings = _remote_plan(state, values)
        if state.remote_error is not None:
            remote_warnings.append(f"s3 copies were not judged: {state.remote_error.message}; local files whose "
                                   "off-site copy is not verified stay")
        details = _plan_details(apply, values, plan, report, repairs, [*notes, *warnings, *remote_warnings],
                                remote_plan)
        pruned: list[str] = []
        skipped: list[str] = []
        if apply:
            ctx.recorder.progress(run_id, "deleting", details=details)  # the intent, stored before any delete
            kill_point("prune:plan-recorded")
            rows = {r.run_id: r for r in state.rows}
            if remote_plan is not None:  # S3 first: a local file whose S3 copy goes now is the backup's last copy
                leaving = {d.run_id for d in remote_plan.deletes}
                stays = {k for r in state.rows if s3_live(r) and r.run_id not in leaving and not r.pruned
                         for k in named_keys(r)}
                remote = apply_remote(ctx, store, run_id, remote_plan.deletes, rows, stays)
                skipped += remote.skipped
            s3_stays = {r.run_id for r in state.rows if s3_live(r) and r.run_id not in remote.copies} \
                if state.offsite else set()
            pruned, local_skipped = _apply(ctx, store, run_id, plan, report, state.runs, deleted, s3_stays)
            skipped += local_skipped
            _check_gone(ctx, deleted)
            check_remote_gone(ctx, remote.deleted)
            kill_point("prune:checked")
            if remote.error is not None:
                raise remote.error
        if state.remote_error is not None and not isinstance(state.remote_error, StorageUnreachable):
            raise state.remote_error  # refused (AccessDenied, no such bucket, credentials): the operator must act
        if apply:
            # The plan is stored already (a multi-megabyte plan is written once); add what the apply left out.
            details = {"warnings": [*details["warnings"], *skipped]} if skipped else {}
        summary = _summary(apply, plan, report, pruned, deleted, sizes, repaired, remote_plan, remote)
        ctx.recorder.succeed(run_id, location=None, size=None, sha256=None,
                             details={**details, "deleted": deleted, "s3_deleted": remote.deleted,
                                      "summary": summary, "repaired": [r.as_dict() for r in repaired]})
        return summary
    except BaseException as exc:
        with contextlib.suppress(Exception):  # what was deleted before the failure; record_failure logs the rest
            ctx.recorder.add_details(run_id, {"deleted": deleted, "s3_deleted": remote.deleted})
        record_failure(ctx, run_id, exc)
        raise
