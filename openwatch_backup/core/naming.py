"""The one place that builds artifact file names.

Names follow the guide (`openwatch_YYYYMMDD_HHMMSS`, UTC) with an extension that tells which tool reads
the file: `.dump` is a custom-format archive pg_restore reads as is (whatever compression is inside it),
`.dump.zst` is such an archive wrapped in zstd, `.sql`/`.sql.gz`/`.sql.zst` are plain SQL for psql.
Order and age always come from the catalog's recorded times, never from these names.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from openwatch_backup.core.kinds import BackupKind

MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".partial"
# Where each family's artifacts and manifests live in storage (a folder locally, a key prefix in S3).
POSTGRES_PREFIX = "postgres"
CONFIG_PREFIX = "config"
REDIS_PREFIX = "redis"
VOLUME_PREFIX = "volumes"
FAMILY_PREFIXES = (POSTGRES_PREFIX, CONFIG_PREFIX, REDIS_PREFIX, VOLUME_PREFIX)
CONFIG_EXTENSION = ".tar.gz.enc"
REDIS_EXTENSION = ".rdb.zst"  # dump.rdb as BGSAVE wrote it, wrapped in zstd
VOLUME_EXTENSION = ".tar.zst"  # `zstd -dc FILE | tar t` reads it

_PREFIX = {
    BackupKind.FULL: "openwatch",
    BackupKind.PLAIN: "openwatch",
    BackupKind.SCHEMA: "schema",
    BackupKind.TABLES: "scan_data",
    BackupKind.CONFIG: "config",
    BackupKind.REDIS: "redis",
    BackupKind.VOLUME: "volume",  # volume_<volume>_YYYYMMDD_HHMMSS.tar.zst: never openwatch_ or config_
}
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d_%H%M%S")


def artifact_name(kind: BackupKind, extension: str, when: datetime, attempt: int = 0) -> str:
    """`openwatch_20261126_020000.dump.zst`; attempt > 0 adds `_2`, `_3`... for same-second runs."""
    suffix = f"_{attempt + 1}" if attempt else ""
    return f"{_PREFIX[kind]}_{timestamp(when)}{suffix}{extension}"


def volume_artifact_name(volume: str, when: datetime, attempt: int = 0) -> str:
    """`volume_openwatch_app_data_20261126_030000.tar.zst`: the volume's name inside, so a listing tells them apart."""
    return artifact_name(BackupKind.VOLUME, VOLUME_EXTENSION, when, attempt).replace(
        f"{_PREFIX[BackupKind.VOLUME]}_", f"{_PREFIX[BackupKind.VOLUME]}_{volume}_", 1)


def manifest_name(artifact: str) -> str:
    return artifact + MANIFEST_SUFFIX


def family_prefix(artifact: str) -> str:
    """The folder (key prefix) an artifact named `artifact` lives in: config bundles under config/, volume
    snapshots under volumes/, dumps under postgres/. The name alone tells, so every reader of a catalog row or a
    manifest finds the file."""
    if artifact.startswith(_PREFIX[BackupKind.CONFIG] + "_") and artifact.endswith(CONFIG_EXTENSION):
        return CONFIG_PREFIX
    if artifact.startswith(_PREFIX[BackupKind.REDIS] + "_") and artifact.endswith(REDIS_EXTENSION):
        return REDIS_PREFIX
    if artifact.startswith(_PREFIX[BackupKind.VOLUME] + "_") and artifact.endswith(VOLUME_EXTENSION):
        return VOLUME_PREFIX
    return POSTGRES_PREFIX


def artifact_key(artifact: str) -> str:
    """The storage key of the artifact named `artifact`."""
    return f"{family_prefix(artifact)}/{artifact}"


def manifest_key(artifact: str) -> str:
    """The storage key of the manifest written beside the artifact named `artifact`."""
    return f"{family_prefix(artifact)}/{manifest_name(artifact)}"


def is_safe_name(name: str) -> bool:
    """A plain file name: no separators, no leading dot, no `..` (used to refuse path tricks)."""
    return bool(_SAFE.match(name)) and ".." not in name
