"""The versioned JSON manifest written beside every artifact.

The manifest is the recovery-side source of truth: the catalog can be rebuilt from manifests alone,
because a restore replaces the very database that holds the catalog.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openwatch_backup.core.naming import is_safe_name
from openwatch_backup.errors import ManifestError

MANIFEST_VERSION = 1


class ConfigPayload(BaseModel):
    """The config family's part of a manifest (DESIGN.md decision 12). Nothing in it reveals a secret: the
    passphrase is represented by a key id, the inputs by a keyed digest (secrets/bundle_digest.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cipher: str = Field(description="how to open the bundle on a host with nothing of ours")
    encryption: dict[str, Any] = Field(description="secrets/integrity.py's CiphertextIntegrity: size, sha256, "
                                       "hmac_sha256, hmac_salt, key_id")
    paths: list[str] = Field(description="the listed inputs, as they were on the backed-up host")
    members: int = Field(ge=0, description="how many tar members (files, folders, links, openwatch.env)")
    env_snapshot: bool = Field(description="whether openwatch.env (the worker's OpenWatch settings) is inside")
    inputs_digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="keyed digest of names, modes and contents")
    certificates: list[dict[str, Any]] = Field(default_factory=list,
                                               description="member, index, subject, not_after of each certificate")


class RedisPayload(BaseModel):
    """The redis family's part of a manifest: what BGSAVE saved and where it came from (no URL, no password)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    container: str = Field(description="the container dump.rdb was fetched from")
    path: str = Field(description="the file fetched inside it, e.g. /data/dump.rdb")
    redis_version: str = Field(description="INFO server's redis_version")
    rdb_version: int = Field(ge=1, description="the RDB format version in the file's header (REDIS0010 -> 10)")
    lastsave: int = Field(ge=0, description="LASTSAVE after our BGSAVE (Unix seconds)")
    rdb_size: int = Field(ge=0, description="bytes of dump.rdb before zstd")
    keys: int | None = Field(default=None, ge=0, description="keys over all databases (INFO keyspace) at the save")


class VolumePayload(BaseModel):
    """The volume family's part of a manifest: which volume, read how, and what consistent mode cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    volume: str = Field(description="the docker volume's name")
    source: str = Field(description="how it was read: `exec CONTAINER` (a running container that mounts it) or "
                        "`helper IMAGE` (a short-lived container from the image of a container that owns it)")
    mount: str = Field(description="where the volume is mounted in that container")
    consistent: bool = Field(description="whether containers were stopped around the read")
    stopped: list[str] = Field(default_factory=list, description="the containers stopped (and started again)")
    downtime_seconds: float = Field(default=0.0, ge=0, description="how long they were down")
    members: int = Field(ge=0, description="tar members (files, folders, links) in the archive")
    tar_bytes: int = Field(ge=0, description="bytes of the tar stream before zstd")


class AdoptedPayload(BaseModel):
    """Where an adopted backup came from (`openwatch-backup adopt`, operations/adopt.py): the guide's own file, which
    was copied, never moved or changed. A second adopt of the same file finds its sha256 here and adds nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="the guide's file, as adopt found it")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of that file's bytes")
    size: int = Field(ge=0, description="its size in bytes")
    taken_at: str = Field(description="when it was taken, from its name (and mtime): the run's created_at")


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest_version: int = MANIFEST_VERSION
    run_id: str
    kind: str
    format: str = Field(description="custom (pg_restore) or plain (psql)")
    compression: str = Field(description="zstd, pg, none: the mode asked for")
    wrapper: str | None = Field(description="zstd when the whole file is a zstd stream, else None")
    trigger: str = Field(default="cli", description="cli, api or schedule")
    created_at: str
    finished_at: str
    database: str
    server_version: str
    pg_dump_version: str
    openwatch_alembic_head: str | None
    artifact: str
    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    row_counts: dict[str, int]
    canary_nonce: str | None
    canary_included: bool
    tables: list[str]
    excluded_table_data: list[str]
    package_version: str
    config: ConfigPayload | None = None  # the config family's payload; None for database dumps
    redis: RedisPayload | None = None  # the redis family's payload; None for the others
    volume: VolumePayload | None = None  # the volume family's payload; None for the others
    # The nightly set this backup belongs to (service/sets.py): `catalog rebuild` recreates the set from it.
    set_id: str | None = None
    # Taken over from the guide's own backups (operations/adopt.py); None for backups openwatch-backup took.
    adopted: AdoptedPayload | None = None

    # A manifest is read from storage, where anyone with write access can put one: every field that becomes a
    # storage key, a catalog id or a time is checked here, so no reader builds a path or a row from it unchecked.
    @field_validator("manifest_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != MANIFEST_VERSION:
            raise ValueError(f"manifest_version {value} is not one this openwatch-backup knows ({MANIFEST_VERSION})")
        return value

    @field_validator("artifact")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if not is_safe_name(value):
            raise ValueError(f"{value!r} is not a plain file name (no '/', no '..', no leading dot)")
        return value

    @field_validator("run_id", "set_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f"{value!r} is not a run id (a UUID)") from None

    @field_validator("created_at", "finished_at")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone")
        return value

    def to_json(self) -> bytes:
        # A dump's manifest has no config key at all: byte for byte what earlier versions wrote and can read.
        optional = ("config", "redis", "volume", "set_id", "adopted")
        leave_out = {name for name in optional if getattr(self, name) is None} or None
        return (self.model_dump_json(indent=2, exclude=leave_out) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, source: str = "manifest") -> Manifest:
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{source} is not JSON ({exc}); restore it from another copy") from None
        version = raw.get("manifest_version") if isinstance(raw, dict) else None
        if isinstance(version, int) and version > MANIFEST_VERSION:
            # Checked before validation so a newer layout gets this message, not "extra field".
            raise ManifestError(f"{source} has manifest_version {version}, newer than this "
                                f"openwatch-backup understands ({MANIFEST_VERSION}); upgrade openwatch-backup")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "document"
            raise ManifestError(f"{source} is not a valid manifest ({where}: {first['msg']})") from None
