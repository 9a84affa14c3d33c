"""The Redis snapshot (kind `redis`): BGSAVE, then dump.rdb out of the redis container into storage.

1. The container OPENWATCH_BACKUP_REDIS_CONTAINER must exist (checked first: nothing is saved for nothing).
2. BGSAVE over OPENWATCH_REDIS_URL and the wait for LASTSAVE (operations/redis_bgsave.py).
3. /data/dump.rdb streams out of the container through the Docker API (get_archive's tar, read as a stream),
   through zstd and sha256 into `redis/redis_YYYYMMDD_HHMMSS.rdb.zst` (a `.partial` until committed, 0600).
4. The manifest (with its `redis` payload) and the run's success (operations/backup_record.py); on any failure
   the partial file is aborted and the failure recorded.

It touches no PostgreSQL data, so it takes no database lock. Restoring is done by hand (README, "Redis snapshot").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from openwatch_backup import __version__
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import Manifest, RedisPayload
from openwatch_backup.core.naming import REDIS_EXTENSION, REDIS_PREFIX, artifact_name, manifest_name
from openwatch_backup.core.pipeline import pump
from openwatch_backup.core.rdb import rdb_version
from openwatch_backup.errors import RedisSnapshotFailed
from openwatch_backup.operations.backup_record import open_new_artifact, record_backup, undo_backup
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.redis_bgsave import bgsave, connect, describe, redis_errors
from openwatch_backup.storage.base import ArtifactWriter

RDB_PATH = "/data/dump.rdb"  # the official image's dir and dbfilename, as OpenWatch's compose file runs it
CONTAINER_SETTING = "OPENWATCH_BACKUP_REDIS_CONTAINER"


class _HeadSource:
    """pump's source over the file's chunks; keeps the first bytes, where the RDB header is."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.head = b""

    def read(self, size: int) -> bytes:  # noqa: ARG002 - the chunks come as the Docker API sends them
        for chunk in self._chunks:
            if chunk:
                if len(self.head) < 16:
                    self.head += chunk[:16 - len(self.head)]
                return chunk
        return b""


def run_redis_snapshot(ctx: OperationContext, run_id: uuid.UUID, trigger: str = "cli") -> Manifest | None:
    """Carry out a queued redis run. None when another delivery already claimed it."""
    from openwatch_backup.docker_api import docker_client, get_container, stream_file

    if not ctx.recorder.claim(run_id):
        return None
    writer: ArtifactWriter | None = None
    artifact_key: str | None = None
    try:
        ctx.recorder.progress(run_id, "preflight")
        settings = ctx.settings
        client = connect(settings.redis_url, ctx.redact)
        where = describe(settings.redis_url or "")
        container = get_container(docker_client(), settings.redis_container, CONTAINER_SETTING)
        started = datetime.now(UTC)
        ctx.recorder.progress(run_id, "saving")
        try:
            saved = bgsave(client, where, settings.redis_save_timeout_seconds)
        finally:
            with redis_errors(where):
                client.close()
        ctx.recorder.progress(run_id, "fetching")
        rdb_size, chunks = stream_file(container, RDB_PATH, f"{RDB_PATH} of container {container.name}")
        name, writer = open_new_artifact(
            ctx, lambda n: artifact_name(BackupKind.REDIS, REDIS_EXTENSION, started, n), "Redis snapshots")
        artifact_key = writer.key
        ctx.recorder.progress(run_id, "streaming", details={"artifact_in_progress": artifact_key})
        source = _HeadSource(chunks)
        stream = pump(source, writer, zstd_level=settings.zstd_level, threads=settings.zstd_threads)
        version = rdb_version(source.head)
        if version is None:
            raise RedisSnapshotFailed(f"{RDB_PATH} of container {container.name} is not an RDB file (no REDIS "
                                      f"header): set {CONTAINER_SETTING} to OpenWatch's redis container")
        if stream.bytes_in != rdb_size:
            raise RedisSnapshotFailed(f"{RDB_PATH} of container {container.name} came as {stream.bytes_in} bytes, "
                                      f"the Docker API announced {rdb_size}: take the snapshot again")
        ctx.recorder.progress(run_id, "committing")
        writer.commit()
        writer = None
        payload = RedisPayload(container=container.name, path=RDB_PATH, redis_version=saved.redis_version,
                               rdb_version=version, lastsave=saved.lastsave, rdb_size=rdb_size, keys=saved.keys)
        manifest = Manifest(
            run_id=str(run_id), kind=BackupKind.REDIS.value, format="rdb", compression=Compression.ZSTD.value,
            wrapper="zstd", trigger=trigger, created_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
            database=ctx.target.dbname, server_version="", pg_dump_version="", openwatch_alembic_head=None,
            artifact=name, size_bytes=stream.bytes_out, sha256=stream.sha256, row_counts={}, canary_nonce=None,
            canary_included=False, tables=[], excluded_table_data=[], package_version=__version__, redis=payload)
        ctx.recorder.progress(run_id, "manifest")
        details = {"artifact": name, "format": manifest.format, "wrapper": manifest.wrapper,
                   "redis": payload.model_dump(), "seconds": round(stream.seconds, 3),
                   "package_version": __version__,
                   "request": {"kind": BackupKind.REDIS.value, "compression": Compression.ZSTD.value, "tables": []}}
        record_backup(ctx, run_id, artifact_key=artifact_key, manifest_key=f"{REDIS_PREFIX}/{manifest_name(name)}",
                      manifest=manifest, details=details, bytes_done=stream.bytes_out)
        return manifest
    except BaseException as exc:
        undo_backup(ctx, run_id, exc, writer, artifact_key)
        raise
