"""Scheduled work for Celery: the dispatcher (database schedules, the config bundle's on-change check), failure
alerts, the sweeper's watchdog."""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.serialize import run_to_dict
from openwatch_backup.core.kinds import BackupKind, RunStatus, Trigger
from openwatch_backup.errors import BackupError, RunNotFound
from openwatch_backup.notify import notify
from openwatch_backup.operations.heartbeat import abandon_dead_cli_runs
from openwatch_backup.operations.sweep import sweep_leftovers
from openwatch_backup.service.base import DATABASE_KIND_NAMES, STALE_ALERT_EVERY, STALE_ALERT_KEY
from openwatch_backup.service.rto import RtoService

log = logging.getLogger(__name__)


class BackupService(RtoService):
    def dispatch_due(self, now: datetime | None = None) -> list[tuple[str, uuid.UUID]]:
        """Queue the scheduled backup and drill if their cron expressions say so. Returns what was queued.

        A schedule that never ran is due at its first fire time after the dispatcher first saw it (installed,
        or changed), never at once: the status's "next backup" is what happens, and a fresh install does not
        back up and drill in its first minute."""
        from openwatch_backup.scheduling import current_schedules, is_due  # imports celery: tasks and CLI only

        now = now or datetime.now(UTC)
        schedules = current_schedules(self.settings, self.settings_store)
        for problem in schedules.problems:  # every tick, one line each: the status and `check` show them too
            log.error("%s", problem.detail)
        schedules.require_usable()  # an environment value with nothing valid over it: the variable's one line
        queued: list[tuple[str, uuid.UUID]] = []
        backup_ref = self._schedule_reference("backup", schedules.backup, now, record=True)
        drill_ref = self._schedule_reference("drill", schedules.drill, now, record=True)
        if is_due(schedules.backup, backup_ref, now) and self.settings.nightly_set:
            from openwatch_backup.service.sets import SET_KIND, request_set

            set_id, created = request_set(self, Trigger.SCHEDULE, "celery-beat")  # the members: service/sets.py
            if created:
                queued.append((SET_KIND, set_id))
        elif is_due(schedules.backup, backup_ref, now):
            run, created = self.request_backup_once(self.build_request(), Trigger.SCHEDULE, "celery-beat")
            if created:
                queued.append(("backup", run.id))
                if self.settings.redis:  # OPENWATCH_BACKUP_REDIS=on: the nightly run takes a Redis snapshot too
                    snapshot, new = self.request_backup_once(self.build_request(BackupKind.REDIS), Trigger.SCHEDULE,
                                                             "celery-beat")
                    if new:
                        queued.append(("redis", snapshot.id))
        # A set in flight counts: its dump is made only once the worker takes it.
        in_flight = (*DATABASE_KIND_NAMES, "set")
        backup_active = self.recorder.list(limit=1, kinds=in_flight, status=RunStatus.QUEUED.value) or \
            self.recorder.list(limit=1, kinds=in_flight, status=RunStatus.RUNNING.value)
        # A drill waits for a backup in flight, so it drills the newest backup rather than the one before.
        if not backup_active and is_due(schedules.drill, drill_ref, now):
            try:
                drill = self.request_drill(Trigger.SCHEDULE, "celery-beat")
            except RunNotFound:
                drill = None  # nothing to drill with yet; the backup queued above will make one
            if drill is not None:
                queued.append(("drill", drill))
        queued.extend(self._dispatch_volumes(now))
        queued.extend(self.dispatch_rto_drills(now))  # the volume and host drills (service/rto.py)
        return queued

    def _dispatch_volumes(self, now: datetime) -> list[tuple[str, uuid.UUID]]:
        """The weekly volume snapshot (OPENWATCH_BACKUP_VOLUME_SCHEDULE): one run per volume, only where the
        Docker API is configured (an install without it has no volumes to read). A bad expression or a refused
        request (a missing volume or container) logs its line and waits for the next fire time."""
        from openwatch_backup.docker_api import docker_configured
        from openwatch_backup.scheduling import SEEN_KEYS, is_due
        from openwatch_backup.settings import cron_problem, env_name

        expression = self.settings.volume_schedule
        if not docker_configured():
            return []
        problem = cron_problem(expression)
        if problem:
            log.error("%s: %s (got %r)", env_name("volume_schedule"), problem, expression)
            return []
        if not is_due(expression, self._schedule_reference("volume", expression, now, record=True), now):
            return []
        if any(self.recorder.list(limit=1, kind=BackupKind.VOLUME.value, status=s.value)
               for s in (RunStatus.QUEUED, RunStatus.RUNNING)):
            return []
        try:
            run_ids = self.request_volume_snapshots(trigger=Trigger.SCHEDULE, requested_by="celery-beat")
        except BackupError as exc:
            log.error("volume snapshot not queued: %s", exc.message)
            notify("volume_snapshot_refused", f"volume snapshot not queued: {exc.message}", {"detail": exc.message},
                   webhook_url=self.settings.webhook_url, redact=self.redact)
            self.settings_store.set(SEEN_KEYS["volume"], {"expression": expression, "since": now.isoformat()},
                                    updated_by="celery-beat")  # said once: due again at the next fire time
            return []
        return [("volume", run_id) for run_id in run_ids]

    def next_scheduled(self, now: datetime | None = None) -> dict[str, datetime]:
        """When the dispatcher will queue the scheduled backup and drill: the same rule it applies itself. A
        stored schedule that is invalid counts as the environment's, as in the dispatcher."""
        from openwatch_backup.scheduling import current_schedules, next_run

        now = now or datetime.now(UTC)
        schedules = current_schedules(self.settings, self.settings_store)
        # A schedule that cannot be evaluated has no next run (the dispatcher refuses it; `check` says why).
        found = {name: next_run(expression, now, self._schedule_reference(name, expression, now, record=False))
                 for name, expression in schedules.usable().items()}
        return {**found, **self.next_rto_drills(now)}  # the volume and host drills, where they run

    def dispatch_config(self, now: datetime | None = None) -> list[tuple[str, uuid.UUID]]:
        """The config bundle's on-change check, once per config_check_minutes (operations/config_schedule.py):
        queues a config backup (trigger schedule) when the inputs changed or there is no bundle yet. Returns what
        was queued ([("config", run id)] or []). A missing input alerts once per interval; no run is made."""
        from openwatch_backup.operations import config_schedule as on_change

        now = now or datetime.now(UTC)
        ctx = self.context
        if not on_change.passphrase_set(ctx) or not on_change.is_due(ctx, self.settings_store, now):
            return []  # no passphrase: nothing to check (`check` says why); checked within the interval already
        found = on_change.compare(ctx)
        # Stored before anything is queued or posted: a failure below still waits for the next interval.
        self.settings_store.set(on_change.CHECKED_KEY, found.as_stored(now), updated_by="celery-beat")
        if found.outcome == on_change.PROBLEM:
            notify("config_check_failed", f"config bundle check: {found.detail}", {"detail": found.detail},
                   webhook_url=self.settings.webhook_url, redact=self.redact)
            return []
        if not found.take:
            return []
        run, created = self.request_backup_once(self.build_request(BackupKind.CONFIG), Trigger.SCHEDULE,
                                                f"celery-beat ({found.outcome})")
        return [("config", run.id)] if created else []

    def next_config_check(self, now: datetime | None = None) -> datetime | None:
        """When the dispatcher checks the config inputs next; None when no passphrase is set (no check)."""
        from openwatch_backup.operations.config_schedule import next_check

        return next_check(self.context, self.settings_store, now or datetime.now(UTC))

    def _schedule_reference(self, name: str, expression: str, now: datetime, *, record: bool) -> datetime:
        """What the next fire time counts from: the last scheduled run, or when this expression was first seen.

        First sight of a schedule on an install that has scheduled runs already (an upgrade) counts from the last
        of them, so a missed night is still caught up; a changed expression counts from the change."""
        from openwatch_backup.scheduling import SEEN_KEYS

        if name in ("drill", BackupKind.VOLUME.value):
            runs = self.recorder.list(limit=1, trigger=Trigger.SCHEDULE.value, kind=name)
        else:
            # Database dumps only: a config bundle the on-change check took is not the scheduled dump.
            # A nightly set counts from its own creation: one whose dump never started is still that night's.
            runs = self.recorder.list(limit=1, trigger=Trigger.SCHEDULE.value, kinds=(*DATABASE_KIND_NAMES, "set"))
        last = runs[0].created_at if runs else None
        seen = self.settings_store.get(SEEN_KEYS[name])
        if isinstance(seen, dict) and seen.get("expression") == expression and seen.get("since"):
            since = datetime.fromisoformat(str(seen["since"]))
        else:
            since = last if seen is None and last is not None else now
            if record:
                self.settings_store.set(SEEN_KEYS[name], {"expression": expression, "since": since.isoformat()},
                                        updated_by="celery-beat")
        return max(since, last) if last is not None else since

    def alert_failure(self, run: BackupRun) -> None:
        """Log and post a failed or abandoned run once; the delivery is stored beside it, not instead of it."""
        if run.details.get("notification"):
            return
        delivery = notify("run_failed", f"{run.kind} run {run.id} {run.status}: {run.error}",
                          {"run": run_to_dict(run)}, webhook_url=self.settings.webhook_url, redact=self.redact)
        self.recorder.add_details(run.id, {"notification": delivery})

    def watchdog(self) -> dict[str, Any]:
        """The sweeper (Celery's, and the CLI's `sweep`): abandoned runs (a stale heartbeat; a CLI run whose
        process is gone), their leftovers, and the "no verified backup for N hours" alert."""
        started = self._restart_from_intents()  # first: the catalog's database may be one of the stopped containers
        abandoned = self.recorder.mark_abandoned(self.settings.stale_after_seconds) + \
            abandon_dead_cli_runs(self.recorder)
        from openwatch_backup.service.sets import close_dead_sets

        closed_sets = close_dead_sets(self)  # after the abandoned sets were marked: their members recorded
        for run_ref, names in started.items():
            with contextlib.suppress(RunNotFound, ValueError):
                self.recorder.add_details(uuid.UUID(run_ref), {"restarted": names, "restarted_by": "sweeper"})
        for run_id in abandoned:  # one alert per abandoned run (not per restarted one: that run may be unknown)
            if str(run_id) not in started:
                self._restart_stopped(self.recorder.get(str(run_id)))
            self.alert_failure(self.recorder.get(str(run_id)))
        report = sweep_leftovers(self.context)
        return {"abandoned": [str(r) for r in abandoned], "closed_sets": closed_sets,
                "scratch_databases": report.databases, "partial_files": report.partial_files,
                "kept_databases": report.kept_databases,
                **self.sweep_rto_scratch(), **self._offsite_leftovers(), "stale_alert": self._stale_backup_alert()}

    def _restart_from_intents(self) -> dict[str, list[str]]:
        from openwatch_backup.operations.volume_snapshot import restart_orphaned_intents

        try:
            started = restart_orphaned_intents(self.settings.dir, self.settings.stale_after_seconds)
        except BackupError as exc:
            log.error("sweep: containers a dead volume run stopped were not started: %s", exc.message)
            return {}
        for run_ref, names in started.items():
            if names:
                log.warning("sweep: started %s, stopped by dead volume run %s", ", ".join(names), run_ref)
        return started

    def _restart_stopped(self, run: BackupRun) -> None:
        """A volume run that died in consistent mode left containers stopped (recorded before it stopped them,
        decision 11): start them again. A Docker API that does not answer is logged; the run keeps the record."""
        if run.kind != BackupKind.VOLUME.value or not run.details.get("stopping") or "restarted" in run.details:
            return
        from openwatch_backup.operations.volume_snapshot import restart_recorded

        try:
            started = restart_recorded(run.details)
        except BackupError as exc:
            log.error("sweep: containers %s stopped by volume run %s were not started: %s",
                      ", ".join(run.details["stopping"]), run.id, exc.message)
            return
        self.recorder.add_details(run.id, {"restarted": started, "restarted_by": "sweeper"})

    def _offsite_leftovers(self) -> dict[str, Any]:
        """Abort killed off-site uploads. A bucket that does not answer is reported, not raised: the rest of the
        sweep (abandoned runs, scratch databases, alerts) matters as much, and the next sweep tries again."""
        try:
            return {"aborted_uploads": self.abort_interrupted_uploads()}
        except BackupError as exc:
            log.warning("sweep: the off-site uploads were not checked: %s", exc.message)
            return {"aborted_uploads": [], "offsite_error": exc.message}

    def _stale_backup_alert(self, now: datetime | None = None) -> dict[str, Any] | None:
        now = now or datetime.now(UTC)
        verified = self.database_verifies()
        first = self.recorder.list(limit=1, oldest_first=True)
        since = verified[0].finished_at if verified else (first[0].created_at if first else None)
        if since is None or (now - since).total_seconds() <= self.settings.alert_after_hours * 3600:
            return None
        last_alert = self.settings_store.get(STALE_ALERT_KEY)
        if last_alert and (now - datetime.fromisoformat(last_alert)).total_seconds() < STALE_ALERT_EVERY:
            return None  # said already; repeat every few hours, not every sweep
        hours = (now - since).total_seconds() / 3600
        what = "no backup has verified" if verified else "no backup has ever verified"
        delivery = notify("no_verified_backup", f"{what} for {hours:.1f} h (OPENWATCH_BACKUP_ALERT_AFTER_HOURS is "
                          f"{self.settings.alert_after_hours:g})", {"hours": round(hours, 1)},
                          webhook_url=self.settings.webhook_url, redact=self.redact)
        self.settings_store.set(STALE_ALERT_KEY, now.isoformat(), updated_by="sweeper")
        return delivery

    def database_verifies(self, scan: int = 50) -> list[BackupRun]:
        """The newest succeeded verify of a database backup (a list of at most one): a config bundle's verify,
        taken on change at any hour, must not hide that no dump has verified for days."""
        for run in self.recorder.list(limit=scan, kind="verify", status=RunStatus.SUCCEEDED.value):
            if run.parent_id is None:
                continue
            try:
                parent = self.recorder.get(str(run.parent_id))
            except RunNotFound:
                continue
            if parent.kind in DATABASE_KIND_NAMES:
                return [run]
        return []

    def stale_queued_runs(self) -> list[BackupRun]:
        """Queued runs waiting longer than OPENWATCH_BACKUP_STALE_AFTER_SECONDS (and not re-sent within that
        time): their task message was probably lost. Sending it again is safe, a run is claimed once."""
        threshold = self.settings.stale_after_seconds
        now = datetime.now(UTC)
        stale = []
        for run in self.recorder.list(limit=100, status=RunStatus.QUEUED.value):
            resent = run.details.get("resent_at")
            since = datetime.fromisoformat(resent) if resent else run.created_at
            if (now - since).total_seconds() > threshold:
                self.recorder.add_details(run.id, {"resent_at": now.isoformat()})
                stale.append(run)
        return stale
