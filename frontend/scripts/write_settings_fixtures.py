"""Write the settings form's fixtures (frontend/src/test/fixtures/settings*.json, cron_preview_*.json) from the
API's own code, without a running stack: GET settings is SettingsOut built by its pydantic model with the real
retention_limits() (the defaults' values, schedules "0 2 * * *" and "0 4 * * 0" as in status.json), the previews
are cron_preview()'s answers, and the 422 is what api/errors.py says for retention.days 99999.

    .venv/bin/python frontend/scripts/write_settings_fixtures.py

Next runs depend on today's date: the files were written on 2026-12-01, as status.json was recorded.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fixture_files import save
from pydantic import ValidationError

from openwatch_backup.api.errors import field_problems, validation_detail
from openwatch_backup.api.schemas import OffsiteOut, SettingsIn, SettingsOut
from openwatch_backup.api.settings_form import cron_preview, retention_limits

RETENTION = {"days": 30, "s3_days": 30, "keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0,
             "size_budget_gib": 0, "verified_floor": 3, "config_versions": 10, "volume_weeks": 4}



def settings(retention: dict[str, Any]) -> Any:
    out = SettingsOut(schedule={"backup": "0 2 * * *", "drill": "0 4 * * 0"},  # type: ignore[arg-type]
                      schedule_source={"backup": "environment", "drill": "environment"},
                      next_runs={"backup": "2026-12-02T02:00:00Z", "drill": "2026-12-06T04:00:00Z"},  # type: ignore[dict-item]
                      retention=retention, allow_restore=False, problems=[], offsite=OffsiteOut(configured=False),
                      config=None, limits=retention_limits())
    return json.loads(out.model_dump_json())


def refusal(body: dict[str, Any]) -> Any:
    try:
        SettingsIn.model_validate(body)
    except ValidationError as exc:
        errors = RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
        return {"detail": validation_detail(errors), "errors": [p.as_dict() for p in field_problems(errors)]}
    raise SystemExit(f"{body} was accepted")


def preview(name: str, expr: str) -> None:
    answer = cron_preview(expr)
    query = expr.replace(" ", "%20")
    if isinstance(answer, JSONResponse):
        save(name, "GET", f"/settings/cron-preview?expr={query}", answer.status_code, json.loads(bytes(answer.body)))
    else:
        save(name, "GET", f"/settings/cron-preview?expr={query}", 200, json.loads(answer.model_dump_json()))


def main() -> None:
    save("settings", "GET", "/settings", 200, settings(RETENTION))
    save("settings_put_200", "PUT", "/settings", 200, settings({**RETENTION, "days": 60}))
    save("settings_put_422", "PUT", "/settings", 422, refusal({"retention": {"days": 99999}}))
    preview("cron_preview_daily", "0 2 * * *")
    preview("cron_preview_sunday", "0 4 * * 0")
    preview("cron_preview_weekdays", "30 1 * * 1-5")
    preview("cron_preview_400", "61 * * * *")


if __name__ == "__main__":
    main()
