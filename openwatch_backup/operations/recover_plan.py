"""What `recover` restores: the newest full backup that verifies, the config bundle that belongs with it, and the
newest snapshot of each volume taken with it.

"Belongs with it": the bundle of the same nightly set (service/sets.py); failing that, the newest bundle taken
at or before the dump (bundles are taken only when the configuration changed, so that one was in effect), or,
when none is that old, the oldest one taken after. Volumes follow the same rule, per volume.
A candidate the operator names (`--backup RUN`, `--config RUN`) is taken as named, after a check of its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.errors import RestoreRefused, RunNotFound
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.presence import is_present
from openwatch_backup.operations.read_source import choose_copy
from openwatch_backup.operations.remote_verify import located
from openwatch_backup.operations.verify import quick_verify
from openwatch_backup.operations.volume_restore import snapshot_volume
from openwatch_backup.secrets.bundle_inputs import ENV_MEMBER

SCAN = 200  # candidates looked at, newest first


@dataclass
class Plan:
    backup: BackupRun
    bundle: BackupRun | None
    volumes: dict[str, BackupRun] = field(default_factory=dict)  # volume name -> snapshot run
    passed_over: list[str] = field(default_factory=list)  # newer full backups that did not verify, with why

    def as_details(self) -> dict[str, Any]:
        return {"backup": str(self.backup.id), "config": str(self.bundle.id) if self.bundle else None,
                "volumes": {name: str(run.id) for name, run in self.volumes.items()},
                "passed_over": self.passed_over}


def _present(ctx: OperationContext, kind: BackupKind) -> list[BackupRun]:
    return [r for r in ctx.recorder.list(limit=SCAN, kind=kind.value, status=RunStatus.SUCCEEDED.value)
            if is_present(r)]


def _named(ctx: OperationContext, ref: str, kind: BackupKind, option: str) -> BackupRun:
    run = ctx.recorder.get(ref)
    if run.kind != kind.value or run.status != RunStatus.SUCCEEDED.value or not is_present(run):
        raise RestoreRefused(f"{option} {ref}: run {run.id} is a {run.status} {run.kind} run, not a present "
                             f"{kind.value} backup; see `openwatch-backup list --kind {kind.value}`")
    return run


def verify_failure(ctx: OperationContext, run: BackupRun, copy: CopyStorage | None = None) -> str | None:
    """Why the copy recover would read does not verify (quick: size, sha256, manifest), or None when it does."""
    reading = choose_copy(ctx, run, copy)
    result, manifest = quick_verify(reading.ctx, run, missing=reading.missing)
    if reading.missing is None and reading.ctx.storage is not ctx.storage:
        result = located(reading.ctx, run, result)
    return None if result.passed and manifest is not None else f"{result.reason}: {result.message}"


def _newest_verified(ctx: OperationContext, passed_over: list[str],
                     check: Callable[[OperationContext, BackupRun], str | None]) -> BackupRun:
    for run in _present(ctx, BackupKind.FULL):
        problem = check(ctx, run)
        if problem is None:
            return run
        passed_over.append(f"{run.id}: {problem}")
    more = f" ({len(passed_over)} did not verify: {passed_over[0]})" if passed_over else ""
    raise RunNotFound(f"no full backup to recover from{more}: check OPENWATCH_BACKUP_S3_BUCKET or --from DIR, "
                      "and `openwatch-backup list --kind full`")


def _with(runs: list[BackupRun], backup: BackupRun) -> BackupRun | None:
    """The run of the backup's set, else the newest taken at or before it, else the oldest taken after it."""
    if backup.parent_id is not None:
        for run in runs:
            if run.parent_id == backup.parent_id:
                return run
    before = [r for r in runs if _at(r) <= _at(backup)]
    if before:
        return max(before, key=_at)
    return min(runs, key=_at) if runs else None


def _at(run: BackupRun) -> datetime:
    return run.created_at


def choose_plan(ctx: OperationContext, *, backup_ref: str | None, config_ref: str | None, skip_config: bool,
                volumes: bool, copy: CopyStorage | None = None, verify: bool = True) -> Plan:
    """verify False (the dry run, which reads no file): the newest full backup, verified when recover runs."""
    passed_over: list[str] = []
    if backup_ref:
        backup = _named(ctx, backup_ref, BackupKind.FULL, "--backup")
    else:
        backup = _newest_verified(ctx, passed_over, lambda c, run: verify_failure(c, run, copy) if verify else None)
    bundle: BackupRun | None = None
    if config_ref:
        bundle = _named(ctx, config_ref, BackupKind.CONFIG, "--config")
    elif not skip_config:
        bundle = _with(_present(ctx, BackupKind.CONFIG), backup)
        if bundle is None:
            raise RunNotFound("no config bundle to recover the configuration from: name one with --config RUN, or "
                              "pass --skip-config to restore the database alone (OpenWatch then needs its .env, "
                              "with the same OPENWATCH_MASTER_KEY, from elsewhere)")
    chosen: dict[str, BackupRun] = {}
    if volumes:
        by_volume: dict[str, list[BackupRun]] = {}
        for run in _present(ctx, BackupKind.VOLUME):
            by_volume.setdefault(snapshot_volume(run), []).append(run)
        for name in sorted(by_volume):
            snapshot = _with(by_volume[name], backup)
            if snapshot is not None:
                chosen[name] = snapshot
    return Plan(backup=backup, bundle=bundle, volumes=chosen, passed_over=passed_over)


def placements(bundle: BackupRun, folder: Path) -> list[tuple[str, str]]:
    """(restored path, where it belongs on the host) for each path the bundle lists, then openwatch.env."""
    paths = [str(p) for p in bundle.details.get("paths") or []]
    moves = [(str(folder / p.lstrip("/")), p) for p in paths]
    if bundle.details.get("env_snapshot"):
        moves.append((str(folder / ENV_MEMBER), "OpenWatch's .env (the OPENWATCH_* settings the worker ran with)"))
    return moves
