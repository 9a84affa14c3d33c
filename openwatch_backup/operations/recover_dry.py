"""`recover --dry-run`: the plan from the store's manifests alone, writing nothing anywhere.

On a new host there is no catalog yet, and making one is a change; so the dry run reads the manifests (as
`catalog rebuild` would), holds their runs in memory, and lets recover_plan.choose_plan pick from them.
"""

from __future__ import annotations

import dataclasses
import typing

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import RunRecorder
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.errors import ManifestError, RunNotFound
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.rebuild import list_manifests, read_manifest_at, row_of_manifest
from openwatch_backup.operations.recover_plan import Plan, choose_plan
from openwatch_backup.storage.base import Storage


class ManifestRuns:
    """The two reads choose_plan makes of a recorder (list, get), over runs made from manifests."""

    def __init__(self, runs: list[BackupRun]) -> None:
        self._runs = sorted(runs, key=lambda r: r.created_at, reverse=True)

    def list(self, *, limit: int = 50, kind: str | None = None, status: str | None = None) -> list[BackupRun]:
        return [r for r in self._runs if (kind is None or r.kind == kind) and (status is None or r.status == status)
                ][:limit]

    def get(self, ref: str) -> BackupRun:
        found = [r for r in self._runs if str(r.id).startswith(ref.strip().lower())]
        if len(found) != 1:
            raise RunNotFound(f"no single backup in the store's manifests starts with {ref!r} "
                              f"({len(found)} do): give more of its id")
        return found[0]


def manifest_runs(storage: Storage, where: CopyStorage) -> tuple[ManifestRuns, list[str]]:
    """The runs the store's readable manifests describe, and one line per manifest that cannot be read."""
    runs, unreadable = [], []
    for key in list_manifests(storage, where):
        try:
            manifest = read_manifest_at(storage, key)
        except ManifestError as exc:
            unreadable.append(f"{key}: {exc.message}")
            continue
        row = row_of_manifest(storage, manifest)
        row.setdefault("parent_id", None)
        runs.append(BackupRun(**row, pruned_at=None))
    return ManifestRuns(runs), unreadable


def dry_run_plan(ctx: OperationContext, storage: Storage, where: CopyStorage, *, backup_ref: str | None,
                 config_ref: str | None, skip_config: bool, volumes: bool) -> tuple[Plan, list[str]]:
    runs, unreadable = manifest_runs(storage, where)
    planning = dataclasses.replace(ctx, recorder=typing.cast(RunRecorder, runs))
    plan = choose_plan(planning, backup_ref=backup_ref, config_ref=config_ref, skip_config=skip_config,
                       volumes=volumes, verify=False)
    return plan, unreadable


