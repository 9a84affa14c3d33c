"""What the settings form needs beyond the values: the retention bounds (from the Settings fields, so the page's
inputs cannot drift from what PUT /settings accepts), the cron preview, and cron refusals tied to their field."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from openwatch_backup.api.errors import FieldProblem, field_error_response
from openwatch_backup.api.schemas import CronPreviewOut, NumberLimitsOut
from openwatch_backup.cron_words import cron_error, preview
from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.retention_policy import OVERRIDE_KEYS
from openwatch_backup.settings import Settings


def _limits(field: str) -> NumberLimitsOut:
    info = Settings.model_fields[field]
    bounds: dict[str, Any] = {}
    for item in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(item, name, None) is not None:
                bounds[name] = getattr(item, name)
    # A strict bound has no <input> equivalent; none of the retention fields has one (they are all ge/le).
    return NumberLimitsOut(min=bounds.get("ge", bounds.get("gt")), max=bounds.get("le", bounds.get("lt")),
                           step="1" if info.annotation is int else "any")


def retention_limits() -> dict[str, NumberLimitsOut]:
    """Per retention key (days, keep_last, ...): the bounds of its Settings field, which RetentionIn also uses."""
    return {key.removeprefix("retention."): _limits(field) for key, field in OVERRIDE_KEYS.items()}


def cron_problems(schedules: dict[str, str | None]) -> list[FieldProblem]:
    """Each schedule (schedule.backup, schedule.drill) celery's crontab refuses, with why in words."""
    problems = []
    for name, expression in schedules.items():
        problem = cron_error(expression) if expression is not None else None
        if problem:
            problems.append(FieldProblem(name, problem, f"{name} {expression!r} is not a valid cron expression"))
    return problems


def cron_refused(problems: list[FieldProblem]) -> JSONResponse:
    """The 422 of a PUT /settings with bad crons: one line (as before: "schedule.backup '61 * * * *' is not a valid
    cron expression (...)") and each field's words for the form."""
    detail = "; ".join(f"{problem.where} ({problem.message})" for problem in problems)
    return field_error_response(detail, problems, code=ConfigError.code)


def cron_preview(expression: str) -> CronPreviewOut | JSONResponse:
    """The expression in words with its next 3 runs, or a 400 whose one line says what is wrong."""
    try:
        found = preview(expression)
    except ConfigError as exc:
        return JSONResponse({"detail": exc.message}, status_code=400, headers={"X-Error-Code": "invalid_cron"})
    return CronPreviewOut(text=found.text, next_runs=found.next_runs, time_of_day=found.time_of_day,
                          weekdays=found.weekdays)
