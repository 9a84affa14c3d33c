"""Verify a backup: quick (file, manifest, checksum, readable) and deep (restore into scratch, check).

The result is typed (core/verify_result.py) and stored on a verify run linked to the backup run.
Quick verify needs no database: the operator can run it on a copy of the backup directory.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks, needs_gunzip
from openwatch_backup.core.dump_shape import ShapeWatcher, shape_problem
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import artifact_key, manifest_key
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult, failed
from openwatch_backup.errors import BackupError, ManifestError, RestoreFailed
from openwatch_backup.executors.base import ClientTool
from openwatch_backup.executors.local import error_line
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.created_databases import create_recorded, drop_recorded
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.presence import present_artifact
from openwatch_backup.operations.restore_checks import check_restored
from openwatch_backup.operations.restore_stream import stream_into_database
from openwatch_backup.operations.scratch_list import scratch_restore_options
from openwatch_backup.operations.secrets_proof import prove_secrets
from openwatch_backup.source.connection import connect
from openwatch_backup.source.scratch import drop_database, scratch_name


def backup_manifest_key(run: BackupRun) -> tuple[str, str]:
    artifact = present_artifact(run)  # refuses what is not a backup, or no longer there
    return artifact_key(artifact), manifest_key(artifact)


def client_for(manifest: Manifest, program: str, ctx: OperationContext) -> ClientTool:
    major = int(manifest.pg_dump_version.split(".")[0])
    return ctx.executor.find_client(program, major, manifest.pg_dump_version)


def quick_verify(ctx: OperationContext, run: BackupRun, *, read_content: bool = True,
                 missing: str | None = None) -> tuple[VerifyResult, Manifest | None]:
    """read_content=False stops after the manifest and size checks: for callers about to restore the file,
    whose restore stream hashes every byte anyway (the drill), so the file is read once, not twice.
    ctx.storage is the copy to read (operations/read_source.py); missing: the line to give when no copy holds
    the artifact (it names every place looked at)."""
    artifact_key, manifest_key = backup_manifest_key(run)
    checks: dict[str, Any] = {"artifact": artifact_key}
    if missing is not None or not ctx.storage.exists(artifact_key):
        return failed(False, VerifyReason.MISSING, missing or f"{ctx.storage.location(artifact_key)} does not exist",
                      checks), None
    if not ctx.storage.exists(manifest_key):
        return failed(False, VerifyReason.MANIFEST, f"the manifest {ctx.storage.location(manifest_key)} is missing",
                      checks), None
    raw_manifest = ctx.storage.read_bytes(manifest_key)
    try:
        manifest = Manifest.from_json(raw_manifest, source=manifest_key)
    except ManifestError as exc:
        return failed(False, VerifyReason.MANIFEST, exc.message, checks), None
    recorded = run.details.get("manifest_sha256")
    if recorded and hashlib.sha256(raw_manifest).hexdigest() != recorded:
        return failed(False, VerifyReason.MANIFEST, f"{manifest_key} was changed after the backup (its sha256 "
                      "differs from the one the catalog recorded)", checks), manifest
    if manifest.run_id != str(run.id) or manifest.sha256 != run.sha256 or manifest.size_bytes != run.size_bytes:
        return failed(False, VerifyReason.MANIFEST, f"{manifest_key} describes another file than the catalog "
                      "recorded for this run (run id, size or sha256 differ)", checks), manifest
    if manifest.config is not None or run.kind == BackupKind.CONFIG.value:
        # The order for a bundle: key id, then size (cut: unreadable), sha256, HMAC, then its members.
        from openwatch_backup.operations.config_verify import verify_bundle

        return (verify_bundle(ctx, manifest, artifact_key, checks) if read_content
                else VerifyResult(deep=False, checks=checks)), manifest
    if manifest.volume is not None or run.kind == BackupKind.VOLUME.value:
        from openwatch_backup.operations.volume_verify import verify_volume

        return (verify_volume(ctx, manifest, artifact_key, checks) if read_content
                else VerifyResult(deep=False, checks=checks)), manifest
    size = ctx.storage.size(artifact_key)
    checks["size_bytes"] = size
    if size != manifest.size_bytes:
        return failed(False, VerifyReason.SIZE, f"{manifest.artifact} is {size} bytes, the manifest says "
                      f"{manifest.size_bytes}", checks), manifest
    if not read_content:
        return VerifyResult(deep=False, checks=checks), manifest
    if manifest.redis is not None or run.kind == BackupKind.REDIS.value:  # sha256, then the RDB's header and CRC64
        from openwatch_backup.operations.redis_verify import verify_rdb

        return verify_rdb(ctx, manifest, artifact_key, checks), manifest
    started = time.monotonic()
    digest, unreadable = _read_through(ctx, manifest, artifact_key)
    checks["read_seconds"] = round(time.monotonic() - started, 3)
    checks["sha256"] = digest
    if digest != manifest.sha256:
        return failed(False, VerifyReason.CHECKSUM, f"{manifest.artifact} has sha256 {digest}, the manifest says "
                      f"{manifest.sha256}", checks), manifest
    if unreadable:
        return failed(False, VerifyReason.UNREADABLE, f"{manifest.artifact}: {unreadable}", checks), manifest
    return VerifyResult(deep=False, checks=checks), manifest


def _read_through(ctx: OperationContext, manifest: Manifest, key: str) -> tuple[str, str | None]:
    """Hash every stored byte and check that the content reads: `pg_restore --list` on archives, a complete
    dump (header to 'dump complete' trailer) for plain SQL. Returns (sha256, problem or None)."""
    with ctx.storage.open_reader(key) as raw:
        reader = HashingReader(raw)
        chunks = decoded_chunks(reader, wrapper=manifest.wrapper,
                                gunzip=needs_gunzip(manifest.format, manifest.compression))
        try:
            problem = _archive_lists(ctx, manifest, chunks) if manifest.format == "custom" else _plain_complete(chunks)
        except UnreadableArtifact as exc:
            problem = str(exc)
        except BackupError as exc:
            problem = exc.message
        reader.drain()
        return reader.hexdigest(), problem


def _archive_lists(ctx: OperationContext, manifest: Manifest, chunks: Any) -> str | None:
    client = client_for(manifest, "pg_restore", ctx)
    feeder = ctx.executor.feed([client.path, "--list"], {})
    accepting = True
    try:
        for chunk in chunks:  # keep decompressing after pg_restore has read its table of contents
            if accepting:
                accepting = feeder.write(chunk)
    except BaseException:
        feeder.kill()
        raise
    code = feeder.finish()
    if code != 0 or feeder.stdout_lines == 0:
        return f"pg_restore --list cannot read it ({error_line(feeder.stderr_tail()) or f'exit status {code}'})"
    return None


class _ChunkSource:
    def __init__(self, chunks: Any) -> None:
        self._chunks = iter(chunks)

    def read(self, size: int) -> bytes:  # noqa: ARG002 - chunks come as the decompressor yields them
        # An empty chunk (a flush with nothing left) is not the end; only exhaustion is.
        for chunk in self._chunks:
            if chunk:
                return bytes(chunk)
        return b""


def _plain_complete(chunks: Any) -> str | None:
    watcher = ShapeWatcher(_ChunkSource(chunks))
    while watcher.read(1 << 20):
        pass
    return shape_problem("plain", watcher.head, watcher.tail)


def deep_verify(ctx: OperationContext, verify_run_id: uuid.UUID, manifest: Manifest,
                quick: VerifyResult, purpose: str = "verify") -> VerifyResult:
    """Restore into a scratch database named after the run, check it, drop it in every outcome."""
    name = scratch_name(purpose, verify_run_id)
    checks = dict(quick.checks, scratch_database=name)
    client = client_for(manifest, "pg_restore" if manifest.format == "custom" else "psql", ctx)
    with connect(ctx.target, ctx.redact) as admin:
        drop_database(admin, name)  # an earlier delivery's, by its name
        create_recorded(ctx, verify_run_id, admin, name)  # recorded first, so a kill leaves it findable
        try:
            kill_point(f"{purpose}_scratch_created")
            started = time.monotonic()
            try:
                with scratch_restore_options(ctx, manifest, client) as options:  # tables: all but foreign keys
                    stats = stream_into_database(ctx, manifest, client, name, options)
            except RestoreFailed as exc:
                return failed(True, VerifyReason.UNREADABLE, f"{manifest.artifact}: {exc.message}", checks)
            checks["restore_seconds"] = round(time.monotonic() - started, 3)
            if stats.sha256 != manifest.sha256:
                return failed(True, VerifyReason.CHECKSUM, f"{manifest.artifact} has sha256 {stats.sha256}, the "
                              f"manifest says {manifest.sha256}", checks)
            result = check_restored(ctx, manifest, name, checks)
            if result.reason is not None:
                return failed(True, result.reason, f"{manifest.artifact}: {result.message}", result.checks)
            mismatch = prove_secrets(ctx, name, result.checks)  # adds checks["secrets"]: the master key fits?
            return mismatch if mismatch is not None else result
        finally:
            drop_recorded(ctx, verify_run_id, admin, name)


def verify_error(result: VerifyResult) -> str:
    return f"verify failed ({result.reason}): {result.message}"

