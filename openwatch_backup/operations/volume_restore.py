"""Restore a volume snapshot: into a NEW volume (default `NAME_restored_YYYYMMDD_HHMMSS`), or, with --confirm NAME,
over the original volume.

The snapshot is verified first (sha256, size, every tar header: volume_verify.py): a damaged file writes
nothing. The tar then streams from storage through zstd into `put_archive` on a helper container made (never
started) from a local image with the target volume mounted; put_archive keeps owners, modes and links. No image
is pulled: the helper's image is that of a container that mounts the original volume, else the database
container's.

- New volume: refused if it exists. Recorded on the run (`creating_volume`) before it is created, and removed
  again if the restore fails, so a failed restore leaves no half-filled volume.
- In place (--confirm NAME): refused while a running container uses the volume (the line names them: stop
  them first). The service takes a safety snapshot of the volume first; then its contents are removed and the
  snapshot's put in. If that fails, the safety snapshot (named on the run) restores the volume as it was.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.naming import artifact_key
from openwatch_backup.docker_api import (
    docker_client,
    docker_errors,
    helper_container,
    remove_container,
    volume_exists,
    volume_users,
)
from openwatch_backup.errors import RestoreFailed, RestoreRefused
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.read_source import DETAILS_KEY as READ_FROM
from openwatch_backup.operations.read_source import choose_copy
from openwatch_backup.operations.verify import quick_verify
from openwatch_backup.operations.volume_snapshot import HELPER_MOUNT, local_image

if TYPE_CHECKING:
    import docker

# Removes every entry of the mounted volume, dot files included, and nothing outside it.
CLEAR = ["sh", "-c", f"rm -rf {HELPER_MOUNT}/..?* {HELPER_MOUNT}/.[!.]* {HELPER_MOUNT}/*"]


def snapshot_volume(backup: BackupRun) -> str:
    """The volume a snapshot run is of; RestoreRefused for a run of another kind."""
    if backup.kind != BackupKind.VOLUME.value:
        raise RestoreRefused(f"--volume is only for volume snapshots; backup {backup.id} is of kind {backup.kind}")
    return str((backup.details.get("volume") or {}).get("volume") or backup.details["request"]["volume"])


def check_target(client: docker.DockerClient, volume: str, target: str, in_place: bool) -> None:
    """Refusals before anything is recorded or written: a new volume that exists, an original that is missing or
    in use by a running container."""
    if not in_place:
        if volume_exists(client, target):
            raise RestoreRefused(f"volume {target} already exists: name a new one with --into NAME (a restore "
                                 "never writes into an existing volume without --confirm)")
        return
    if not volume_exists(client, volume):
        raise RestoreRefused(f"volume {volume} does not exist: restore into a new volume (drop --confirm)")
    running = sorted(c.name for c, _ in volume_users(client, volume) if c.status == "running")
    if running:
        raise RestoreRefused(f"volume {volume} is in use by running container(s) {', '.join(running)}: stop them "
                             f"first (docker stop {' '.join(running)}), or restore into a new volume (drop "
                             "--confirm); nothing was changed")


def _tar_chunks(ctx: OperationContext, key: str, expected_sha256: str) -> Iterator[bytes]:
    """The snapshot's tar bytes, decompressed as put_archive pulls them; the stored bytes' sha256 is checked at
    the end (the archive was verified just before: this catches a file changed in between)."""
    with ctx.storage.open_reader(key) as raw:
        reader = HashingReader(raw)
        yield from decoded_chunks(reader, wrapper="zstd", gunzip=False)
        reader.drain()
        if reader.hexdigest() != expected_sha256:
            raise RestoreFailed(f"{key} changed while it was restored (its sha256 differs): restore it again")


def run_volume_restore(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun, target: str,
                       in_place: bool, copy: CopyStorage | None = None) -> dict[str, Any] | None:
    """Carry out a queued volume restore run; None when another delivery already claimed it. The snapshot is read
    from the local file while it is there, else its S3 copy (a new host), or from the copy named."""
    if not ctx.recorder.claim(run_id):
        return None
    started = time.monotonic()
    created = False
    client = None
    try:
        volume = snapshot_volume(backup)
        reading = choose_copy(ctx, backup, copy)
        ctx.recorder.progress(run_id, "verifying", details={READ_FROM: reading.copy.value})
        result, manifest = quick_verify(reading.ctx, backup, missing=reading.missing)
        if not result.passed or manifest is None:
            raise RestoreRefused(f"backup {backup.id} failed verification ({result.reason}): {result.message}; "
                                 "nothing was restored")
        client = docker_client()
        check_target(client, volume, target, in_place)  # again: things may have changed since the request
        image = local_image(client, volume_users(client, volume), ctx.settings.db_container, volume)
        if not in_place:
            ctx.recorder.progress(run_id, "creating", details={"creating_volume": target})
            with docker_errors(f"creating volume {target}"):
                client.volumes.create(target, labels={"openwatch-backup.restored-from": str(backup.id)})
            created = True
        else:
            ctx.recorder.progress(run_id, "clearing", details={"clearing_volume": target})
            _clear(client, image, target)
        kill_point("volume_restore_writing")
        ctx.recorder.progress(run_id, "writing")
        helper = helper_container(client, image, target, HELPER_MOUNT, read_only=False)
        try:
            with docker_errors(f"writing volume {target}"):
                if not helper.put_archive(HELPER_MOUNT, _tar_chunks(reading.ctx, artifact_key(manifest.artifact),
                                                                    manifest.sha256)):
                    raise RestoreFailed(f"the Docker API refused the archive for volume {target}")
        except UnreadableArtifact as exc:
            raise RestoreFailed(f"{manifest.artifact}: {exc}") from None
        finally:
            remove_container(helper)
        details = {"volume_restore": {"volume": target, "from": volume, "in_place": in_place, "image": image,
                                      "backup_run": str(backup.id), "seconds": round(time.monotonic() - started, 3)},
                   READ_FROM: reading.copy.value}
        ctx.recorder.succeed(run_id, location=backup.artifact_location, size=backup.size_bytes,
                             sha256=backup.sha256, details=details)
        return details
    except BaseException as exc:
        if created and client is not None:
            with docker_errors(f"removing the half-restored volume {target}"):
                client.volumes.get(target).remove(force=True)
        record_failure(ctx, run_id, exc)
        raise


def _clear(client: docker.DockerClient, image: str, volume: str) -> None:
    helper = helper_container(client, image, volume, HELPER_MOUNT, read_only=False, entrypoint=CLEAR)
    try:
        with docker_errors(f"clearing volume {volume}"):
            helper.start()
            code = helper.wait(timeout=300).get("StatusCode")
        if code != 0:
            raise RestoreFailed(f"clearing volume {volume} exited {code}; the safety snapshot holds its contents")
    finally:
        remove_container(helper)
