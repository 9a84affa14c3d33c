"""The full-system drill (kind drill_host): the guide's "Full host failure: full DR from scratch", measured.

`recover` runs from the off-site store into scratch targets: a scratch database (`owbscratch_hostdrill_<run>`,
dropped by the sweeper by name once the run has ended), a scratch folder for the configuration
(`<tmp>/owbscratch_hostdrill_<run>`) and one scratch volume per volume (`owbscratch_hostdrill_<run>_<name>`).
All of them are recorded on the run before recover starts (decision 11) and removed in every outcome; after a
kill the sweeper removes what the run recorded. The total time recover took is the recovery time, set against
OPENWATCH_BACKUP_HOST_RTO_MINUTES.

The steps are recover's own (operations/recover.py: catalog from the bucket's manifests, plan, config, database,
checks, volumes), each read from the off-site copy, so the drill proves what a new host would have.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import BackupError
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.rto import RTO_KEY
from openwatch_backup.operations.scratch_volumes import scratch_volume_name
from openwatch_backup.source.connection import connect
from openwatch_backup.source.scratch import drop_database, scratch_name

PURPOSE = "hostdrill"
SCRATCH_KEY = "scratch"  # details[SCRATCH_KEY]: {"database", "folder", "volumes": {original: scratch}}


@dataclass(frozen=True)
class ScratchTargets:
    database: str
    folder: Path
    volumes: dict[str, str] = field(default_factory=dict)  # original name -> scratch name

    def as_details(self) -> dict[str, Any]:
        return {"database": self.database, "folder": str(self.folder), "volumes": dict(self.volumes)}


def scratch_folder_root() -> Path:
    return Path(tempfile.gettempdir())


def scratch_targets(run_id: uuid.UUID, volumes: list[str]) -> ScratchTargets:
    return ScratchTargets(database=scratch_name(PURPOSE, run_id),
                          folder=scratch_folder_root() / f"owbscratch_{PURPOSE}_{run_id.hex[:12]}",
                          volumes={v: scratch_volume_name(PURPOSE, run_id, v) for v in volumes})


def recover_into_scratch(ctx: OperationContext, run_id: uuid.UUID, targets: ScratchTargets) -> dict[str, Any]:
    """recover (operations/recover.py) from the off-site store into `targets`, never the live database, folder or
    volumes; its summary. Raises recover's own one-line errors."""
    from openwatch_backup.operations.recover import recover_into

    return recover_into(ctx, run_id, database=targets.database, folder=targets.folder, volumes=targets.volumes)


def remove_targets(ctx: OperationContext, recorded: dict[str, Any]) -> list[str]:
    """Drop/remove what a host drill recorded; the names that could not be removed (the sweeper retries)."""
    left = []
    database = str(recorded.get("database") or "")
    if database.startswith(f"owbscratch_{PURPOSE}_") and database != ctx.target.dbname:
        try:
            with connect(ctx.target, ctx.redact) as conn:
                drop_database(conn, database, lock_timeout="10s")
        except BackupError:
            left.append(database)
    folder = Path(str(recorded.get("folder") or ""))
    if folder.name.startswith(f"owbscratch_{PURPOSE}_") and folder.parent == scratch_folder_root():
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            left.append(str(folder))
    volumes = list((recorded.get("volumes") or {}).values())
    if volumes:
        from openwatch_backup.docker_api import docker_client
        from openwatch_backup.operations.scratch_volumes import remove_scratch_volume

        try:
            client = docker_client()
            left += [v for v in volumes if not remove_scratch_volume(client, v)]
        except BackupError:
            left += volumes
    return left


def run_host_drill(ctx: OperationContext, run_id: uuid.UUID, volumes: list[str]) -> bool | None:
    """Carry out a queued host drill. True when recover completed within the target."""
    if not ctx.recorder.claim(run_id):
        return None
    targets = scratch_targets(run_id, volumes)
    recorded = False
    try:
        ctx.recorder.progress(run_id, "recovering", details={SCRATCH_KEY: targets.as_details()})  # intent first
        recorded = True
        kill_point("host_drill_recovering")
        started = time.monotonic()
        summary = recover_into_scratch(ctx, run_id, targets)
        seconds = time.monotonic() - started
        target = ctx.settings.host_rto_minutes * 60
        left = remove_targets(ctx, targets.as_details())
        details: dict[str, Any] = {
            RTO_KEY: {"scenario": "host_failure", "seconds": round(seconds, 3), "target_seconds": target,
                      "within": seconds <= target, "recover": summary},
            SCRATCH_KEY: {**targets.as_details(), "removed": not left, "left": left}}
        if seconds > target:
            ctx.recorder.finish_unsuccessfully(
                run_id, RunStatus.FAILED, "rto_exceeded", f"recover took {seconds:.1f} s, over the "
                f"{ctx.settings.host_rto_minutes:g} min objective (OPENWATCH_BACKUP_HOST_RTO_MINUTES)", details)
            return False
        ctx.recorder.succeed(run_id, location=None, size=None, sha256=None, details=details)
        return True
    except BaseException as exc:
        if recorded:
            with suppress(BackupError, OSError):
                left = remove_targets(ctx, targets.as_details())
                ctx.recorder.add_details(run_id, {SCRATCH_KEY: {**targets.as_details(), "removed": not left,
                                                                "left": left}})
        record_failure(ctx, run_id, exc)
        raise


def sweep_scratch_folders(is_finished_run: Callable[[str], bool]) -> list[str]:
    """Remove the scratch folders of host drills whose run this catalog knows and that is no longer running."""
    removed = []
    for path in sorted(scratch_folder_root().glob(f"owbscratch_{PURPOSE}_*")):
        prefix = path.name.removeprefix(f"owbscratch_{PURPOSE}_")
        if path.is_dir() and not path.is_symlink() and len(prefix) == 12 and is_finished_run(prefix):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed
