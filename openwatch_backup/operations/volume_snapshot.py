"""Volume snapshot (kind `volume`): one docker volume as `volumes/volume_<name>_YYYYMMDD_HHMMSS.tar.zst`.

`tar -cf - -C MOUNT .` runs as root through the Docker API (exec, so owners, modes, links and empty folders
stay as they are: podman's get_archive rewrites owners) and its stdout streams through zstd and sha256 into
storage (a `.partial` until committed). `zstd -dc FILE | tar t` reads the file on any host. No image is pulled:
tar runs in a running container that mounts the volume, else in a short-lived helper container made from the
image of a container that mounts it (no network, removed in every outcome).

Consistent mode (OPENWATCH_BACKUP_VOLUME_CONSISTENT, or `--stop NAMES`) stops the named containers around the
read. Every name is checked before anything stops (a missing container, or the worker running this task, is
refused with nothing stopped); the run records which it is stopping BEFORE it stops them (decision 11), so the
sweeper starts them again if this worker dies; they are started again in every other outcome (failure, cancel,
time limit: a finally), and the manifest records how long they were down.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openwatch_backup import __version__
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import Manifest, VolumePayload
from openwatch_backup.core.naming import VOLUME_PREFIX, manifest_name, volume_artifact_name
from openwatch_backup.core.pipeline import pump
from openwatch_backup.core.tar_members import TarCounter
from openwatch_backup.docker_api import (
    ExecStream,
    docker_client,
    docker_errors,
    get_container,
    get_volume,
    helper_container,
    remove_container,
    volume_users,
)
from openwatch_backup.errors import BackupError, ConfigError, ContainerMissing, VolumeSnapshotFailed
from openwatch_backup.operations.backup_record import open_new_artifact, record_backup, undo_backup
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.stop_intent import StopIntent, orphaned
from openwatch_backup.storage.base import ArtifactWriter

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

VOLUMES_SETTING = "OPENWATCH_BACKUP_VOLUMES"
STOP_SETTING = "OPENWATCH_BACKUP_VOLUME_STOP"
HELPER_MOUNT = "/volume"
STOP_TIMEOUT = 30  # seconds docker waits after SIGTERM before SIGKILL, per container
CATALOG_WAIT = 60  # seconds to wait for the catalog after restarting (the database may have been stopped)


@dataclass(frozen=True)
class VolumeRequest:
    volume: str
    stop: tuple[str, ...] = ()  # the containers consistent mode stops; empty: not consistent

    @property
    def consistent(self) -> bool:
        return bool(self.stop)

    def as_details(self) -> dict[str, Any]:
        # kind/compression/tables as every backup request has them (BackupRequest.from_details reads them).
        return {"kind": BackupKind.VOLUME.value, "compression": Compression.ZSTD.value, "tables": [],
                "volume": self.volume, "stop": list(self.stop)}

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> VolumeRequest:
        return cls(volume=str(details["volume"]), stop=tuple(details.get("stop") or ()))


@dataclass
class Window:
    """What consistent mode stopped and for how long (filled in as it happens)."""

    stopped: list[str] = field(default_factory=list)
    downtime_seconds: float = 0.0


def own_container_hints() -> tuple[set[str], str]:
    """The worker's own container: ids in /proc/self/cgroup (cgroup v1 and docker's cgroupfs driver name it),
    and HOSTNAME (docker and podman set it to the container id's first 12 characters). Not mountinfo: on a host
    running the engine it lists every container's mounts."""
    ids: set[str] = set()
    with suppress(OSError):
        ids.update(re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", Path("/proc/self/cgroup").read_text()))
    return ids, os.environ.get("HOSTNAME", "")


def is_own_container(container: Container) -> bool:
    ids, host = own_container_hints()
    if container.id in ids:
        return True
    return bool(re.fullmatch(r"[0-9a-f]{12,64}", host)) and container.id.startswith(host)


def containers_to_stop(client: docker.DockerClient, names: tuple[str, ...]) -> list[Container]:
    """Every name resolved and checked before anything stops: a missing one, or this worker's own container, is
    refused with one line and nothing stopped."""
    found = []
    for name in names:
        container = get_container(client, name, f"{STOP_SETTING} (or --stop)")
        if is_own_container(container):
            raise ConfigError(f"{name} is the container running this snapshot: it cannot stop itself; take it out "
                              f"of {STOP_SETTING} (or --stop); nothing was stopped")
        found.append(container)
    return found


def _catalog(write: Callable[[], None]) -> None:
    """A catalog write right after the containers came back: the database may be one of them and still
    starting, so try for CATALOG_WAIT seconds."""
    deadline = time.monotonic() + CATALOG_WAIT
    while True:
        try:
            write()
            return
        except BackupError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def start_again(containers: list[Container]) -> list[str]:
    """Start every container given (in reverse order: the database first); the names that would not start."""
    failed = []
    for container in reversed(containers):
        try:
            with docker_errors(f"starting container {container.name}"):
                container.start()
        except BackupError:
            failed.append(container.name)
    return failed


@contextmanager
def stopped_window(ctx: OperationContext, run_id: uuid.UUID, containers: list[Container]) -> Iterator[Window]:
    """Stop the running ones among `containers` (recorded on the run first), yield, start them again whatever
    happened; the window records names and downtime. A container that will not stop: the ones stopped before it
    are started again and the snapshot is refused."""
    window = Window()
    running = [c for c in containers if c.status == "running"]
    if not running:
        yield window
        return
    names = [c.name for c in running]
    ctx.recorder.progress(run_id, "stopping", details={"stopping": names, "stopped_at": datetime.now(UTC).isoformat()})
    intent = StopIntent(ctx.settings.dir, run_id, names).__enter__()  # the catalog may be among them
    began = time.monotonic()
    stopped: list[Container] = []
    try:
        for container in running:
            try:
                with docker_errors(f"stopping container {container.name}"):
                    container.stop(timeout=STOP_TIMEOUT)
            except BackupError as exc:
                raise VolumeSnapshotFailed(f"container {container.name} could not be stopped ({exc.message}); "
                                           "nothing was read, the containers stopped before it were started "
                                           "again") from None
            stopped.append(container)
            window.stopped.append(container.name)
        kill_point("volume_stopped")
        yield window
    finally:
        failed = start_again(stopped)
        if failed:
            intent.__exit__()  # kept: the sweeper tries again
        else:
            intent.done()
        window.downtime_seconds = round(time.monotonic() - began, 3)
        restarted = {"restarted": [n for n in window.stopped if n not in failed], "restart_failed": failed,
                     "downtime_seconds": window.downtime_seconds}
        _catalog(lambda: ctx.recorder.add_details(run_id, restarted))
        if failed:
            raise VolumeSnapshotFailed(f"container(s) {', '.join(failed)} did not start again after the snapshot: "
                                       f"start them now (docker start {' '.join(failed)})")


def restart_orphaned_intents(backup_dir: Path, stale_after_seconds: float) -> dict[str, list[str]]:
    """The sweeper's first step, before any catalog access: start the containers that a dead volume run recorded
    in its local intent file (operations/stop_intent.py), then remove the file. Returns {run id: names started}."""
    found = orphaned(backup_dir, stale_after_seconds)
    if not found:
        return {}
    client = docker_client()
    started: dict[str, list[str]] = {}
    for path, record in found:
        containers = []
        for name in record["containers"]:
            with suppress(ContainerMissing):
                containers.append(get_container(client, str(name), STOP_SETTING))
        stopped = [c for c in containers if c.status != "running"]
        failed = start_again(stopped)
        started[str(record.get("run"))] = [c.name for c in stopped if c.name not in failed]
        if not failed:
            path.unlink(missing_ok=True)
    return started


def restart_recorded(run_details: dict[str, Any]) -> list[str]:
    """The sweeper's part (decision 11): a volume run that died between stopping and restarting its containers
    left them stopped; start the ones it recorded. Returns the names started."""
    names = run_details.get("stopping") or []
    if not names or "restarted" in run_details:
        return []
    client = docker_client()
    containers = []
    for name in names:
        try:
            containers.append(get_container(client, name, STOP_SETTING))
        except ContainerMissing:
            continue
    stopped = [c for c in containers if c.status != "running"]
    failed = start_again(stopped)
    return [c.name for c in stopped if c.name not in failed]


@dataclass(frozen=True)
class ReadResult:
    source: str
    mount: str
    members: int
    tar_bytes: int
    sha256: str
    size: int


def _tar_into(ctx: OperationContext, container: Container, mount: str, writer: ArtifactWriter, source: str,
              volume: str) -> ReadResult:
    stream = ExecStream(container, ["tar", "-cf", "-", "-C", mount, "."], f"reading volume {volume} ({source})")
    counter = TarCounter(stream)
    try:
        result = pump(counter, writer, zstd_level=ctx.settings.zstd_level, threads=ctx.settings.zstd_threads)
    finally:
        code = stream.close()
    if code != 0:
        tail = bytes(stream.stderr).decode("utf-8", "replace").strip().splitlines()
        raise VolumeSnapshotFailed(f"tar of volume {volume} ({source}) exited {code}"
                                   f"{': ' + ctx.redact(tail[-1]) if tail else ''}; nothing was stored")
    if counter.members == 0:
        raise VolumeSnapshotFailed(f"tar of volume {volume} ({source}) wrote no archive; nothing was stored")
    return ReadResult(source=source, mount=mount, members=counter.members, tar_bytes=result.bytes_in,
                      sha256=result.sha256, size=result.bytes_out)


def read_volume(ctx: OperationContext, client: docker.DockerClient, volume: str,
                writer: ArtifactWriter) -> ReadResult:
    """tar in a running container that mounts the volume, else in a helper made from a mounting container's
    image (else the database container's): no image is pulled."""
    users = volume_users(client, volume)
    for container, mount in users:
        if container.status == "running":
            return _tar_into(ctx, container, mount, writer, f"exec {container.name}", volume)
    image = local_image(client, users, ctx.settings.db_container, volume)
    helper = helper_container(client, image, volume, HELPER_MOUNT, read_only=True)
    try:
        with docker_errors(f"starting a helper container from {image}"):
            helper.start()
        return _tar_into(ctx, helper, HELPER_MOUNT, writer, f"helper {image}", volume)
    finally:
        remove_container(helper)


def local_image(client: docker.DockerClient, users: list[tuple[Container, str]], db_container: str,
                 volume: str) -> str:
    for container, _mount in users:
        image = (container.attrs.get("Config") or {}).get("Image") or container.attrs.get("Image")
        if image:
            return str(image)
    try:
        owner = get_container(client, db_container, "OPENWATCH_BACKUP_DB_CONTAINER")
    except ContainerMissing:
        raise ContainerMissing(f"no container mounts volume {volume} and {db_container} does not exist, so there "
                               "is no local image to read it with (none is pulled): start the container that "
                               "uses it, or set OPENWATCH_BACKUP_DB_CONTAINER") from None
    return str((owner.attrs.get("Config") or {}).get("Image") or owner.attrs.get("Image"))


def run_volume_snapshot(ctx: OperationContext, run_id: uuid.UUID, request: VolumeRequest,
                        trigger: str = "cli") -> Manifest | None:
    """Carry out a queued volume snapshot run. None when another delivery already claimed it."""
    if not ctx.recorder.claim(run_id):
        return None
    writer: ArtifactWriter | None = None
    artifact_key: str | None = None
    try:
        ctx.recorder.progress(run_id, "preflight")
        client = docker_client()
        get_volume(client, request.volume, VOLUMES_SETTING)
        to_stop = containers_to_stop(client, request.stop)
        started = datetime.now(UTC)
        name, writer = open_new_artifact(
            ctx, lambda n: volume_artifact_name(request.volume, started, n), "volume snapshots")
        artifact_key = writer.key
        ctx.recorder.progress(run_id, "reading", details={"artifact_in_progress": artifact_key})
        with stopped_window(ctx, run_id, to_stop) as window:
            read = read_volume(ctx, client, request.volume, writer)
        kill_point("volume_read")
        ctx.recorder.progress(run_id, "committing")
        writer.commit()
        writer = None
        payload = VolumePayload(volume=request.volume, source=read.source, mount=read.mount,
                                consistent=request.consistent, stopped=window.stopped,
                                downtime_seconds=window.downtime_seconds, members=read.members,
                                tar_bytes=read.tar_bytes)
        manifest = Manifest(
            run_id=str(run_id), kind=BackupKind.VOLUME.value, format="tar", compression=Compression.ZSTD.value,
            wrapper="zstd", trigger=trigger, created_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
            database=ctx.target.dbname, server_version="", pg_dump_version="", openwatch_alembic_head=None,
            artifact=name, size_bytes=read.size, sha256=read.sha256, row_counts={}, canary_nonce=None,
            canary_included=False, tables=[], excluded_table_data=[], package_version=__version__, volume=payload)
        details = {"artifact": name, "format": "tar", "wrapper": "zstd", "volume": payload.model_dump(),
                   "package_version": __version__, "request": request.as_details()}
        record_backup(ctx, run_id, artifact_key=artifact_key, manifest_key=f"{VOLUME_PREFIX}/{manifest_name(name)}",
                      manifest=manifest, details=details, bytes_done=read.tar_bytes)
        return manifest
    except BaseException as exc:
        undo_backup(ctx, run_id, exc, writer, artifact_key)
        raise
