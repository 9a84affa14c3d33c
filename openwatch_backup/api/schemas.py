"""Request and response bodies (Pydantic v2): the API's OpenAPI description is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from openwatch_backup.core.dump_plan import system_table_problem
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.operations.retention_policy import OVERRIDE_KEYS
from openwatch_backup.settings import Settings

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
CRON = r"^\S+ \S+ \S+ \S+ \S+$"
DATABASE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class CopyOut(BaseModel):
    """One copy of a backup's files (catalog/copies.copy_to_dict): the local file or the off-site object."""

    storage: str = Field(description="local or s3")
    state: str = Field(description="pending, copying, verified, failed or deleted")
    location: str = Field(description="A path or an s3:// URL (never a credential)")
    size_bytes: int | None
    sha256: str | None
    attempts: int
    error: str | None = Field(description="Why the copy or its check failed (state failed)")
    created_at: datetime | None
    updated_at: datetime | None
    verified_at: datetime | None = Field(description="When its size and sha256 were first checked")
    reverified_at: datetime | None = Field(description="The last full re-read that matched (verify --copy s3)")
    deleted_at: datetime | None


class RetentionOut(BaseModel):
    """What the newest prune plan decided for a backup (service/retention: the plan is stored on the prune run)."""

    action: str = Field(description="keep or delete")
    reason: str = Field(description="Why, in the policy's words: e.g. 'keep_last 7', 'pinned', 'older than 14 days'")
    protected: bool = False
    prune_run: str = Field(description="The prune run whose plan this is")
    planned_at: datetime | None = None


class RunSummaryOut(BaseModel):
    """The few details a list row needs (GET runs); the rest of `details` comes from GET runs/{id}."""

    set_id: str | None = Field(default=None, description="A set member: its set's id")
    deep: bool | None = Field(default=None, description="A verify: deep (a restore into a scratch database)")
    result: str | None = Field(default=None, description="A verify: passed or failed")
    reason: str | None = Field(default=None, description="A verify that failed: why (checksum, unreadable, ...)")
    message: str | None = Field(default=None, description="A verify that failed: one line")
    backup_run: str | None = Field(default=None, description="A verify or restore: the backup it concerns")
    read_from: str | None = Field(default=None, description="A verify: the copy read (local or s3)")
    artifact: str | None = Field(default=None, description="A backup: its file's name")
    rate_bytes_per_s: int | None = None
    estimate_bytes: int | None = Field(default=None, description="A backup: the size estimate (progress, ETA)")
    retention: RetentionOut | None = Field(default=None, description="A backup (GET runs): the newest prune "
                                           "plan's decision for it; null when no plan has seen it")


class RunOut(BaseModel):
    id: str
    kind: str
    status: str
    trigger: str
    requested_by: str | None
    parent_id: str | None
    phase: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    duration_seconds: float | None
    bytes_done: int
    artifact_location: str | None
    size_bytes: int | None
    sha256: str | None
    pinned: bool
    pruned_at: datetime | None
    details: dict[str, Any] | None = Field(description="Everything recorded on the run (GET runs/{id} and the "
                                           "answers of POST); null in GET runs, whose items carry `summary`")
    summary: RunSummaryOut = Field(default_factory=RunSummaryOut)
    error_code: str | None
    error: str | None
    copies: list[CopyOut] = Field(default_factory=list, description="A backup's copies, local first (GET runs and "
                                  "GET runs/{id}; empty for other runs and in other answers)")
    members: list[RunOut] | None = Field(default=None, description="A set's member backups, oldest first, each with "
                                         "parent_id the set (GET runs?group=sets and GET runs/{id} of a set; null "
                                         "otherwise)")
    set_offsite: bool | None = Field(default=None, description="A set with its members: every succeeded member's "
                                     "off-site copy is verified (null when members is null)")


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end.")


class LogOut(BaseModel):
    run_id: str
    lines: list[str]


class FieldErrorOut(BaseModel):
    field: str = Field(description="The bad field: schedule.backup, retention.days, limit; empty for the whole body")
    message: str = Field(description="What is wrong, in words: 'must be at most 36,500' (the input is not repeated)")


class ValidationErrorOut(BaseModel):
    detail: str = Field(description="One line naming each bad field and what is wrong (the input is not repeated)")
    errors: list[FieldErrorOut] = Field(default_factory=list, description="Each bad field and its problem, for a "
                                        "form to show under its input")


class ErrorOut(BaseModel):
    detail: str
    code: str | None = None
    run: RunOut | None = Field(default=None, description="The run already in progress (409).")


class BackupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: BackupKind | None = None
    compression: Compression | None = None
    tables: list[Annotated[str, Field(pattern=IDENTIFIER)]] | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("tables")
    @classmethod
    def _no_system_catalogs(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:  # the same rule as OPENWATCH_BACKUP_TABLES (pg_catalog.pg_authid: password hashes)
            problem = system_table_problem(name)
            if problem:
                raise ValueError(problem)
        return value


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deep: bool = False


class PruneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apply: Literal[True] = Field(description="Deleting is never implicit: send true to apply the plan.")


class RestoreIn(BaseModel):
    """Either `confirm` (replace the live database: type its name) or `into` (a new database; nothing is replaced,
    so nothing to confirm), never both: the same rule as the CLI's --confirm / --into."""

    model_config = ConfigDict(extra="forbid")
    confirm: str | None = Field(default=None, min_length=1, max_length=63,
                                description="The live database's name, typed: restore over it (the old one is kept).")
    into: str | None = Field(default=None, pattern=DATABASE_NAME,
                             description="Restore into this new database instead (it must not exist yet).")
    terminate_connections: bool = False
    safety_backup: bool = True

    @model_validator(mode="after")
    def _confirm_or_into(self) -> RestoreIn:
        if (self.confirm is None) == (self.into is None):
            raise ValueError("give either confirm (the live database's name, to restore over it) or into (a new "
                             "database), not both" if self.into else "give confirm (the live database's name, to "
                             "restore over it) or into (a new database to restore into)")
        return self


class RestoreCheckItemOut(BaseModel):
    name: str = Field(description="allowed, restorable, verified, file, compatible, target, sessions (replace) or "
                      "idle")
    ok: bool
    detail: str = Field(description="One line: what was found, or what is wrong and what to do")


class RestoreCheckOut(BaseModel):
    """What a restore of this backup needs, checked now and nothing changed (POST runs/{id}/restore refuses with
    409 on the same failing checks, 403 on `allowed`)."""

    backup_id: str
    mode: Literal["into", "replace"]
    into: str | None = Field(description="The new database's name checked (mode into)")
    live_database: str = Field(description="The live database's name: type it to replace it")
    ok: bool = Field(description="Every check passed")
    checks: list[RestoreCheckItemOut]


class ScheduleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup: str = Field(pattern=CRON, description="Cron (UTC) of the scheduled backup")
    drill: str = Field(pattern=CRON, description="Cron (UTC) of the weekly drill")


class ScheduleIn(BaseModel):
    """A change of one schedule or both: the one left out keeps its value."""

    model_config = ConfigDict(extra="forbid")
    backup: str | None = Field(default=None, pattern=CRON, description="Cron (UTC) of the scheduled backup")
    drill: str | None = Field(default=None, pattern=CRON, description="Cron (UTC) of the weekly drill")


class SettingProblemOut(BaseModel):
    """A setting in force that cannot be used as it is (written around the API, e.g. by psql)."""

    key: str = Field(description="The backup_settings key (schedule.backup, retention.days) or environment variable")
    detail: str = Field(description="One line: what is wrong, what is used meanwhile, how to fix it")
    allowed: str = Field(description="The values the setting allows")


class OffsiteOut(BaseModel):
    """Where off-site copies go (OPENWATCH_BACKUP_S3_*). Credentials are boto3's and never appear here."""

    configured: bool = Field(description="OPENWATCH_BACKUP_S3_BUCKET is set: backups are copied off-site")
    bucket: str | None = None
    prefix: str | None = None
    region: str | None = None
    endpoint: str | None = Field(default=None, description="The S3-compatible endpoint; null: AWS")


class ConfigStateOut(BaseModel):
    """Whether config bundles can be taken, and what they pack. The passphrase itself never appears: only the
    name of the setting it comes from."""

    passphrase_set: bool = Field(description="A usable passphrase is configured: config bundles can be taken")
    passphrase_source: str | None = Field(default=None, description="The setting the passphrase comes from "
                                          "(OPENWATCH_BACKUP_PASSPHRASE_FILE or OPENWATCH_BACKUP_PASSPHRASE)")
    passphrase_problem: str | None = Field(default=None, description="One line: why no bundle can be taken, and "
                                           "the fix (null when passphrase_set)")
    passphrase_warnings: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list, description="The files and folders a bundle packs "
                             "(OPENWATCH_BACKUP_CONFIG_PATHS, then OPENWATCH_BACKUP_ENV_FILE)")
    env_snapshot: bool = Field(default=True, description="openwatch.env (the worker's OPENWATCH_* settings) goes in")
    cert_warn_days: int = 30
    versions_kept: int = Field(default=10, description="Retention keeps this many verified versions")


class SettingsOut(BaseModel):
    schedule: ScheduleSettings = Field(description="The schedules in force: a stored one the crontab refuses shows "
                                                   "the environment's that replaces it (see problems)")
    schedule_source: dict[str, str]
    next_runs: dict[str, datetime] = Field(description="Per schedule; a schedule that cannot be evaluated (see "
                                                       "problems) has none")
    retention: dict[str, Any] = Field(description="The values in force, or as stored when a stored value is out of "
                                                  "its bounds (see problems)")
    allow_restore: bool
    problems: list[SettingProblemOut] = Field(default_factory=list, description="Stored or environment settings "
                                              "that cannot be used as they are; empty when all are valid")
    offsite: OffsiteOut = Field(default_factory=lambda: OffsiteOut(configured=False),
                                description="Off-site storage (read-only: set in the environment)")
    config: ConfigStateOut | None = Field(default=None, description="Config bundles: whether a passphrase is set "
                                          "(read-only: set in the environment)")
    limits: dict[str, NumberLimitsOut] = Field(default_factory=dict, description="Per retention key: the bounds "
                                               "PUT /settings accepts (a form's min, max and step)")


class NumberLimitsOut(BaseModel):
    """A numeric setting's bounds, read from its Field: the admin page's inputs use them, so they cannot drift."""

    min: float | None = Field(description="The smallest value accepted (inclusive)")
    max: float | None = Field(description="The largest value accepted (inclusive)")
    step: str = Field(description="1 for whole numbers, any for decimals (an <input type=number> step)")


class CronPreviewOut(BaseModel):
    """A cron expression in words, as celery's crontab (beat) reads it, and when it fires next."""

    text: str = Field(description="e.g. 'daily at 01:30 UTC', 'every Sunday at 03:00 UTC'")
    next_runs: list[datetime] = Field(description="The next fire times (UTC)")
    time_of_day: str | None = Field(default=None, description="HH:MM (UTC) when it fires at one time of day")
    weekdays: bool = Field(default=False, description="The days are weekdays: a local time may fall on another day")


def _retention_field(field: str) -> Any:
    """A retention override, with the type and bounds of its environment variable (finite, a sane maximum)."""
    info = Settings.model_fields[field]
    annotated = Annotated.__class_getitem__((info.annotation, *info.metadata))  # type: ignore[attr-defined]
    return (annotated | None, Field(default=None, description=info.description))


# `retention.days` in backup_settings is `days` here: one field per retention.* key, with the same bounds.
RetentionIn = create_model(
    "RetentionIn", __config__=ConfigDict(extra="forbid"),
    **{key.removeprefix("retention."): _retention_field(field) for key, field in OVERRIDE_KEYS.items()})


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: ScheduleIn | None = None
    retention: RetentionIn | None = None
    allow_restore: bool | None = None


class CheckActionOut(BaseModel):
    """One `openwatch-backup ...` command named in an item's fix, for the page to offer (api/check_links.py)."""

    command: str = Field(description="The command as the fix says it, without the backticks")
    verb: str = Field(description="Its subcommand: verify, show, offsite, backup, drill, prune, ...")
    run_id: str | None = Field(default=None, description="The full id of the run it names (from the id's first "
                               "characters); null when it names none, or none or several runs match")


class CheckItemOut(BaseModel):
    key: str
    title: str
    cadence: str
    status: str
    detail: str
    fix: str
    actions: list[CheckActionOut] = Field(default_factory=list, description="The commands in `fix`, with their run")


class AuditStatusOut(BaseModel):
    """Whether OpenWatch's audit log takes our records: the last one it did not take (null: none failed)."""

    last_error: str | None = None
    last_error_at: datetime | None = None
    last_error_action: str | None = None


class RtoOut(BaseModel):
    """One row of the guide's RTO table: the last measured recovery time against its target."""

    scenario: str = Field(description="container_restart, database_corruption, host_failure or volume_loss")
    state: str = Field(description="ok; warn (never measured, older than rto_max_age_days, or over target); "
                       "stated (container restart: orchestration's, not measured)")
    line: str = Field(description="e.g. 'volume loss: restored in 42 s (target 15-30 min) 3 days ago'")
    seconds: float | None = None
    guide_rto: str
    run_id: str | None = None
    measured_at: str | None = None
    target: str | None = Field(default=None, description="The target in force: the guide's range while the "
                               "configured minutes are its upper end, else those minutes (e.g. '15-30 min')")


class BackupPointOut(BaseModel):
    """A succeeded database backup's size and duration: GET status's last backup and health chart."""

    id: str
    kind: str
    finished_at: datetime | None
    size_bytes: int | None
    duration_seconds: float | None


StepName = Literal["preflight", "dump", "manifest", "verify", "offsite", "prune"]
StepState = Literal["pending", "running", "done", "failed", "skipped"]


class StepOut(BaseModel):
    """One step of a backup and what follows it (issue 14 item 4, live progress)."""

    name: StepName
    state: StepState
    run_id: str | None = Field(default=None, description="The run that carries the step: the backup, or its "
                               "verify, off-site or prune run")
    note: str | None = Field(default=None, description="Why it was skipped or failed, or that it is queued")


class LiveOut(BaseModel):
    """GET status: the newest database backup and its chain (verify, off-site, prune), for the live card."""

    run: RunOut = Field(description="The backup, as a list row (summary, no details)")
    steps: list[StepOut]
    active: bool = Field(description="The backup or a step after it is still queued, running or about to be queued")
    estimate_bytes: int | None = Field(default=None, description="What bytes_done should reach: pg_dump's output "
                                       "of the newest succeeded backup of the same kind and compression")
    estimate_from: str | None = Field(default=None, description="That backup's id")


class StatusOut(BaseModel):
    newest_verified_at: datetime | None
    newest_verified_age_hours: float | None
    threshold_hours: float
    healthy: bool = Field(description="A backup verified within threshold_hours and no checklist item failing")
    failing_checks: list[str] = Field(description="Keys of the checklist items that fail (empty when healthy, unless "
                                                  "no backup verified in time)")
    running: RunOut | None
    next_runs: dict[str, datetime] = Field(description="Per schedule; none for a schedule that cannot be evaluated "
                                                       "(failing_checks has settings_valid)")
    storage_used_bytes: int
    storage_free_bytes: int | None
    checklist: list[CheckItemOut]
    rto: list[RtoOut] = Field(default_factory=list, description="The guide's RTO table, measured (one per row)")
    audit: AuditStatusOut = AuditStatusOut()
    verdict: str = Field(default="", description="healthy in words, with the checklist: 'Healthy', 'Unhealthy: 1 "
                         "check failing', 'Unhealthy: no verified backup in 26 h, 2 checks failing' (warnings added)")
    last_backup: BackupPointOut | None = Field(default=None, description="The newest succeeded database backup")
    recent_backups: list[BackupPointOut] = Field(default_factory=list, description="The newest succeeded database "
                                                 "backups (at most 30), newest first: the health chart's series")
    size_budget_bytes: int | None = Field(default=None, description="Retention's size budget in force "
                                          "(retention.size_budget_gib); null: no budget")
    live: LiveOut | None = Field(default=None, description="The newest database backup and the steps after it "
                                 "(null before the first backup)")


class ProbeStepOut(BaseModel):
    name: str = Field(description="put, head, get or delete")
    ok: bool
    seconds: float
    code: str | None = Field(default=None, description="The failure's stable code, e.g. storage_unreachable, "
                             "storage_tls, storage_access_denied, storage_credentials, storage_no_bucket, "
                             "storage_clock_skew")
    error: str | None = Field(default=None, description="One line: what failed and how to fix it")


class OffsiteTestOut(BaseModel):
    """POST offsite/test: put, head, get and delete of a small probe object, stopping at the first failure."""

    ok: bool
    location: str = Field(description="The probe object's s3:// address")
    steps: list[ProbeStepOut]
    summary: str


class CertificateOut(BaseModel):
    subject: str | None
    member: str | None = Field(description="The file in the bundle holding it")
    not_after: str | None
    days_left: int | None = Field(description="Whole days until it expires; negative once expired")
    expiring: bool = Field(description="Expires within cert_warn_days (or has expired)")


class VerifyStateOut(BaseModel):
    state: str = Field(description="passed, failed, queued or running")
    run_id: str
    at: datetime | None
    reason: str | None = Field(default=None, description="Why it failed: passphrase, checksum, unreadable, ...")
    message: str | None = None


class ConfigVersionOut(BaseModel):
    run_id: str
    artifact: str | None
    trigger: str
    requested_by: str | None
    created_at: datetime | None
    finished_at: datetime | None
    size_bytes: int | None
    sha256: str | None
    key_id: str | None = Field(description="Derived from the passphrase (never the passphrase): which one opens it")
    members: int | None
    paths: list[str]
    env_snapshot: bool | None
    certificates: list[CertificateOut]
    verify: VerifyStateOut | None = Field(description="The newest verify of this bundle; null: never verified")
    copies: list[CopyOut]
    present: bool = Field(description="Its files are still stored (retention has not taken them)")


class ConfigOut(ConfigStateOut):
    """GET config: the bundles as versions, newest first, and the settings they are taken with."""

    active: RunOut | None = Field(default=None, description="The config backup queued or running, if any")
    versions: list[ConfigVersionOut]
