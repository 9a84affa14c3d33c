"""The live card's truth (issue 14 item 4): the newest database backup, its steps, and the runs that follow it.

A backup records its phases (preflight, canary, dumping, committing, manifest); the worker then queues a verify
(parent_id the backup, requested_by "after backup <id8>"), after a passed verify an off-site copy when a bucket is
set ("after verify <id8>"), and after a scheduled backup the prune ("after verify <id8>" or "after offsite <id8>",
no parent). The page cannot tell those links apart from a hand-started verify, so they are resolved here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from openwatch_backup.api.schemas import LiveOut, RunOut, StepName, StepOut
from openwatch_backup.api.summaries import summary_of
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.serialize import run_to_dict
from openwatch_backup.core.kinds import RunStatus, Trigger
from openwatch_backup.service import BackupService
from openwatch_backup.service.base import DATABASE_KIND_NAMES

BACKUP_STEPS: tuple[StepName, ...] = ("preflight", "dump", "manifest")
FOLLOW_UPS: tuple[StepName, ...] = ("verify", "offsite", "prune")
# The backup's recorded phase -> the step a person reads ("starting" is claim()'s, before preflight).
PHASE_STEP: dict[str, StepName] = {"starting": "preflight", "preflight": "preflight", "canary": "preflight",
                                   "dumping": "dump", "committing": "dump", "manifest": "manifest"}
# A follow-up still missing this long after its predecessor ended was not queued (the worker queues it at once).
QUEUE_GRACE_SECONDS = 120


def _state(run: BackupRun) -> StepOut:
    status = RunStatus(run.status)
    if status is RunStatus.QUEUED:
        return StepOut(name="verify", state="pending", run_id=str(run.id), note="queued")
    if status is RunStatus.RUNNING:
        return StepOut(name="verify", state="running", run_id=str(run.id))
    if status is RunStatus.SUCCEEDED:
        return StepOut(name="verify", state="done", run_id=str(run.id))
    why = "cancelled" if status is RunStatus.CANCELLED else (run.error or status.value)
    return StepOut(name="verify", state="failed", run_id=str(run.id), note=why)


def _step(name: StepName, run: BackupRun) -> StepOut:
    return _state(run).model_copy(update={"name": name})


def _backup_steps(backup: BackupRun) -> list[StepOut]:
    rid = str(backup.id)
    status = RunStatus(backup.status)
    if status is RunStatus.QUEUED:
        return [StepOut(name=name, state="pending", run_id=rid) for name in BACKUP_STEPS]
    if status is RunStatus.SUCCEEDED:
        return [StepOut(name=name, state="done", run_id=rid) for name in BACKUP_STEPS]
    at = BACKUP_STEPS.index(PHASE_STEP.get(backup.phase or "", "preflight"))
    steps = []
    for index, name in enumerate(BACKUP_STEPS):
        if index < at:
            steps.append(StepOut(name=name, state="done", run_id=rid))
        elif index > at:
            running = status is RunStatus.RUNNING
            steps.append(StepOut(name=name, state="pending" if running else "skipped", run_id=rid,
                                 note=None if running else "not reached"))
        elif status is RunStatus.RUNNING:
            steps.append(StepOut(name=name, state="running", run_id=rid))
        else:
            steps.append(_step(name, backup))
    return steps


def _stale(previous: BackupRun | None) -> bool:
    ended = previous.finished_at if previous is not None else None
    return ended is not None and (datetime.now(UTC) - ended).total_seconds() > QUEUE_GRACE_SECONDS


def _child(service: BackupService, kind: str, parent: BackupRun, requested_by: str) -> BackupRun | None:
    found = [run for run in service.recorder.list(limit=20, kind=kind, parent_id=parent.id)
             if run.requested_by == requested_by]
    return found[-1] if found else None  # the oldest: a redelivery never makes a second one, but be sure


def _prune_after(service: BackupService, names: set[str]) -> BackupRun | None:
    found = [run for run in service.recorder.list(limit=20, kind="prune") if run.requested_by in names]
    return found[-1] if found else None


def _follow_ups(service: BackupService, backup: BackupRun) -> list[StepOut]:
    if backup.trigger == Trigger.CLI.value:  # `openwatch-backup backup` runs it in-process: no worker chain
        return [StepOut(name=name, state="skipped", note="started from the CLI, which queues no follow-up")
                for name in FOLLOW_UPS]
    settings = service.settings
    rid = str(backup.id)
    status = RunStatus(backup.status)
    backup_failed = status.is_final and status is not RunStatus.SUCCEEDED
    # A nightly set's member is verified and copied by the set's task, which names itself, and pruned after it.
    member_of = str(backup.parent_id)[:8] if backup.parent_id and (backup.details or {}).get("set_id") else None
    # verify
    verify = _child(service, "verify", backup, f"set {member_of}" if member_of else f"after backup {rid[:8]}")
    if verify is not None:
        verify_step = _step("verify", verify)
        if verify_step.state == "failed":
            details = verify.details or {}
            found = details["verify"] if isinstance(details.get("verify"), dict) else {}
            verify_step.note = found.get("message") or verify.error or verify_step.note
    elif backup_failed:
        verify_step = StepOut(name="verify", state="skipped", note="the backup failed")
    elif not settings.verify_after_backup:
        verify_step = StepOut(name="verify", state="skipped", note="verify after backup is off")
    elif _stale(backup):
        verify_step = StepOut(name="verify", state="skipped", note="not queued")
    else:
        verify_step = StepOut(name="verify", state="pending")
    verified = verify_step.state == "done"
    # off-site
    offsite_by = f"set {member_of}" if member_of else f"after verify {str(verify.id)[:8]}" if verify else None
    offsite = _child(service, "offsite", backup, offsite_by) if offsite_by else None
    if not settings.s3_bucket:
        offsite_step = StepOut(name="offsite", state="skipped", note="no off-site bucket")
    elif offsite is not None:
        offsite_step = _step("offsite", offsite)
    elif verify_step.state in ("failed", "skipped"):
        offsite_step = StepOut(name="offsite", state="skipped", note="needs a verified backup")
    elif verified and _stale(verify):
        offsite_step = StepOut(name="offsite", state="skipped", note="not queued")
    else:
        offsite_step = StepOut(name="offsite", state="pending")
    # prune
    if backup.trigger != Trigger.SCHEDULE.value:
        prune_step = StepOut(name="prune", state="skipped", note="only after a scheduled backup")
    elif not settings.prune_after_verify:
        prune_step = StepOut(name="prune", state="skipped", note="prune after verify is off")
    else:
        names = {f"after verify {str(verify.id)[:8]}"} if verify else set()
        if member_of:
            names = {f"after set {member_of}"}
        elif offsite is not None:
            names.add(f"after offsite {str(offsite.id)[:8]}")
        prune = _prune_after(service, names) if names else None
        before = offsite if settings.s3_bucket else verify
        if prune is not None:
            prune_step = _step("prune", prune)
        elif verify_step.state in ("failed", "skipped"):
            prune_step = StepOut(name="prune", state="skipped", note="needs a verified backup")
        elif _stale(before) or (verified and settings.s3_bucket and offsite is None and _stale(verify)):
            prune_step = StepOut(name="prune", state="skipped", note="not queued (a prune was already under way)")
        else:
            prune_step = StepOut(name="prune", state="pending")
    return [verify_step, offsite_step, prune_step]


def _estimate(service: BackupService, backup: BackupRun) -> tuple[int | None, str | None]:
    """pg_dump's output of the newest succeeded backup of the same kind and compression: what bytes_done (pg_dump's
    output so far) should reach. The preflight's space estimate is of the stored file, and pessimistic."""
    wanted = (backup.details or {}).get("request", {}).get("compression")
    for run in service.recorder.list(limit=10, kind=backup.kind, status=RunStatus.SUCCEEDED.value):
        details = run.details or {}
        size = details.get("bytes_in")
        if run.id != backup.id and details.get("request", {}).get("compression") == wanted \
                and isinstance(size, int) and size > 0:
            return size, str(run.id)
    return None, None


def live_of(service: BackupService) -> LiveOut | None:
    """The newest database backup (a set's member too) and its chain; null before the first backup."""
    newest = service.recorder.list(limit=1, kinds=DATABASE_KIND_NAMES)
    if not newest:
        return None
    backup = newest[0]
    steps = _backup_steps(backup) + _follow_ups(service, backup)
    out = RunOut.model_validate({**run_to_dict(backup, []), "details": None})
    out.summary = summary_of(backup)
    estimate, source = _estimate(service, backup) if not RunStatus(backup.status).is_final else (None, None)
    return LiveOut(run=out, steps=steps, active=any(step.state in ("pending", "running") for step in steps),
                   estimate_bytes=estimate, estimate_from=source)


__all__ = ["live_of"]
