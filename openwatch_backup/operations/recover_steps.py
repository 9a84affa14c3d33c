"""The steps of a recover run, recorded as they finish, so a second `recover` continues where the first stopped.

Each finished step is stored on the run (details.steps.NAME: its result and seconds) in the same update that
moves the phase on. The restores a step starts are child runs, recorded on the run (details.children) before
they start (decision 11). A new recover run resumes the newest recover run that ended without succeeding
(failed, cancelled, or abandoned: a kill) when it was asked for the same source and choices: it copies the
finished steps, and counts a step whose child run succeeded as finished even when the kill came before the
step was recorded. What a dead child left half done is undone here: a config restore's `.partial-` folder,
a half-written new volume. (A database restore's scratch database is the sweeper's: operations/sweep.py.)
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import BackupError, RunNotFound
from openwatch_backup.operations.config_restore import STAGING_MARK
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point

KIND = "recover"
STEPS = ("catalog", "plan", "config", "database", "migrate", "checks", "volumes")
KEY = "steps"
CHILDREN = "children"  # {"config": run id, "database": run id, "volumes": {name: run id}}
RESUMES = "resumes"
_MATCHING = ("source", "backup", "config", "skip_config", "volumes")  # a resumed run was asked the same


@dataclass
class StepLog:
    ctx: OperationContext
    run_id: uuid.UUID
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, Any] = field(default_factory=dict)
    resumed: set[str] = field(default_factory=set)  # the steps a resumed run had finished

    def finished(self, name: str) -> dict[str, Any] | None:
        return self.done.get(name)

    def start(self, name: str) -> float:
        self.ctx.recorder.progress(self.run_id, f"recover_{name}")
        kill_point(f"recover_{name}")
        return time.monotonic()

    def record(self, name: str, started: float, result: dict[str, Any]) -> dict[str, Any]:
        result = {**result, "seconds": round(time.monotonic() - started, 3)}
        self.done[name] = result
        self.ctx.recorder.progress(self.run_id, f"recover_{name}_done", details={KEY: self.done})
        kill_point(f"recover_{name}_done")
        return result

    def child(self, name: str, child_id: uuid.UUID, volume: str | None = None) -> None:
        """Recorded before the child starts: a resumed run looks at it."""
        if volume is None:
            self.children[name] = str(child_id)
        else:
            self.children.setdefault(name, {})[volume] = str(child_id)
        self.ctx.recorder.progress(self.run_id, f"recover_{name}", details={CHILDREN: self.children})


def resumable(ctx: OperationContext, request: dict[str, Any], exclude: uuid.UUID) -> BackupRun | None:
    """The recover run to continue: the newest one, when it ended unsuccessfully and was asked the same."""
    runs = [r for r in ctx.recorder.list(limit=5, kind=KIND) if r.id != exclude]
    if not runs:
        return None
    newest = runs[0]
    if newest.status not in (RunStatus.FAILED.value, RunStatus.CANCELLED.value, RunStatus.ABANDONED.value):
        return None
    asked = newest.details.get("request") or {}
    return newest if all(asked.get(k) == request.get(k) for k in _MATCHING) else None


def _child(ctx: OperationContext, ref: Any) -> BackupRun | None:
    if not ref:
        return None
    try:
        return ctx.recorder.get(str(ref))
    except RunNotFound:
        return None


def carried_over(ctx: OperationContext, previous: BackupRun, log: StepLog) -> None:
    """Copy the previous run's finished steps into log; a step whose child succeeded counts as finished."""
    done = dict(previous.details.get(KEY) or {})
    children = previous.details.get(CHILDREN) or {}
    for name in ("config", "database"):
        child = _child(ctx, children.get(name))
        if name in done or child is None:
            continue
        if child.status == RunStatus.SUCCEEDED.value or (name == "database" and child.details.get("swap_completed")):
            done[name] = {"run": str(child.id), "seconds": 0.0, "from_child": True, "folder": _folder_of(child),
                          "kept_database": _kept_of(child)}
        elif name == "config":
            _remove_partial_folder(child)
    if "volumes" not in done:
        for volume, ref in (children.get("volumes") or {}).items():
            child = _child(ctx, ref)
            if child is not None and child.status == RunStatus.SUCCEEDED.value:
                log.children.setdefault("volumes", {})[volume] = str(child.id)  # restored: not again
            elif child is not None:
                _remove_half_volume(child)
    log.done = {name: result for name, result in done.items() if name in STEPS}
    log.resumed = set(log.done)


def _folder_of(child: BackupRun) -> str | None:
    return (child.details.get("request") or {}).get("to")


def _kept_of(child: BackupRun) -> str | None:
    """The database a (database) restore child's swap kept: recorded when it succeeded, or by the sweeper."""
    for key in ("restore", "swap_completed"):
        kept = (child.details.get(key) or {}).get("kept_database")
        if kept:
            return str(kept)
    return None


def _remove_partial_folder(child: BackupRun) -> None:
    staging = Path(str(child.details.get("restoring_to") or ""))
    if child.status != RunStatus.RUNNING.value and STAGING_MARK in staging.name and staging.is_dir():
        shutil.rmtree(staging, ignore_errors=True)


def _remove_half_volume(child: BackupRun) -> None:
    """A volume the dead child recorded creating (volume_restore.py) holds part of the snapshot at most."""
    name = child.details.get("creating_volume")
    if child.status == RunStatus.RUNNING.value or not name:
        return
    from openwatch_backup.docker_api import docker_client, docker_errors, volume_exists

    try:
        client = docker_client()
        if volume_exists(client, str(name)):
            with docker_errors(f"removing the half-restored volume {name}"):
                client.volumes.get(str(name)).remove(force=True)
    except BackupError:
        pass  # then the volume step refuses with its own line (the volume exists), naming it
