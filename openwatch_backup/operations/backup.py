"""The backup operation: preflight, canary, snapshot, stream pg_dump into storage, manifest, record.

A run is `succeeded` only when its artifact was fully written, fsynced and renamed into place and its
manifest written. On any failure the partial file is removed, no manifest exists, and the run is
`failed` with a redacted one-line reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openwatch_backup import __version__
from openwatch_backup.core.dump_plan import DumpPlan, plan_dump
from openwatch_backup.core.dump_shape import ShapeWatcher, shape_problem
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import POSTGRES_PREFIX, artifact_name, manifest_name
from openwatch_backup.core.pipeline import StreamResult, pump
from openwatch_backup.errors import DumpFailed
from openwatch_backup.executors.local import describe_exit
from openwatch_backup.operations.backup_record import open_new_artifact, record_backup, undo_backup
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.lifecycle import peak_rss_bytes
from openwatch_backup.operations.preflight import preflight
from openwatch_backup.settings import COUNTED_TABLES
from openwatch_backup.source.connection import connect
from openwatch_backup.source.facts import alembic_head, row_counts, tables_left_out, write_canary
from openwatch_backup.source.snapshot import ExportedSnapshot
from openwatch_backup.storage.base import ArtifactWriter


@dataclass(frozen=True)
class BackupRequest:
    kind: BackupKind
    compression: Compression
    tables: list[str] = field(default_factory=list)

    def as_details(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "compression": self.compression.value, "tables": self.tables}

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> BackupRequest:
        return cls(kind=BackupKind(details["kind"]), compression=Compression(details["compression"]),
                   tables=list(details.get("tables") or []))


@dataclass
class ProgressEvent:
    phase: str
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.bytes_in / self.seconds if self.seconds > 0 else 0.0


Observer = Callable[[ProgressEvent], None]


class _Heartbeat:
    """Throttled progress: the catalog every heartbeat_seconds, the observer (a progress bar) always."""

    def __init__(self, ctx: OperationContext, run_id: uuid.UUID, observer: Observer | None) -> None:
        self._ctx, self._run_id, self._observer = ctx, run_id, observer
        self._started = time.monotonic()
        self._last = 0.0

    def phase(self, name: str, details: dict[str, Any] | None = None) -> None:
        self._ctx.recorder.progress(self._run_id, name, 0 if details else None, details)
        if self._observer:
            self._observer(ProgressEvent(name, seconds=time.monotonic() - self._started))

    def bytes(self, bytes_in: int, bytes_out: int) -> None:
        now = time.monotonic()
        event = ProgressEvent("dumping", bytes_in, bytes_out, now - self._started)
        if self._observer:
            self._observer(event)
        if now - self._last >= self._ctx.settings.heartbeat_seconds:
            self._last = now
            # bytes_done counts what pg_dump produced (the progress a person follows); stored size differs.
            self._ctx.recorder.progress(self._run_id, "dumping", bytes_in,
                                        {"bytes_out": bytes_out, "rate_bytes_per_s": round(event.rate)})


def _stream_dump(ctx: OperationContext, plan: DumpPlan, writer: ArtifactWriter, env: dict[str, str],
                 heartbeat: _Heartbeat, meanwhile: Callable[[], None]) -> StreamResult:
    """Start pg_dump, call `meanwhile` while it starts up, then stream its output into writer.

    pg_dump spends its first 0.1-0.25 s (450 MiB database, this machine) connecting, joining the snapshot and
    reading the catalog before it writes a data byte; `meanwhile` (the row counts in the same snapshot) fills that
    gap instead of adding to the run's time. Its output waits in the pipe meanwhile (1 MiB, then pg_dump blocks)."""
    process = ctx.executor.start(plan.argv, env)
    watcher = ShapeWatcher(process, gzip=plan.format == "plain" and "--compress=6" in plan.argv)
    try:
        meanwhile()
        result = pump(watcher, writer, zstd_level=ctx.settings.zstd_level if plan.wrapper == "zstd" else None,
                      threads=ctx.settings.zstd_threads, on_progress=heartbeat.bytes)
        code = process.wait()
    finally:
        process.close()  # kills pg_dump if we stop early (storage error, cancel)
    if code != 0:
        raise DumpFailed(ctx.redact(describe_exit("pg_dump", code, process.stderr_tail())))
    problem = shape_problem(plan.format, watcher.head, watcher.tail)
    if problem:
        raise DumpFailed(problem)
    return result


def run_backup(ctx: OperationContext, run_id: uuid.UUID, request: BackupRequest,
               observer: Observer | None = None, trigger: str = "cli") -> Manifest | None:
    """Carry out a queued backup run. None when another delivery already claimed it."""
    if not ctx.recorder.claim(run_id):
        return None
    heartbeat = _Heartbeat(ctx, run_id, observer)
    writer: ArtifactWriter | None = None
    artifact_key: str | None = None
    try:
        heartbeat.phase("preflight")
        with connect(ctx.target, ctx.redact) as conn:
            checked = preflight(ctx, conn, request.compression)
            heartbeat.phase("canary")
            nonce = write_canary(conn, run_id)
            with ExportedSnapshot(conn) as snapshot:
                # The tables kind dumps every definition and leaves the other tables' data out by name.
                leave_out = (tables_left_out(conn, request.tables, canary=nonce is not None)
                             if request.kind is BackupKind.TABLES else None)
                plan = plan_dump(checked.pg_dump.path, checked.pg_dump.major, request.kind, request.compression,
                                 zstd_level=ctx.settings.zstd_level, tables=request.tables, leave_out=leave_out,
                                 snapshot=snapshot.snapshot_id, canary_table=nonce is not None)
                started = datetime.now(UTC)
                name, writer = open_new_artifact(
                    ctx, lambda n: artifact_name(request.kind, plan.extension, started, n), "artifacts")
                artifact_key = writer.key
                # Recorded before the first byte, so a sweeper can tell this run's `.partial` file by name. One
                # catalog write with the phase change (it was two: ~10-25 ms each here).
                heartbeat.phase("dumping", {"artifact_in_progress": artifact_key})
                counts: dict[str, int] = {}
                heads: list[str | None] = []

                def count_in_snapshot() -> None:
                    # Exact counts and the migration head, in the exported snapshot pg_dump joins (this connection
                    # holds it open), so they describe the dump exactly; taken while pg_dump starts up.
                    counts.update(row_counts(conn, COUNTED_TABLES))
                    heads.append(alembic_head(conn))

                result = _stream_dump(ctx, plan, writer, ctx.target.libpq_env(), heartbeat, count_in_snapshot)
                head = heads[0]
        heartbeat.phase("committing")
        writer.commit()
        writer = None
        manifest = Manifest(
            run_id=str(run_id), kind=request.kind.value, format=plan.format,
            compression=request.compression.value, wrapper=plan.wrapper, trigger=trigger,
            created_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
            database=checked.facts.database, server_version=checked.facts.version,
            pg_dump_version=checked.pg_dump.version, openwatch_alembic_head=head, artifact=name,
            size_bytes=result.bytes_out, sha256=result.sha256, row_counts=counts, canary_nonce=nonce,
            canary_included=plan.canary_included and nonce is not None, tables=plan.tables,
            excluded_table_data=plan.excluded_table_data, package_version=__version__)
        heartbeat.phase("manifest")
        record_backup(ctx, run_id, artifact_key=artifact_key, manifest_key=f"{POSTGRES_PREFIX}/{manifest_name(name)}",
                      manifest=manifest, details=_details(manifest, result, checked.needed_bytes),
                      bytes_done=result.bytes_in)
        return manifest
    except BaseException as exc:
        undo_backup(ctx, run_id, exc, writer, artifact_key)
        raise


def _details(manifest: Manifest, result: StreamResult, estimate: int) -> dict[str, Any]:
    return {
        "artifact": manifest.artifact, "format": manifest.format, "wrapper": manifest.wrapper,
        "server_version": manifest.server_version, "pg_dump_version": manifest.pg_dump_version,
        "database": manifest.database, "openwatch_alembic_head": manifest.openwatch_alembic_head,
        "row_counts": manifest.row_counts, "canary_nonce": manifest.canary_nonce,
        "canary_included": manifest.canary_included, "bytes_in": result.bytes_in, "bytes_out": result.bytes_out,
        "seconds": round(result.seconds, 3),
        "rate_bytes_per_s": round(result.bytes_in / result.seconds) if result.seconds > 0 else None,
        "estimate_bytes": estimate, "peak_rss_bytes": peak_rss_bytes(), "package_version": __version__,
    }
