"""Admin endpoints: status (health and checklist), settings (schedule, retention, allow restore), prune."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, status

from openwatch_backup.api.auth import Principal
from openwatch_backup.api.check_links import checklist_out
from openwatch_backup.api.compressed import CompressedRoute
from openwatch_backup.api.config import config_state
from openwatch_backup.api.context import ApiContext
from openwatch_backup.api.errors import translated
from openwatch_backup.api.health import recent_backups, size_budget_bytes, verdict
from openwatch_backup.api.live_chain import live_of
from openwatch_backup.api.offsite import offsite_out
from openwatch_backup.api.runs import ALLOW_RESTORE_KEY, COMMON_RESPONSES, _out, conflict
from openwatch_backup.api.schemas import (
    AuditStatusOut,
    CronPreviewOut,
    ErrorOut,
    PruneIn,
    RtoOut,
    RunOut,
    ScheduleSettings,
    SettingProblemOut,
    SettingsIn,
    SettingsOut,
    StatusOut,
)
from openwatch_backup.api.settings_form import cron_preview, cron_problems, cron_refused, retention_limits
from openwatch_backup.core.kinds import RunStatus, Trigger
from openwatch_backup.cron_words import MAX_LENGTH
from openwatch_backup.operations.retention_policy import OVERRIDE_KEYS, effective_values
from openwatch_backup.operations.stored_settings import settings_problems
from openwatch_backup.scheduling import BACKUP_KEY, DRILL_KEY, current_schedules
from openwatch_backup.service import BackupService


def _settings_out(service: BackupService) -> SettingsOut:
    """The settings as stored, and the stored values that cannot be used: a bad value written around the API
    (psql) is shown with its problem instead of failing the answer, so the page can load the form to fix it."""
    schedules = current_schedules(service.settings, service.settings_store)
    problems = settings_problems(service.settings, service.settings_store)
    bad = {problem.key for problem in problems}
    stored = service.settings_store.all("retention.")
    values, _ = effective_values(service.settings, {k: v for k, v in stored.items() if k not in bad})
    retention = {key.removeprefix("retention."): stored[key] if key in bad else values[field]
                 for key, field in OVERRIDE_KEYS.items()}
    return SettingsOut(schedule=ScheduleSettings.model_construct(backup=schedules.backup, drill=schedules.drill),
                       schedule_source={"backup": schedules.backup_source, "drill": schedules.drill_source},
                       next_runs=service.next_scheduled(), retention=retention,
                       allow_restore=bool(service.settings_store.get(ALLOW_RESTORE_KEY, False)),
                       problems=[SettingProblemOut(**asdict(problem)) for problem in problems],
                       offsite=offsite_out(service), config=config_state(service), limits=retention_limits())


def _audit_status(api: ApiContext) -> AuditStatusOut:
    failure = getattr(api.auth, "last_audit_error", None)  # OpenWatchAuth keeps it; the token auth has none
    if failure is None:
        return AuditStatusOut()
    return AuditStatusOut(last_error=failure.error, last_error_at=failure.at, last_error_action=failure.action)


def admin_router(api: ApiContext) -> APIRouter:
    # Every route needs a caller (401/403 otherwise); mutating routes also take the principal to audit it.
    user = Depends(api.principal)
    router = APIRouter(tags=["Backups"], dependencies=[user], responses=COMMON_RESPONSES,
                       route_class=CompressedRoute)

    @router.get("/status", response_model=StatusOut, summary="Health: newest verified backup, schedule, checklist")
    def get_status() -> StatusOut:
        with translated():
            service = api.service()
            now = datetime.now(UTC)
            verified = service.database_verifies()  # a config bundle's verify says nothing of the dumps
            newest_at = verified[0].finished_at if verified else None
            age = (now - newest_at).total_seconds() / 3600 if newest_at else None
            running = service.recorder.list(limit=1, status=RunStatus.RUNNING.value)
            next_runs = service.next_scheduled()
            used = sum(obj.size for obj in service.storage.list())
            checklist = checklist_out(service.recorder, service.checklist())  # fix commands as actions
            context = service.context  # the targets in force (a configured RTO minutes replaces the guide's)
            rto = [RtoOut(**row.as_dict(), target=row.scenario.target_text(context))
                   for row in service.rto_table(now)]
            recent = recent_backups(service)  # one query, five columns, 30 rows: this answer is polled
            budget = size_budget_bytes(service)
            live = live_of(service)  # the newest backup and its chain: the live card (issue 14 item 4)
        # Healthy means the badge and the checklist agree: a fresh verified backup and no failing item.
        failing = [item.key for item in checklist if item.status == "fail"]
        threshold = service.settings.alert_after_hours
        return StatusOut(newest_verified_at=newest_at, newest_verified_age_hours=round(age, 2) if age else age,
                         threshold_hours=threshold, healthy=age is not None and age <= threshold and not failing,
                         failing_checks=failing,
                         running=_out(running[0]) if running else None,
                         next_runs=next_runs,
                         storage_used_bytes=used, storage_free_bytes=service.storage.free_bytes(),
                         checklist=checklist, rto=rto, audit=_audit_status(api),
                         verdict=verdict(age, threshold, len(failing),
                                         sum(item.status == "warn" for item in checklist)),
                         last_backup=recent[0] if recent else None, recent_backups=recent,
                         size_budget_bytes=budget, live=live)

    @router.get("/settings", response_model=SettingsOut, summary="Schedule, retention and restore settings")
    def get_settings() -> SettingsOut:
        with translated():
            return _settings_out(api.service())

    @router.get("/settings/cron-preview", response_model=CronPreviewOut,
                responses={400: {"model": ErrorOut, "description": "Not a cron expression celery's crontab takes"}},
                summary="A cron expression in words, as beat reads it (UTC), and its next 3 runs (read-only)")
    def get_cron_preview(expr: str = Query(max_length=MAX_LENGTH, description="e.g. 30 1 * * *")) -> Any:
        with translated():
            return cron_preview(expr)

    @router.put("/settings", response_model=SettingsOut,
                summary="Change settings (stored in the database; beat picks them up without a restart)")
    def put_settings(body: SettingsIn, request: Request, principal: Principal = user) -> Any:
        with translated():
            service = api.service()
            store = service.settings_store
            changes: dict[str, Any] = {}
            if body.schedule is not None:
                # Both are checked first, each refusal tied to its field (the page shows it under that input).
                refused = cron_problems({"schedule.backup": body.schedule.backup,
                                         "schedule.drill": body.schedule.drill})
                if refused:
                    return cron_refused(refused)
                for key, cron in ((BACKUP_KEY, body.schedule.backup), (DRILL_KEY, body.schedule.drill)):
                    if cron is not None:  # the schedule left out keeps its value
                        changes[key] = cron
            retention = body.retention.model_dump(exclude_none=True) if body.retention is not None else {}
            for name, value in retention.items():
                changes[f"retention.{name}"] = value
            # Every new value is checked before any is stored: a bad one changes nothing. A bad value already
            # stored (psql) does not block other changes: GET /settings lists it, and this PUT can replace it.
            effective_values(service.settings, {k: v for k, v in changes.items() if k.startswith("retention.")})
            unknown = [k for k in changes if k.startswith("retention.") and k not in OVERRIDE_KEYS]
            if unknown:
                from openwatch_backup.errors import ConfigError

                known = ", ".join(k.removeprefix("retention.") for k in OVERRIDE_KEYS)
                raise ConfigError(f"unknown retention setting {unknown[0].removeprefix('retention.')}; known: {known}")
            if body.allow_restore is not None:
                changes[ALLOW_RESTORE_KEY] = body.allow_restore
            for key, value in changes.items():
                store.set(key, value, updated_by=principal.name)
            api.auth.audit(request, principal, "settings_changed", changes)
            return _settings_out(service)

    @router.post("/prune/plan", response_model=RunOut, summary="Plan retention now (nothing is deleted)")
    def prune_plan(request: Request, principal: Principal = user) -> RunOut:
        with translated():
            run = api.service().prune(apply=False, trigger=Trigger.API, requested_by=principal.name)
            api.auth.audit(request, principal, "prune_planned", {"run_id": str(run.id)})
            return _out(run)

    @router.post("/prune", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut,
                 responses={409: {"model": ErrorOut, "description": "A prune is already queued or running"}},
                 summary="Apply retention (deletes what the plan says)")
    def prune_apply(body: PruneIn, request: Request, principal: Principal = user) -> Any:
        with translated():
            service = api.service()
            run_id = service.request_prune(apply=body.apply, trigger=Trigger.API, requested_by=principal.name)
            if run_id is None:
                active = (service.recorder.list(limit=1, kind="prune", status=RunStatus.RUNNING.value)
                          or service.recorder.list(limit=1, kind="prune", status=RunStatus.QUEUED.value))
                return conflict("a prune", active[0] if active else None)
            api.auth.audit(request, principal, "prune_requested", {"run_id": str(run_id)})
            api.submit("prune", run_id)
            return _out(service.get_run(str(run_id)))

    return router
