"""One error hierarchy with stable codes.

Entry layers map these to exit statuses (CLI) and HTTP statuses (API); the code string is what
monitoring and the catalog store, so it never changes once released. Messages are one line that
names the problem and the fix, and never contain a secret (callers pass them through the redactor).
"""

from __future__ import annotations


class BackupError(Exception):
    """Base of every error this package raises on purpose."""

    code = "backup_error"
    exit_status = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(BackupError):
    """A setting is missing or malformed."""

    code = "config"
    exit_status = 2


class DatabaseUnavailable(BackupError):
    """The database does not answer."""

    code = "database_unavailable"
    exit_status = 3


class CatalogMissing(BackupError):
    """The backup_runs table has not been created yet."""

    code = "catalog_missing"
    exit_status = 3


class ClientVersionMismatch(BackupError):
    """pg_dump/pg_restore are older than the server, or missing."""

    code = "client_version"
    exit_status = 3


class StorageError(BackupError):
    """The backup target cannot be written or read."""

    code = "storage"
    exit_status = 4


class InsufficientSpace(StorageError):
    """Free space is below the estimate for this backup."""

    code = "insufficient_space"


# Off-site (S3) failures, one class per cause an operator fixes differently. storage/s3.py raises them.
class StorageUnreachable(StorageError):
    """The endpoint cannot be reached: DNS, refused or reset connections, timeouts, 5xx after every retry."""

    code = "storage_unreachable"


class StorageTLSError(StorageError):
    """The TLS handshake with the endpoint failed (certificate, or plain HTTP on an https:// endpoint)."""

    code = "storage_tls"


class StorageAccessDenied(StorageError):
    """The endpoint answered 403 AccessDenied (policy, Object Lock, or KMS permission)."""

    code = "storage_access_denied"


class StorageCredentialsError(StorageError):
    """No credentials were found, or the endpoint refused them (InvalidAccessKeyId, SignatureDoesNotMatch)."""

    code = "storage_credentials"


class StorageBucketMissing(StorageError):
    """The configured bucket does not exist (NoSuchBucket)."""

    code = "storage_no_bucket"


class StorageClockSkew(StorageError):
    """The endpoint refused the request because this host's clock is off (RequestTimeTooSkewed)."""

    code = "storage_clock_skew"


class StorageObjectMissing(StorageError):
    """The object to read does not exist."""

    code = "storage_object_missing"


class StorageIntegrityError(StorageError):
    """An object's size or sha256 differs from what was written or recorded (truncated or altered)."""

    code = "storage_integrity"


class DumpFailed(BackupError):
    """pg_dump (or psql/pg_restore) exited non-zero, was killed, or its stream broke."""

    code = "dump_failed"
    exit_status = 5


class RunNotFound(BackupError):
    """No run with that id (or unique prefix) exists in the catalog."""

    code = "run_not_found"
    exit_status = 6


class ManifestError(BackupError):
    """A manifest is unreadable, of an unknown version, or inconsistent."""

    code = "manifest"
    exit_status = 7


class RestoreFailed(BackupError):
    """pg_restore or psql failed, the artifact could not be read, or the restored data did not check out."""

    code = "restore_failed"
    exit_status = 8


class VerifyFailed(BackupError):
    """A verify found a problem; `reason` is one of core.verify_result.VerifyReason."""

    code = "verify_failed"
    exit_status = 9

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RestoreRefused(BackupError):
    """A guard stopped a restore before it changed anything (confirmation, sessions, compatibility)."""

    code = "restore_refused"
    exit_status = 10


class RunCancelled(BackupError):
    """The run was cancelled (a revoked task, SIGTERM, Ctrl-C): its child processes are gone, its files removed."""

    code = "cancelled"
    exit_status = 130


class DatabaseInUse(RestoreFailed):
    """Another session holds what we must rename, drop or copy (a database in use, a lock, a deadlock)."""

    code = "database_in_use"


class DatabaseRefused(BackupError):
    """PostgreSQL answered but refused or cancelled a statement (a privilege, a timeout, a full disk)."""

    code = "database_refused"
    exit_status = 3


class ArtifactUnreadable(StorageError):
    """A stored stream does not decompress (a flipped byte, a truncated file)."""

    code = "artifact_unreadable"


class InternalError(BackupError):
    """An error of ours that no rule translates: a bug. The message still is one line, never a traceback."""

    code = "internal"


class DockerUnavailable(BackupError):
    """The Docker Engine API does not answer (no socket, no permission, the daemon down)."""

    code = "docker_unavailable"
    exit_status = 3


class ContainerMissing(BackupError):
    """A container or volume a setting names does not exist, or is not running when it must be."""

    code = "container_missing"
    exit_status = 3


class RedisSnapshotFailed(BackupError):
    """Redis did not answer, refused BGSAVE, its save failed or did not finish in time, or dump.rdb is wrong."""

    code = "redis_snapshot"
    exit_status = 5


class VolumeSnapshotFailed(BackupError):
    """A volume could not be read or written (tar failed, a container would not stop or start)."""

    code = "volume_snapshot"
    exit_status = 5
