"""The one settings object. Built by the entry layers (CLI, tasks, API), never at import time.

OpenWatch's own variables are read as they are (`OPENWATCH_DATABASE_URL`, `OPENWATCH_DATABASE_SSL_MODE`);
the plugin's own values use the `OPENWATCH_BACKUP_` prefix. A bad value becomes one ConfigError line that
names the variable, what is wrong and an example, and never repeats a secret.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from openwatch_backup.core.dsn import SSL_MODES, DatabaseTarget, DsnError, parse_database_url
from openwatch_backup.core.dump_plan import system_table_problem
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.naming import POSTGRES_PREFIX
from openwatch_backup.errors import ConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")
DEFAULT_TABLES = ("hosts", "scans", "scan_findings")
COUNTED_TABLES = ("hosts", "scans", "scan_findings", "users")
PREFIX = "OPENWATCH_BACKUP_"


def cron_shape_problem(expression: str) -> str | None:
    """Why a value is not even shaped like a 5-field cron expression, or None. Cheap: no celery."""
    fields = expression.split()
    if len(fields) != 5 or not _CRON_FIELD.match("".join(fields)):
        return "is not a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"
    return None


def cron_problem(expression: str) -> str | None:
    """Why celery's crontab (what beat's dispatcher evaluates) refuses a 5-field expression, or None.

    Imports celery (0.4 s), so loading the settings checks only the shape; the full check runs where a schedule
    is used: openwatch_backup/scheduling.py's current_schedules (dispatcher, `schedule`, status, `check`).
    """
    shape = cron_shape_problem(expression)
    if shape:
        return shape
    fields = expression.split()
    from celery.schedules import crontab

    try:
        crontab(minute=fields[0], hour=fields[1], day_of_month=fields[2], month_of_year=fields[3],
                day_of_week=fields[4])
    except ValueError as exc:
        return f"is not a valid cron expression ({str(exc).rstrip('.')}), e.g. '0 2 * * *'"
    return None


def _split_names(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting, its environment variable and its default. The README's table is generated from this."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True,
                                      populate_by_name=True)

    database_url: str = Field(
        validation_alias=AliasChoices("OPENWATCH_DATABASE_URL", "database_url"),
        description="OpenWatch's database, as OpenWatch writes it (postgresql://user:password@host:port/db).",
    )
    database_ssl_mode: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENWATCH_DATABASE_SSL_MODE", "database_ssl_mode"),
        description="libpq sslmode for every connection (OpenWatch's own variable); unset: libpq's default.",
    )
    dir: Path = Field(default=Path("/openwatch/data/backups"),
                      description="Backup directory; database dumps go to DIR/postgres (created 0700).")
    compression: Compression = Field(
        default=Compression.ZSTD,
        description="zstd (pg_dump -Z0 into multi-threaded zstd), pg (pg_dump's own gzip), or none.")
    zstd_level: int = Field(default=3, ge=1, le=19, description="zstd level for the zstd mode.")
    zstd_threads: int = Field(default=0, ge=0, le=64,
                              description="zstd worker threads; 0 means one per CPU core.")
    kind: BackupKind = Field(default=BackupKind.FULL,
                             description="Default kind for `backup`: full, plain, schema or tables (database "
                             "dumps), config (the encrypted config bundle) or redis.")
    tables: Annotated[list[str], NoDecode] = Field(
        default=list(DEFAULT_TABLES),
        description="Comma-separated tables for the `tables` kind (schema-qualified allowed).")
    pg_bin_dir: Path | None = Field(
        default=None,
        description="Folder holding pg_dump/pg_restore/psql; unset: the oldest installed client that is at least "
        "the server's major version.")
    free_space_factor: float = Field(
        default=0.5, ge=0, le=10, allow_inf_nan=False,
        description="Preflight needs free space of this share of pg_database_size (at least 1.0 for compression "
        "none); 0 turns the estimate off.")
    free_space_reserve_mib: int = Field(
        default=64, ge=0, le=1_048_576,
        description="Preflight also keeps this much free beyond the estimate, for the rest of the machine.")
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300, allow_inf_nan=False,
                                     description="How often a running backup records progress.")
    # --- Celery (tasks.py): schedules are read on every dispatcher tick, so changing them needs no restart.
    queue: str = Field(default="maintenance", description="Celery queue of the plugin's tasks (OpenWatch's worker "
                       "already consumes maintenance).")
    # Loading checks a schedule's shape only: celery's crontab (0.4 s to import) judges it where it is used, in
    # scheduling.current_schedules, with the same one line naming the variable; `check` reports it too.
    schedule: str = Field(default="0 2 * * *", validate_default=False, description="Cron expression (UTC) of the "
                          "scheduled backup: the guide's nightly 02:00.")
    drill_schedule: str = Field(default="0 4 * * 0", validate_default=False, description="Cron expression (UTC) of "
                                "the weekly drill (deep verify of the newest backup, timed).")
    verify_after_backup: bool = Field(default=True, description="Queue a verify after every successful backup.")
    prune_after_verify: bool = Field(default=True, description="Apply retention after a scheduled backup verified.")
    stale_after_seconds: float = Field(
        default=120, gt=0, le=86_400, allow_inf_nan=False,
        description="A running run whose heartbeat is older than this is marked abandoned by the sweeper (its "
        "worker died).")
    time_limit_seconds: int = Field(
        default=14400, gt=0, le=604_800,
        description="Soft time limit of a backup/restore task; the hard limit is 5 minutes more.")
    lock_wait_seconds: float = Field(
        default=30, ge=0, le=86_400, allow_inf_nan=False,
        description="How long a backup, restore or prune waits for another one to finish before it fails.")
    webhook_url: str | None = Field(default=None, description="Where failures and \"no verified backup\" alerts "
                                    "are POSTed as JSON; unset: the log only.")
    alert_after_hours: float = Field(default=26, gt=0, le=8_760, allow_inf_nan=False,
                                     description="Alert when no backup has verified for this long.")
    openwatch_backend_dir: Path = Field(
        default=Path("/openwatch/backend"),
        description="OpenWatch's backend folder: its alembic/versions tell which migration heads the installed code "
        "knows (restore refuses newer dumps), and `restore --migrate` runs the migration command there.")
    migrate_command: str = Field(default="alembic upgrade head",
                                 description="What `restore --migrate` runs in the backend folder after a restore.")
    health_url: str = Field(default="http://localhost:8000/health",
                            description="What `restore --health-check` asks after a restore (expects HTTP 200).")
    rto_minutes: float = Field(
        default=30, gt=0, le=10_080, allow_inf_nan=False,
        description="Recovery time objective for a database restore (the guide's 15-30 min for database "
        "corruption); a drill slower than this fails.")
    max_age_hours: float = Field(default=26, gt=0, le=8_760, allow_inf_nan=False,
                                 description="`check` fails when the newest successful backup is older than this.")
    drill_max_age_days: float = Field(default=90, gt=0, le=3_650, allow_inf_nan=False,
                                      description="`check` fails when the last passed drill is older than this.")
    # The guide's RTO table (operations/rto.py): the volume and full-system drills, their targets and cadence.
    volume_rto_minutes: float = Field(
        default=30, gt=0, le=10_080, allow_inf_nan=False,
        description="Recovery time objective for a volume restore (the guide's 15-30 min for volume loss); a "
        "volume drill slower than this fails.")
    host_rto_minutes: float = Field(
        default=60, gt=0, le=10_080, allow_inf_nan=False,
        description="Recovery time objective for a full recover (the guide's 30-60 min for full host failure); "
        "a host drill slower than this fails.")
    rto_max_age_days: float = Field(
        default=90, gt=0, le=3_650, allow_inf_nan=False,
        description="`check` and the status warn when a scenario's last measured recovery time is older than this.")
    volume_drill_schedule: str = Field(
        default="30 4 * * 0", validate_default=False, description="Cron expression (UTC) of the volume drill "
        "(the newest verified volume snapshot restored into a scratch volume, compared, timed); only where the "
        "Docker API is configured.")
    host_drill_schedule: str = Field(
        default="0 5 1 * *", validate_default=False, description="Cron expression (UTC) of the full-system drill "
        "(recover from the off-site store into scratch targets, timed); only with off-site storage on.")
    # Retention (prune). The backup_settings table's `retention.*` keys override these at run time, checked
    # against the same bounds (operations/retention_policy.py). The maxima keep every date computation in range.
    retention_days: int = Field(default=30, ge=1, le=36_500, description="Database dumps: keep every backup "
                                "younger than this many days (the guide's 30). With S3 on, this is the local "
                                "limit (7 suggested); a local file stays until its off-site copy verified.")
    s3_retention_days: int = Field(default=30, ge=1, le=36_500, description="Database dumps: keep every off-site "
                                   "(S3) copy younger than this many days (the guide's 30).")
    keep_last: int = Field(default=0, ge=0, le=10_000,
                           description="Also keep the newest N verified backups of each kind; 0: off.")
    keep_daily: int = Field(default=0, ge=0, le=36_500, description="Also keep the newest verified backup of each "
                            "of the last N days that have one (GFS tier); 0: off.")
    keep_weekly: int = Field(default=0, ge=0, le=5_200, description="Likewise for the last N ISO weeks; 0: off.")
    keep_monthly: int = Field(default=0, ge=0, le=1_200, description="Likewise for the last N months; 0: off.")
    size_budget_gib: float = Field(default=0, ge=0, le=1_048_576, allow_inf_nan=False,
                                   description="Delete the oldest backups no safety rule protects until the kept "
                                   "ones fit in this many GiB; 0: off.")
    verified_floor: int = Field(default=3, ge=1, le=1_000, description="Never keep fewer than this many verified "
                                "backups of each kind (at least 1; the newest verified one is always kept).")
    config_versions: int = Field(default=10, ge=1, le=10_000,
                                 description="Config bundles: keep the newest N verified versions.")
    volume_retention_weeks: int = Field(default=4, ge=1, le=5_200, description="Volume snapshots: keep those "
                                        "younger than this many weeks.")

    # --- Config bundles (secrets/, operations/config_backup.py): .env, TLS certificates and SSH keys, encrypted.
    config_paths: str = Field(default="", description="Comma-separated files and folders packed into a config "
                              "bundle; empty: OpenWatch's /openwatch/security/keys and /openwatch/security/certs.")
    env_file: Path | None = Field(default=None, description="OpenWatch's .env file, packed with the config paths; "
                                  "unset: only the worker's own settings go in (OPENWATCH_BACKUP_CONFIG_ENV_SNAPSHOT).")
    config_env_snapshot: bool = Field(default=True, description="Store the worker's OPENWATCH_*, POSTGRES_* and "
                                      "REDIS_PASSWORD variables as openwatch.env in the bundle (the master key "
                                      "with them), for when the worker never sees the .env file.")
    passphrase_file: Path | None = Field(default=None, description="File (mode 600) whose first line is the "
                                         "passphrase of config bundles, read as `openssl enc -pass file:` reads "
                                         "it; preferred over OPENWATCH_BACKUP_PASSPHRASE.")
    passphrase: SecretStr | None = Field(default=None, description="The passphrase itself, when no file can be "
                                         "mounted; never logged or stored.")
    config_check_minutes: int = Field(default=60, ge=1, le=10_080, description="How often the dispatcher checks "
                                      "whether the config inputs changed, and takes a bundle when they did.")
    cert_warn_days: int = Field(default=30, ge=1, le=365, description="`check` warns this many days before a "
                                "certificate in the newest config bundle expires.")

    @field_validator("config_paths")
    @classmethod
    def _config_paths_absolute(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if part and not part.startswith("/"):
                raise ValueError(f"{part!r} is not an absolute path; list absolute paths, e.g. "
                                 "/openwatch/security/keys,/openwatch/security/certs,/openwatch/.env")
        return value

    @field_validator("env_file", "passphrase_file", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("passphrase", mode="before")
    @classmethod
    def _empty_passphrase_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value == "" else value

    # --- Inside OpenWatch's containers (executors/, docker_api.py): the Docker API from DOCKER_HOST or the socket.
    executor: str = Field(default="auto", description="Where pg_dump, pg_restore and psql run: local (a client "
                          "installed beside the worker), docker (inside OPENWATCH_BACKUP_DB_CONTAINER, through the "
                          "Docker API), or auto (local when a suitable client exists, else docker).")
    db_container: str = Field(default="openwatch-db", description="The database container the docker executor "
                              "runs pg_dump, pg_restore and psql in.")

    @field_validator("executor")
    @classmethod
    def _executor_known(cls, value: str) -> str:
        if value not in ("auto", "local", "docker"):
            raise ValueError("must be auto, local or docker, e.g. docker")
        return value

    @field_validator("db_container")
    @classmethod
    def _container_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("is not a container name (letters, digits, _ . -), e.g. openwatch-db")
        return value

    # --- Redis snapshot (operations/redis_snapshot.py): off by default, the guide says Redis "generally does not
    # require backup" (it holds Celery's queue and caches, which OpenWatch rebuilds).
    redis: bool = Field(default=False, description="on: the nightly scheduled backup also takes a Redis snapshot "
                        "(BGSAVE, then dump.rdb from OPENWATCH_BACKUP_REDIS_CONTAINER through the Docker API).")
    # --- Nightly sets (service/sets.py): the default; off is the plain scheduled dump (and Redis snapshot) as before
    # sets, for an admin who wants the old separate runs back.
    nightly_set: bool = Field(default=True, description="on: the scheduled backup is a set (one run of kind set): "
                              "the database dump, the config bundle when its inputs changed, the Redis snapshot when "
                              "OPENWATCH_BACKUP_REDIS is on; verified, copied off-site and pruned together. off: "
                              "separate scheduled runs (the dump, and the Redis snapshot when on).")
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENWATCH_REDIS_URL", "redis_url"),
        description="OpenWatch's Redis, as OpenWatch writes it (redis://:password@host:6379/0); the password is "
        "read from it, never passed on a command line.")
    redis_container: str = Field(default="openwatch-redis", description="The Redis container whose /data/dump.rdb "
                                 "the snapshot fetches after BGSAVE.")
    redis_save_timeout_seconds: float = Field(default=300, gt=0, le=86_400, allow_inf_nan=False,
                                              description="How long a Redis snapshot waits for BGSAVE to finish "
                                              "(LASTSAVE to move).")

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url_scheme(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL, e.g. redis://:PASSWORD@redis:6379/0")
        return value

    @field_validator("redis_container")
    @classmethod
    def _redis_container_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("is not a container name (letters, digits, _ . -), e.g. openwatch-redis")
        return value

    # --- Volume snapshots (operations/volume_snapshot.py): docker volumes as .tar.zst through the Docker API.
    volumes: str = Field(default="openwatch_app_data,openwatch_ssh_known_hosts", description="Comma-separated "
                         "docker volumes a volume snapshot reads (as `docker volume ls` names them).")
    volume_schedule: str = Field(default="0 3 * * 0", validate_default=False, description="Cron expression (UTC) "
                                 "of the weekly volume snapshot; queued only where the Docker API is reachable "
                                 "(DOCKER_HOST or /var/run/docker.sock).")
    volume_consistent: bool = Field(default=False, description="Stop OPENWATCH_BACKUP_VOLUME_STOP around each "
                                    "volume's read (they are started again in every outcome), and include the "
                                    "database container's data volume (postgres_data).")
    volume_stop: str = Field(default="openwatch-backend,openwatch-celery-beat,openwatch-db", description="Comma-"
                             "separated containers consistent mode stops (never the worker running the snapshot).")

    @field_validator("volumes", "volume_stop")
    @classmethod
    def _docker_names(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if part and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", part):
                raise ValueError(f"{part!r} is not a docker name (letters, digits, _ . -); list names comma-"
                                 "separated, e.g. openwatch_app_data,openwatch_ssh_known_hosts")
        return value

    # --- Off-site copies on S3 (storage/s3.py, storage/factory.py). Credentials are never settings: boto3's own
    # chain finds them (AWS_* environment, ~/.aws files, instance or container role).
    s3_bucket: str | None = Field(default=None, description="S3 bucket for off-site copies; setting it turns "
                                  "off-site on. Credentials come from boto3's chain (AWS_ACCESS_KEY_ID/"
                                  "AWS_SECRET_ACCESS_KEY, ~/.aws, or an instance or container role), never from here.")
    s3_prefix: str = Field(default="openwatch-backup", description="Key prefix in the bucket; the plugin writes, "
                           "lists and prunes only below it.")
    s3_region: str | None = Field(default=None, description="The bucket's region; unset: boto3's own (AWS_REGION, "
                                  "~/.aws/config).")
    s3_endpoint_url: str | None = Field(default=None, description="Endpoint of an S3-compatible store (MinIO, Ceph, "
                                        "Wasabi), e.g. https://minio.example.com:9000; unset: AWS.")
    s3_addressing_style: str = Field(default="auto", description="auto, path (most self-hosted stores) or virtual "
                                     "(bucket.host).")
    s3_storage_class: str | None = Field(default=None, description="Storage class of uploaded objects (e.g. "
                                         "STANDARD_IA); unset: the bucket's default.")
    s3_sse: str = Field(default="none", description="Server-side encryption of uploaded objects: none, AES256 "
                        "(SSE-S3) or aws:kms (SSE-KMS, needs OPENWATCH_BACKUP_S3_KMS_KEY_ID).")
    s3_kms_key_id: str | None = Field(default=None, validate_default=True,
                                      description="KMS key id or ARN for OPENWATCH_BACKUP_S3_SSE=aws:kms.")

    @field_validator("s3_bucket", "s3_region", "s3_endpoint_url", "s3_storage_class", "s3_kms_key_id", mode="before")
    @classmethod
    def _s3_empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("s3_bucket")
    @classmethod
    def _s3_bucket_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        example = "e.g. openwatch-backups"
        if value.startswith("s3://") or "/" in value:
            raise ValueError(f"must be the bare bucket name, without s3:// or a path (the prefix is "
                             f"OPENWATCH_BACKUP_S3_PREFIX), {example}")
        if (not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) or ".." in value
                or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value)):
            raise ValueError("is not a valid bucket name (3-63 lowercase letters, digits, dots or hyphens, starting "
                             f"and ending with a letter or digit, not an IP address), {example}")
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _s3_prefix_path(cls, value: str) -> str:
        cleaned = value.strip().strip("/")
        if cleaned and any(part in ("", ".", "..") for part in cleaned.split("/")):
            raise ValueError("must be a key prefix without empty, '.' or '..' parts, e.g. openwatch-backup/prod")
        return cleaned

    @field_validator("s3_region")
    @classmethod
    def _s3_region_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", value):
            raise ValueError("is not a region name, e.g. eu-central-1")
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("must start with http:// or https:// and name a host, e.g. https://minio.example.com:9000")
        if parsed.username is not None or parsed.password is not None:
            raise ValueError("must not carry credentials (boto3's chain provides them: AWS_ACCESS_KEY_ID/"
                             "AWS_SECRET_ACCESS_KEY), e.g. https://minio.example.com:9000")
        if parsed.query or parsed.fragment:
            raise ValueError("must not have a query or fragment, e.g. https://minio.example.com:9000")
        try:
            parsed.port  # noqa: B018 - raises for a port that is not a number or out of range
        except ValueError:
            raise ValueError("has an invalid port, e.g. https://minio.example.com:9000") from None
        return value.rstrip("/")

    @field_validator("s3_addressing_style")
    @classmethod
    def _s3_addressing(cls, value: str) -> str:
        if value not in ("auto", "path", "virtual"):
            raise ValueError("must be auto, path or virtual, e.g. path")
        return value

    @field_validator("s3_storage_class")
    @classmethod
    def _s3_storage_class_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z][A-Z0-9_]*", value):
            raise ValueError("is not a storage class name (capitals, digits and _), e.g. STANDARD_IA")
        return value

    @field_validator("s3_sse")
    @classmethod
    def _s3_sse_mode(cls, value: str) -> str:
        if value not in ("none", "AES256", "aws:kms"):
            raise ValueError("must be none, AES256 or aws:kms, e.g. AES256")
        return value

    @field_validator("s3_kms_key_id")
    @classmethod
    def _s3_kms_needs_mode(cls, value: str | None, info: Any) -> str | None:
        sse = info.data.get("s3_sse")
        if sse == "aws:kms" and not value:
            raise ValueError("is required when OPENWATCH_BACKUP_S3_SSE=aws:kms, e.g. "
                             "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        if value and sse is not None and sse != "aws:kms":
            raise ValueError(f"is set but OPENWATCH_BACKUP_S3_SSE is {sse!r}; set OPENWATCH_BACKUP_S3_SSE=aws:kms "
                             "or unset the key id")
        return value

    @field_validator("kind")
    @classmethod
    def _kind_runs_alone(cls, value: BackupKind) -> BackupKind:
        if value is BackupKind.VOLUME:
            raise ValueError("volume snapshots are taken per volume (OPENWATCH_BACKUP_VOLUMES, on "
                             "OPENWATCH_BACKUP_VOLUME_SCHEDULE), not as the default kind; use full, plain, schema, "
                             "tables, config or redis")
        return value

    @field_validator("database_url")
    @classmethod
    def _url_parses(cls, value: str) -> str:
        try:
            parse_database_url(value)
        except DsnError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("database_ssl_mode")
    @classmethod
    def _sslmode_known(cls, value: str | None) -> str | None:
        if value and value not in SSL_MODES:
            raise ValueError(f"is not a libpq sslmode; use one of {', '.join(SSL_MODES)}")
        return value or None

    @field_validator("schedule", "drill_schedule", "volume_schedule", "volume_drill_schedule", "host_drill_schedule")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        problem = cron_shape_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("tables", mode="before")
    @classmethod
    def _split_tables(cls, value: Any) -> Any:
        return _split_names(value)

    @field_validator("tables")
    @classmethod
    def _tables_are_identifiers(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no table; give at least one, e.g. hosts,scans,scan_findings")
        for name in value:
            if not _IDENTIFIER.match(name):
                raise ValueError(f"{name!r} is not a table name (letters, digits, _ and one optional schema.)")
            problem = system_table_problem(name)  # pg_catalog.pg_authid holds role password hashes
            if problem:
                raise ValueError(problem)
        return value

    @property
    def target(self) -> DatabaseTarget:
        return parse_database_url(self.database_url, sslmode=self.database_ssl_mode)

    @property
    def postgres_dir(self) -> Path:
        return self.dir / POSTGRES_PREFIX

    def volume_names(self) -> list[str]:
        return [part.strip() for part in self.volumes.split(",") if part.strip()]

    def volume_stop_names(self) -> list[str]:
        return [part.strip() for part in self.volume_stop.split(",") if part.strip()]

    def config_inputs(self) -> list[Path]:
        """The paths a config bundle packs: the listed ones (or OpenWatch's defaults), then the .env file."""
        from openwatch_backup.secrets.bundle_inputs import config_paths

        paths = config_paths(self.config_paths)
        if self.env_file is not None:
            env = Path(os.path.abspath(self.env_file))
            if env not in paths:
                paths.append(env)
        return paths


_OWN_NAMES = {"database_url": "OPENWATCH_DATABASE_URL", "database_ssl_mode": "OPENWATCH_DATABASE_SSL_MODE",
              "redis_url": "OPENWATCH_REDIS_URL"}
# A webhook URL often carries a token; a Redis URL its password.
_SECRET_FIELDS = {"database_url", "webhook_url", "s3_endpoint_url", "passphrase", "redis_url"}


def env_name(field: str) -> str:
    """The environment variable that sets a field."""
    return _OWN_NAMES.get(field, PREFIX + field.upper())


def _describe(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else "?"
    field = {env: name for name, env in _OWN_NAMES.items()}.get(field, field)  # errors name the alias
    name = env_name(field)
    if error["type"] == "missing":
        hint = " (e.g. postgresql://openwatch:PASSWORD@database:5432/openwatch)" if field == "database_url" else ""
        return f"{name} is not set{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if field in _SECRET_FIELDS:
        return f"{name} {message}"
    return f"{name}: {message} (got {error.get('input')!r})"


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment (and explicit overrides); raise ConfigError on any problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e) for e in exc.errors())) from None


def allowed_range(field: str) -> str:
    """A numeric setting's bounds as the README shows them (`1 to 19`, `over 0, up to 300`); "" otherwise."""
    bounds = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in Settings.model_fields[field].metadata
              if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")}
    low = f"{bounds['Ge']:,}" if "Ge" in bounds else (f"over {bounds['Gt']:,}" if "Gt" in bounds else "")
    high = f"{bounds['Le']:,}" if "Le" in bounds else ""
    if not low and not high:
        return ""
    return f"{low} to {high}" if "Ge" in bounds else f"{low}, up to {high}"


def settings_table_markdown() -> str:
    """The README's settings table, generated so that it cannot drift from the code (a test compares)."""
    lines = ["| variable | default | allowed | meaning |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, list):
            default = ",".join(default)
        value = getattr(default, "value", default)
        shown = "required" if info.is_required() else ("unset" if default is None else
                                                       "empty" if value == "" else f"`{value}`")
        allowed = allowed_range(name) or _ALLOWED_TEXT.get(name, "")
        lines.append(f"| `{env_name(name)}` | {shown} | {allowed} | {info.description} |")
    return "\n".join(lines)


_ALLOWED_TEXT = {
    "database_url": "postgresql:// URL; special characters percent-encoded",
    "database_ssl_mode": ", ".join(SSL_MODES),
    "compression": "zstd, pg, none",
    "kind": "full, plain, schema, tables, config, redis",
    "config_paths": "absolute paths, comma-separated",
    "schedule": "5-field cron (celery's crontab)",
    "drill_schedule": "5-field cron (celery's crontab)",
    "volume_schedule": "5-field cron (celery's crontab)",
    "volume_drill_schedule": "5-field cron (celery's crontab)",
    "host_drill_schedule": "5-field cron (celery's crontab)",
    "volumes": "docker volume names, comma-separated",
    "volume_stop": "container names, comma-separated",
    "webhook_url": "http:// or https:// URL",
    "s3_bucket": "3-63 of a-z, 0-9, '.', '-'",
    "s3_endpoint_url": "http:// or https:// URL without credentials",
    "s3_addressing_style": "auto, path, virtual",
    "s3_sse": "none, AES256, aws:kms",
    "executor": "auto, local, docker",
    "redis": "on/off, true/false",
    "nightly_set": "on/off, true/false",
    "redis_url": "redis://, rediss:// or unix:// URL",
}
