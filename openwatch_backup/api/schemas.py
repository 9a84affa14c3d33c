"""Request and response bodies (Pydantic v2): the API's OpenAPI description is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openwatch_backup.core.kinds import BackupKind, Compression

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
CRON = r"^\S+ \S+ \S+ \S+ \S+$"


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
    details: dict[str, Any]
    error_code: str | None
    error: str | None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end.")


class LogOut(BaseModel):
    run_id: str
    lines: list[str]


class ValidationErrorOut(BaseModel):
    detail: str | list[dict[str, Any]] = Field(description="One line naming the bad value, or FastAPI's list of "
                                                           "field errors for a malformed request")


class ErrorOut(BaseModel):
    detail: str
    code: str | None = None
    run: RunOut | None = Field(default=None, description="The run already in progress (409).")


class BackupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: BackupKind | None = None
    compression: Compression | None = None
    tables: list[Annotated[str, Field(pattern=IDENTIFIER)]] | None = Field(default=None, min_length=1, max_length=100)


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deep: bool = False


class PruneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apply: Literal[True] = Field(description="Deleting is never implicit: send true to apply the plan.")


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str = Field(min_length=1, max_length=63, description="The database name, typed.")
    into: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    terminate_connections: bool = False
    safety_backup: bool = True


class ScheduleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup: str = Field(pattern=CRON, description="Cron (UTC) of the scheduled backup")
    drill: str = Field(pattern=CRON, description="Cron (UTC) of the weekly drill")


class SettingsOut(BaseModel):
    schedule: ScheduleSettings
    schedule_source: dict[str, str]
    next_runs: dict[str, datetime]
    retention: dict[str, Any]
    allow_restore: bool


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: ScheduleSettings | None = None
    retention: dict[str, int | float] | None = None
    allow_restore: bool | None = None


class CheckItemOut(BaseModel):
    key: str
    title: str
    cadence: str
    status: str
    detail: str
    fix: str


class StatusOut(BaseModel):
    newest_verified_at: datetime | None
    newest_verified_age_hours: float | None
    threshold_hours: float
    healthy: bool
    running: RunOut | None
    next_runs: dict[str, datetime]
    storage_used_bytes: int
    storage_free_bytes: int | None
    checklist: list[CheckItemOut]
