"""Copy one inspected guide file into our store as a backup run of its kind (operations/adopt.py runs it).

The source is only read. A dump (pg_dump -Fc) and a config bundle (openssl's format, which is ours) are stored
byte for byte; dump.rdb and a volume's .tar.gz are stored as our own Redis and volume snapshots are: zstd-wrapped
RDB, and the tar (gunzipped) in zstd. The bytes go to a `.partial` file named in the run before it is written
(decision 11); the run then ends like every backup (operations/backup_record.py): the manifest, then the catalog
row, or on failure the partial file aborted. A source that changed since it was inspected (another sha256) is
refused, so the manifest never describes other bytes than were checked.
"""

from __future__ import annotations

import hashlib
import typing
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from openwatch_backup import __version__
from openwatch_backup.core.adopt_names import GuideFile
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import AdoptedPayload, ConfigPayload, Manifest, RedisPayload, VolumePayload
from openwatch_backup.core.naming import (
    CONFIG_EXTENSION,
    REDIS_EXTENSION,
    artifact_name,
    manifest_key,
    volume_artifact_name,
)
from openwatch_backup.core.pipeline import CHUNK_SIZE, pump
from openwatch_backup.errors import ArtifactUnreadable
from openwatch_backup.operations.adopt_inspect import ConfigFacts, DumpFacts, RedisFacts, VolumeFacts, gunzipped
from openwatch_backup.operations.backup_record import open_new_artifact, record_backup, undo_backup
from openwatch_backup.operations.config_backup import CIPHER
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.secrets.bundle_digest import keyed_digest
from openwatch_backup.secrets.integrity import Sealer
from openwatch_backup.storage.base import ArtifactWriter

KIND_OF_FAMILY = {"postgres": BackupKind.FULL, "config": BackupKind.CONFIG, "redis": BackupKind.REDIS,
                  "volume": BackupKind.VOLUME}
Facts = DumpFacts | ConfigFacts | RedisFacts | VolumeFacts


@dataclass(frozen=True)
class Candidate:
    """A guide file that passed inspection: what it is, when it was taken, its bytes' digest, what it holds."""

    path: Path
    found: GuideFile
    taken_at: datetime
    sha256: str
    size: int
    facts: Facts

    @property
    def kind(self) -> BackupKind:
        return KIND_OF_FAMILY[self.found.family]

    def adopted(self) -> AdoptedPayload:
        return AdoptedPayload(source=str(self.path), sha256=self.sha256, size=self.size,
                              taken_at=self.taken_at.isoformat())

    def name_of(self, attempt: int) -> str:
        if self.kind is BackupKind.VOLUME:
            return volume_artifact_name(self.found.volume or "volume", self.taken_at, attempt)
        extension = {BackupKind.FULL: ".dump", BackupKind.CONFIG: CONFIG_EXTENSION,
                     BackupKind.REDIS: REDIS_EXTENSION}[self.kind]
        return artifact_name(self.kind, extension, self.taken_at, attempt)

    def request(self) -> dict[str, Any]:
        """details.request as the kind's own runs record it (BackupRequest/VolumeRequest read it back)."""
        compression = {BackupKind.FULL: Compression.PG, BackupKind.CONFIG: Compression.NONE}.get(
            self.kind, Compression.ZSTD)
        extra: dict[str, Any] = {"volume": self.found.volume, "stop": []} if self.kind is BackupKind.VOLUME else {}
        return {"kind": self.kind.value, "compression": compression.value, "tables": [], **extra}


class _SourceReader:
    """Reads the source file, hashing what it hands out, so the copy proves it copied the inspected bytes."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._sha256 = hashlib.sha256()

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        chunk = self._src.read(size)
        self._sha256.update(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


@dataclass(frozen=True)
class _Stored:
    size: int
    sha256: str
    extra: dict[str, Any]  # the manifest's family fields


def _store(ctx: OperationContext, candidate: Candidate, writer: ArtifactWriter, passphrase: bytes | None) -> _Stored:
    with candidate.path.open("rb") as src:
        reader = _SourceReader(src)
        facts = candidate.facts
        if isinstance(facts, VolumeFacts):
            counted = pump(gunzipped(typing.cast(BinaryIO, reader)), writer, zstd_level=ctx.settings.zstd_level,
                           threads=ctx.settings.zstd_threads)
            stored = _Stored(counted.bytes_out, counted.sha256, {"volume": VolumePayload(
                volume=candidate.found.volume or "", source=f"adopted {candidate.path.name}", mount="/source",
                consistent=False, members=facts.members, tar_bytes=counted.bytes_in)})
        elif isinstance(facts, RedisFacts):
            result = pump(reader, writer, zstd_level=ctx.settings.zstd_level, threads=ctx.settings.zstd_threads)
            stored = _Stored(result.bytes_out, result.sha256, {"redis": RedisPayload(
                container="", path=str(candidate.path), redis_version="", rdb_version=facts.rdb_version,
                lastsave=int(candidate.taken_at.timestamp()), rdb_size=facts.rdb_size)})
        elif isinstance(facts, ConfigFacts):
            assert passphrase is not None  # inspection refused a bundle without one
            sealer = Sealer(passphrase)
            while chunk := reader.read():
                sealer.update(chunk)
                writer.write(chunk)
            integrity = sealer.finish()
            stored = _Stored(integrity.size, integrity.sha256, {"config": ConfigPayload(
                cipher=CIPHER, encryption=integrity.as_manifest(), paths=[], members=len(facts.members),
                env_snapshot=False, inputs_digest=keyed_digest(passphrase, candidate.sha256))})
        else:
            result = pump(reader, writer)
            stored = _Stored(result.bytes_out, result.sha256, {})
        while reader.read():  # gunzip stops at its end marker: the rest is hashed too
            pass
    if reader.hexdigest() != candidate.sha256:
        raise ArtifactUnreadable(f"{candidate.path} changed while it was adopted (its sha256 differs from the one "
                                 "just checked): run the adopt again")
    return stored


def _manifest(ctx: OperationContext, run_id: uuid.UUID, candidate: Candidate, name: str, stored: _Stored) -> Manifest:
    facts = candidate.facts
    dump = facts if isinstance(facts, DumpFacts) else None
    formats = {BackupKind.FULL: "custom", BackupKind.CONFIG: "tar.gz.enc", BackupKind.REDIS: "rdb",
               BackupKind.VOLUME: "tar"}
    request = candidate.request()
    return Manifest(
        run_id=str(run_id), kind=candidate.kind.value, format=formats[candidate.kind],
        compression="gzip" if candidate.kind is BackupKind.CONFIG else request["compression"],
        wrapper="zstd" if candidate.kind in (BackupKind.REDIS, BackupKind.VOLUME) else None, trigger="cli",
        created_at=candidate.taken_at.isoformat(), finished_at=datetime.now(UTC).isoformat(),
        database=dump.database if dump else ctx.target.dbname, server_version=dump.server_version if dump else "",
        pg_dump_version=dump.pg_dump_version if dump else "",
        openwatch_alembic_head=dump.alembic_head if dump else None, artifact=name, size_bytes=stored.size,
        sha256=stored.sha256, row_counts=dump.row_counts if dump else {},
        # The guide's pg_dump wrote no canary of ours: deep verify checks row counts and the migration head only.
        canary_nonce=None, canary_included=False, tables=[], excluded_table_data=[], package_version=__version__,
        adopted=candidate.adopted(), **stored.extra)


def copy_candidate(ctx: OperationContext, run_id: uuid.UUID, candidate: Candidate,
                   passphrase: bytes | None) -> Manifest:
    """Carry out the claimed run `run_id`: the file into storage, its manifest, the run's success."""
    writer: ArtifactWriter | None = None
    artifact_key: str | None = None
    try:
        name, writer = open_new_artifact(ctx, candidate.name_of, f"{candidate.kind.value} backups")
        artifact_key = writer.key
        ctx.recorder.progress(run_id, "copying", details={"artifact_in_progress": artifact_key})
        stored = _store(ctx, candidate, writer, passphrase)
        kill_point("adopt_copied")
        ctx.recorder.progress(run_id, "committing")
        writer.commit()
        writer = None
        manifest = _manifest(ctx, run_id, candidate, name, stored)
        ctx.recorder.progress(run_id, "manifest")
        details: dict[str, Any] = {
            "artifact": name, "format": manifest.format, "wrapper": manifest.wrapper,
            "server_version": manifest.server_version, "pg_dump_version": manifest.pg_dump_version,
            "database": manifest.database, "openwatch_alembic_head": manifest.openwatch_alembic_head,
            "row_counts": manifest.row_counts, "canary_nonce": None, "canary_included": False,
            "adopted": candidate.adopted().model_dump(), "package_version": __version__,
            "request": candidate.request()}
        for family in ("config", "redis", "volume"):
            payload = getattr(manifest, family)
            if payload is not None:
                details[family] = payload.model_dump()
        if manifest.config is not None:  # as a config backup records them (the on-change check, `check`)
            details.update(key_id=manifest.config.encryption["key_id"], inputs_digest=manifest.config.inputs_digest,
                           members=manifest.config.members, paths=[], env_snapshot=False, certificates=[])
        record_backup(ctx, run_id, artifact_key=artifact_key, manifest_key=manifest_key(name), manifest=manifest,
                      details=details, bytes_done=stored.size, after_manifest=lambda: kill_point("adopt_manifest"))
        return manifest
    except BaseException as exc:
        undo_backup(ctx, run_id, exc, writer, artifact_key)
        raise
