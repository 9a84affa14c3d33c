"""The kinds of backup and the compression modes, as the guide names them."""

from __future__ import annotations

from enum import StrEnum


class BackupKind(StrEnum):
    FULL = "full"  # pg_dump -Fc: the guide's "Full Database Dump"
    PLAIN = "plain"  # pg_dump --clean --if-exists: "Plain-Text SQL Dump"
    SCHEMA = "schema"  # pg_dump --schema-only: "Schema-Only Dump"
    TABLES = "tables"  # pg_dump -Fc, other tables' data left out: "Specific Table Backup" (see dump_plan.py)
    CONFIG = "config"  # the encrypted tar.gz of .env, keys and certificates: "Configuration Backup" (secrets/)
    VOLUME = "volume"  # a docker volume as a .tar.zst: "Volume Backup" (operations/volume_snapshot.py)
    REDIS = "redis"  # BGSAVE's dump.rdb from the redis container, zstd-wrapped (operations/redis_snapshot.py)

    @property
    def is_database(self) -> bool:
        """A pg_dump of OpenWatch's database (the postgres family); config bundles, Redis and volume snapshots are
        not."""
        return self not in (BackupKind.CONFIG, BackupKind.REDIS, BackupKind.VOLUME)

    @property
    def is_archive(self) -> bool:
        """Custom-format archives are read by pg_restore; the others are SQL read by psql."""
        return self in (BackupKind.FULL, BackupKind.TABLES)


DATABASE_KINDS = tuple(kind for kind in BackupKind if kind.is_database)
# Runs that are not backups: what `list --kind` accepts and the metrics count besides the backup kinds.
OPERATION_KINDS = ("verify", "restore", "drill", "drill_volume", "drill_host", "prune", "offsite", "set", "recover",
                   "adopt")


class Compression(StrEnum):
    ZSTD = "zstd"
    PG = "pg"
    NONE = "none"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class Trigger(StrEnum):
    CLI = "cli"
    API = "api"
    SCHEDULE = "schedule"
