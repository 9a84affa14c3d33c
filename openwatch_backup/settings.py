"""The one settings object. Built by the entry layers (CLI, tasks, API), never at import time.

OpenWatch's own variables are read as they are (`OPENWATCH_DATABASE_URL`, `OPENWATCH_DATABASE_SSL_MODE`);
the plugin's own values use the `OPENWATCH_BACKUP_` prefix. A bad value becomes one ConfigError line that
names the variable, what is wrong and an example, and never repeats a secret.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from openwatch_backup.core.dsn import DatabaseTarget, DsnError, parse_database_url
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import ConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")
DEFAULT_TABLES = ("hosts", "scans", "scan_findings")
COUNTED_TABLES = ("hosts", "scans", "scan_findings", "users")
PREFIX = "OPENWATCH_BACKUP_"


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
                             description="Default kind for `backup`: full, plain, schema or tables.")
    tables: Annotated[list[str], NoDecode] = Field(
        default=list(DEFAULT_TABLES),
        description="Comma-separated tables for the `tables` kind (schema-qualified allowed).")
    pg_bin_dir: Path | None = Field(
        default=None,
        description="Folder holding pg_dump/pg_restore/psql; unset: the oldest installed client that is at least "
        "the server's major version.")
    free_space_factor: float = Field(
        default=0.5, ge=0,
        description="Preflight needs free space of this share of pg_database_size (at least 1.0 for compression "
        "none); 0 turns the estimate off.")
    free_space_reserve_mib: int = Field(
        default=64, ge=0, description="Preflight also keeps this much free beyond the estimate, for the rest of "
        "the machine.")
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300,
                                     description="How often a running backup records progress.")
    # --- Celery (tasks.py): schedules are read on every dispatcher tick, so changing them needs no restart.
    queue: str = Field(default="maintenance", description="Celery queue of the plugin's tasks (OpenWatch's worker "
                       "already consumes maintenance).")
    schedule: str = Field(default="0 2 * * *", description="Cron expression (UTC) of the scheduled backup: the "
                          "guide's nightly 02:00.")
    drill_schedule: str = Field(default="0 4 * * 0", description="Cron expression (UTC) of the weekly drill "
                                "(deep verify of the newest backup, timed).")
    verify_after_backup: bool = Field(default=True, description="Queue a verify after every successful backup.")
    prune_after_verify: bool = Field(default=True, description="Apply retention after a scheduled backup verified.")
    stale_after_seconds: float = Field(
        default=120, gt=0, description="A running run whose heartbeat is older than this is marked abandoned by "
        "the sweeper (its worker died).")
    time_limit_seconds: int = Field(default=14400, gt=0, description="Soft time limit of a backup/restore task; "
                                    "the hard limit is 5 minutes more.")
    lock_wait_seconds: float = Field(default=30, ge=0, description="How long a backup, restore or prune waits for "
                                     "another one to finish before it fails.")
    webhook_url: str | None = Field(default=None, description="Where failures and \"no verified backup\" alerts "
                                    "are POSTed as JSON; unset: the log only.")
    alert_after_hours: float = Field(default=26, gt=0, description="Alert when no backup has verified for this "
                                     "long.")
    openwatch_backend_dir: Path = Field(
        default=Path("/openwatch/backend"),
        description="OpenWatch's backend folder: its alembic/versions tell which migration heads the installed code "
        "knows (restore refuses newer dumps), and `restore --migrate` runs the migration command there.")
    migrate_command: str = Field(default="alembic upgrade head",
                                 description="What `restore --migrate` runs in the backend folder after a restore.")
    health_url: str = Field(default="http://localhost:8000/health",
                            description="What `restore --health-check` asks after a restore (expects HTTP 200).")
    rto_minutes: float = Field(
        default=30, gt=0, description="Recovery time objective for a database restore (the guide's 15-30 min for "
        "database corruption); a drill slower than this fails.")
    max_age_hours: float = Field(default=26, gt=0,
                                 description="`check` fails when the newest successful backup is older than this.")
    drill_max_age_days: float = Field(default=90, gt=0,
                                      description="`check` fails when the last passed drill is older than this.")
    # Retention (prune). The backup_settings table's `retention.*` keys override these at run time.
    retention_days: int = Field(default=30, ge=1, description="Database dumps: keep every backup younger than this "
                                "many days (the guide's 30).")
    keep_last: int = Field(default=0, ge=0, description="Also keep the newest N verified backups of each kind; "
                           "0: off.")
    keep_daily: int = Field(default=0, ge=0, description="Also keep the newest verified backup of each of the last "
                            "N days that have one (GFS tier); 0: off.")
    keep_weekly: int = Field(default=0, ge=0, description="Likewise for the last N ISO weeks; 0: off.")
    keep_monthly: int = Field(default=0, ge=0, description="Likewise for the last N months; 0: off.")
    size_budget_gib: float = Field(default=0, ge=0, description="Delete the oldest backups no safety rule protects "
                                   "until the kept ones fit in this many GiB; 0: off.")
    verified_floor: int = Field(default=3, ge=1, description="Never keep fewer than this many verified backups of "
                                "each kind (at least 1; the newest verified one is always kept).")
    config_versions: int = Field(default=10, ge=1, description="Config bundles: keep the newest N verified versions.")
    volume_retention_weeks: int = Field(default=4, ge=1, description="Volume snapshots: keep those younger than "
                                        "this many weeks.")

    @field_validator("database_url")
    @classmethod
    def _url_parses(cls, value: str) -> str:
        try:
            parse_database_url(value)
        except DsnError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("schedule", "drill_schedule")
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        # The full check is celery's crontab (tasks.py, `schedule` CLI); this keeps celery out of every import.
        if len(value.split()) != 5 or not _CRON_FIELD.match(value.replace(" ", "")):
            raise ValueError("is not a 5-field cron expression (minute hour day-of-month month day-of-week), "
                             "e.g. '0 2 * * *'")
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
        return value

    @property
    def target(self) -> DatabaseTarget:
        return parse_database_url(self.database_url, sslmode=self.database_ssl_mode)

    @property
    def postgres_dir(self) -> Path:
        return self.dir / "postgres"


_OWN_NAMES = {"database_url": "OPENWATCH_DATABASE_URL", "database_ssl_mode": "OPENWATCH_DATABASE_SSL_MODE"}
_SECRET_FIELDS = {"database_url", "webhook_url"}  # a webhook URL often carries a token


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


def settings_table_markdown() -> str:
    """The README's settings table, generated so that it cannot drift from the code (a test compares)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, list):
            default = ",".join(default)
        value = getattr(default, "value", default)
        shown = "required" if info.is_required() else ("unset" if default is None else f"`{value}`")
        lines.append(f"| `{env_name(name)}` | {shown} | {info.description} |")
    return "\n".join(lines)
