"""The retention policy in force: the environment's values, overridden by `retention.*` keys in backup_settings.

An override is checked against the same limits as its environment variable (a floor of 0 is refused here
too), and a bad one stops the prune with one line naming the key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from openwatch_backup.core.retention import CONFIG, DATABASE, GIB, VOLUME, Policy, RetentionConfig
from openwatch_backup.errors import ConfigError
from openwatch_backup.settings import Settings, allowed_range, env_name

# backup_settings key -> Settings field
OVERRIDE_KEYS = {
    "retention.days": "retention_days",
    "retention.s3_days": "s3_retention_days",
    "retention.keep_last": "keep_last",
    "retention.keep_daily": "keep_daily",
    "retention.keep_weekly": "keep_weekly",
    "retention.keep_monthly": "keep_monthly",
    "retention.size_budget_gib": "size_budget_gib",
    "retention.verified_floor": "verified_floor",
    "retention.config_versions": "config_versions",
    "retention.volume_weeks": "volume_retention_weeks",
}


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _validate(key: str, field: str, value: Any) -> Any:
    info = Settings.model_fields[field]
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated.__class_getitem__((info.annotation, *info.metadata)))  # type: ignore[attr-defined]
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"])
        raise ConfigError(f"backup_settings {key}: {message} (got {value!r}); store a value from "
                          f"{allowed_range(field)} on the admin page's settings (PUT /settings), or delete the key to "
                          f"use {env_name(field)}") from None


def override_problems(overrides: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, one line, allowed range) for each stored retention value the prune refuses: what GET /settings and
    `check` report, so the value can be fixed from the page that shows it."""
    problems = []
    for key, value in sorted(overrides.items()):
        field = OVERRIDE_KEYS.get(key)
        if field is None:
            continue
        try:
            _validate(key, field, value)
        except ConfigError as exc:
            problems.append((key, exc.message, allowed_range(field)))
    return problems


def effective_values(settings: Settings, overrides: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The retention values in force (by Settings field) and notes about ignored keys."""
    values = {field: getattr(settings, field) for field in OVERRIDE_KEYS.values()}
    notes = []
    for key, value in sorted(overrides.items()):
        field = OVERRIDE_KEYS.get(key)
        if field is None:
            notes.append(f"backup_settings key {key} is not a retention setting this version knows; ignored")
            continue
        values[field] = _validate(key, field, value)
    return values, notes


def retention_config(values: dict[str, Any], remote: bool = False) -> RetentionConfig:
    """The local policy, or with `remote` the off-site one: database dumps by their own age limit
    (s3_retention_days), the same floor, tiers and pins, and no size budget (that is about this host's disk)."""
    tiers = {"keep_last": values["keep_last"], "keep_daily": values["keep_daily"],
             "keep_weekly": values["keep_weekly"], "keep_monthly": values["keep_monthly"]}
    days = int(values["s3_retention_days" if remote else "retention_days"])
    weeks = int(values["volume_retention_weeks"])
    return RetentionConfig(
        policies={
            DATABASE: Policy(max_age=timedelta(days=days), age_label=_plural(days, "day"), **tiers),
            # The guide's "on change, 10 versions": the database tiers (keep_daily...) do not apply to bundles.
            CONFIG: Policy(versions=int(values["config_versions"])),
            VOLUME: Policy(max_age=timedelta(weeks=weeks), age_label=_plural(weeks, "week"), **tiers),
        },
        floor=int(values["verified_floor"]),
        size_budget_bytes=0 if remote else int(float(values["size_budget_gib"]) * GIB),
    )
