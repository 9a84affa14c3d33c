"""SQLAlchemy 2 models of the plugin's own tables in OpenWatch's database.

The plugin keeps its own MetaData (not OpenWatch's `app.database.Base`), so OpenWatch's `create_all`
never creates these tables behind Alembic's back; the migration in alembic/ creates them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "abandoned")
TRIGGERS = ("cli", "api", "schedule")
COPY_STORAGES = ("local", "s3")
COPY_STATES = ("pending", "copying", "verified", "failed", "deleted")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    })


class BackupRun(Base):
    """One recorded operation: a backup, and later a verify, prune, restore or drill."""

    __tablename__ = "backup_runs"
    __table_args__ = (
        CheckConstraint(f"status::text = ANY (ARRAY{list(STATUSES)}::text[])", name="status"),
        CheckConstraint(f"trigger::text = ANY (ARRAY{list(TRIGGERS)}::text[])", name="trigger"),
        Index("ix_backup_runs_created_at_id", text("created_at DESC"), text("id DESC")),
        Index("ix_backup_runs_kind_status", "kind", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4,
                                          server_default=text("gen_random_uuid()"))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    trigger: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("backup_runs.id", ondelete="SET NULL"))
    phase: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    artifact_location: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BackupCanary(Base):
    """The nonce written just before pg_dump starts; a restore that holds it holds that dump."""

    __tablename__ = "backup_canary"

    run_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


class BackupSetting(Base):
    """A setting changed at run time (schedule, retention); the environment gives the defaults."""

    __tablename__ = "backup_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    updated_by: Mapped[str | None] = mapped_column(String(255))


class BackupCopy(Base):
    """One copy of a backup's files in one storage: the local file, the off-site object.

    A backup run has at most one copy per storage. `upload_id` is the intent an upload records before its first
    part is sent, so the sweeper can abort the multipart upload of a copy whose process died.
    """

    __tablename__ = "backup_copies"
    __table_args__ = (
        CheckConstraint(f"storage::text = ANY (ARRAY{list(COPY_STORAGES)}::text[])", name="storage"),
        CheckConstraint(f"state::text = ANY (ARRAY{list(COPY_STATES)}::text[])", name="state"),
        UniqueConstraint("run_id", "storage", name="uq_backup_copies_run_id_storage"),
        Index("ix_backup_copies_storage_state", "storage", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4,
                                          server_default=text("gen_random_uuid()"))
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("backup_runs.id", ondelete="CASCADE"))
    storage: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    key: Mapped[str] = mapped_column(Text)  # the artifact's storage key, e.g. postgres/openwatch_....dump.zst
    location: Mapped[str] = mapped_column(Text)  # a path or an s3:// URL, never a credential
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    upload_id: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reverified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the last full re-read
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
