"""The volume-loss drill (kind drill_volume): the guide's "Volume loss: restore volume tarball", measured.

The newest verified volume snapshot is restored through the Docker API into a scratch volume
(`owbscratch_voldrill_<run>`), read back with tar in a helper container, and compared with the snapshot: the
member count with the manifest's, the tar stream's bytes with the manifest's, the file data bytes with what was
written. The time from the verify to the end of the comparison is the recovery time, set against
OPENWATCH_BACKUP_VOLUME_RTO_MINUTES. The scratch volume is recorded on the run before it is created and removed
in every outcome; after a kill the sweeper removes it (operations/scratch_volumes.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.artifact_stream import UnreadableArtifact
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.core.naming import artifact_key
from openwatch_backup.core.tar_members import TarCounter, _size
from openwatch_backup.docker_api import ExecStream, docker_client, docker_errors, helper_container, remove_container
from openwatch_backup.docker_api import volume_users as users_of
from openwatch_backup.errors import BackupError, RestoreFailed, RestoreRefused, RunNotFound
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.presence import is_present
from openwatch_backup.operations.rto import DRILL_VOLUME, RTO_KEY
from openwatch_backup.operations.scratch_volumes import (
    KEY,
    create_scratch_volume,
    remove_scratch_volume,
    scratch_volume_name,
)
from openwatch_backup.operations.verify import quick_verify
from openwatch_backup.operations.volume_restore import _tar_chunks, snapshot_volume
from openwatch_backup.operations.volume_snapshot import HELPER_MOUNT, local_image

if TYPE_CHECKING:
    import docker

PURPOSE = "voldrill"
SCAN = 50


class DataCounter(TarCounter):
    """TarCounter that also sums the data bytes of regular files (what a volume holds, whatever tar pads)."""

    def __init__(self, source: Any) -> None:
        super().__init__(source)
        self.data_bytes = 0

    def _take(self, header: bytes) -> None:
        if any(header) and header[156:157] in (b"0", b"\0", b"7"):
            self.data_bytes += _size(header[124:136])
        super()._take(header)


class _Chunk:
    """A one-chunk source for counting chunks as they pass (TarCounter reads; put_archive pulls chunks)."""

    def __init__(self) -> None:
        self.data = b""

    def read(self, _size: int = -1) -> bytes:
        data, self.data = self.data, b""
        return data


def counted(chunks: Iterable[bytes], counter: DataCounter, source: _Chunk) -> Iterator[bytes]:
    """The chunks, passed on unchanged, each counted on the way (counter reads from source)."""
    for chunk in chunks:
        source.data = chunk
        counter.read(len(chunk))
        yield chunk


def newest_verified_snapshot(ctx: OperationContext) -> BackupRun:
    for run in ctx.recorder.list(limit=SCAN, kind=BackupKind.VOLUME.value, status=RunStatus.SUCCEEDED.value):
        if is_present(run) and ctx.recorder.list(limit=1, kind="verify", parent_id=run.id,
                                                 status=RunStatus.SUCCEEDED.value):
            return run
    raise RunNotFound("no verified volume snapshot to drill with: take one (`openwatch-backup backup --kind volume "
                      "--volume NAME`) and verify it (`openwatch-backup verify RUN`)")


def _read_back(client: docker.DockerClient, image: str, volume: str) -> DataCounter:
    helper = helper_container(client, image, volume, HELPER_MOUNT, read_only=True)
    try:
        with docker_errors(f"starting a helper container from {image}"):
            helper.start()
        stream = ExecStream(helper, ["tar", "-cf", "-", "-C", HELPER_MOUNT, "."], f"reading scratch volume {volume}")
        counter = DataCounter(stream)
        try:
            while counter.read(1 << 20):
                pass
        finally:
            code = stream.close()
        if code != 0:
            raise RestoreFailed(f"reading the scratch volume {volume} back exited {code}")
        return counter
    finally:
        remove_container(helper)


def run_volume_drill(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun) -> bool | None:
    """Carry out a queued volume drill. True when it passed (contents match, within the target)."""
    if not ctx.recorder.claim(run_id):
        return None
    scratch = scratch_volume_name(PURPOSE, run_id)
    client: docker.DockerClient | None = None
    try:
        started = time.monotonic()
        volume = snapshot_volume(backup)
        ctx.recorder.progress(run_id, "verifying")
        result, manifest = quick_verify(ctx, backup)
        if not result.passed or manifest is None or manifest.volume is None:
            raise RestoreRefused(f"volume snapshot {backup.id} failed verification ({result.reason}): "
                                 f"{result.message}; nothing was restored")
        client = docker_client()
        image = local_image(client, users_of(client, volume), ctx.settings.db_container, volume)
        ctx.recorder.progress(run_id, "creating", details={KEY: [scratch]})  # recorded before it exists
        create_scratch_volume(client, scratch, run_id)
        helper = helper_container(client, image, scratch, HELPER_MOUNT, read_only=False)
        try:
            kill_point("volume_drill_writing")
            ctx.recorder.progress(run_id, "writing")
            source = _Chunk()
            written = DataCounter(source)
            with docker_errors(f"writing scratch volume {scratch}"):
                chunks = counted(_tar_chunks(ctx, artifact_key(manifest.artifact), manifest.sha256), written, source)
                if not helper.put_archive(HELPER_MOUNT, chunks):
                    raise RestoreFailed(f"the Docker API refused the archive for scratch volume {scratch}")
        except UnreadableArtifact as exc:
            raise RestoreFailed(f"{manifest.artifact}: {exc}") from None
        finally:
            remove_container(helper)
        restored = time.monotonic() - started
        ctx.recorder.progress(run_id, "comparing")
        back = _read_back(client, image, scratch)
        seconds = time.monotonic() - started
        expected = manifest.volume
        compare = {"members": back.members, "manifest_members": expected.members, "tar_bytes": written.bytes,
                   "manifest_tar_bytes": expected.tar_bytes, "data_bytes": back.data_bytes,
                   "written_data_bytes": written.data_bytes}
        target = ctx.settings.volume_rto_minutes * 60
        details: dict[str, Any] = {RTO_KEY: {
            "scenario": "volume_loss", "backup_run": str(backup.id), "volume": volume, "scratch_volume": scratch,
            "seconds": round(seconds, 3), "restore_seconds": round(restored, 3), "target_seconds": target,
            "within": seconds <= target, "compare": compare}}
        mismatch = [f"{name} {compare[name]} != {compare[other]}" for name, other in (
            ("members", "manifest_members"), ("tar_bytes", "manifest_tar_bytes"),
            ("data_bytes", "written_data_bytes")) if compare[name] != compare[other]]
        if mismatch:
            details[RTO_KEY].pop("seconds")  # not a recovery: no measurement
            _finish_removed(client, scratch, details)
            ctx.recorder.finish_unsuccessfully(
                run_id, RunStatus.FAILED, "volume_mismatch", f"the volume restored from snapshot {backup.id} differs "
                f"from its manifest ({'; '.join(mismatch)}): take a new snapshot and verify it", details)
            return False
        _finish_removed(client, scratch, details)
        if seconds > target:
            ctx.recorder.finish_unsuccessfully(
                run_id, RunStatus.FAILED, "rto_exceeded", f"volume restore took {seconds:.1f} s, over the "
                f"{ctx.settings.volume_rto_minutes:g} min objective (OPENWATCH_BACKUP_VOLUME_RTO_MINUTES)", details)
            return False
        ctx.recorder.succeed(run_id, location=backup.artifact_location, size=backup.size_bytes, sha256=backup.sha256,
                             details=details)
        return True
    except BaseException as exc:
        if client is not None:
            with suppress(BackupError):  # the sweeper retries what this could not remove (still recorded)
                if remove_scratch_volume(client, scratch):
                    ctx.recorder.add_details(run_id, {KEY: []})
        record_failure(ctx, run_id, exc)
        raise


def _finish_removed(client: docker.DockerClient, scratch: str, details: dict[str, Any]) -> None:
    """Remove the scratch volume before the run ends; what cannot be removed stays recorded for the sweeper."""
    details[KEY] = [] if remove_scratch_volume(client, scratch) else [scratch]


__all__ = ["DRILL_VOLUME", "newest_verified_snapshot", "run_volume_drill"]
