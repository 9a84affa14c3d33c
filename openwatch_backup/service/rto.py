"""The RTO drills (operations/rto.py): the volume drill, the full-system drill, their schedules, their sweep."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openwatch_backup.core.kinds import Trigger
from openwatch_backup.errors import BackupError
from openwatch_backup.operations.rto import DRILL_HOST, DRILL_VOLUME
from openwatch_backup.service.retention import RetentionService

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.operations.rto import Measurement

log = logging.getLogger(__name__)


class RtoService(RetentionService):
    # --- volume loss (operations/volume_drill.py)
    def request_volume_drill(self, trigger: Trigger, requested_by: str | None = None) -> uuid.UUID | None:
        """Queue a volume drill of the newest verified volume snapshot unless one is queued or running (None)."""
        from openwatch_backup.operations.volume_drill import newest_verified_snapshot

        snapshot = newest_verified_snapshot(self.context)  # refused before anything is recorded
        run_id, created = self.recorder.create_unless_active(DRILL_VOLUME, (DRILL_VOLUME,), trigger.value,
                                                             requested_by, parent_id=snapshot.id)
        return run_id if created else None

    def execute_volume_drill(self, run_id: uuid.UUID) -> BackupRun:
        from openwatch_backup.operations.volume_drill import run_volume_drill

        run = self.recorder.get(str(run_id))
        with self._operation(run_id, exclusive=False):  # a scratch volume: no lock to wait for
            run_volume_drill(self.context, run_id, self.recorder.get(str(run.parent_id)))
        return self.recorder.get(str(run_id))

    # --- host failure (operations/host_drill.py)
    def request_host_drill(self, trigger: Trigger, requested_by: str | None = None) -> uuid.UUID | None:
        self.require_offsite()  # recover reads the off-site store: refused before anything is recorded
        run_id, created = self.recorder.create_unless_active(DRILL_HOST, (DRILL_HOST,), trigger.value, requested_by,
                                                             details={"request": {"volumes": self._drill_volumes()}})
        return run_id if created else None

    def execute_host_drill(self, run_id: uuid.UUID) -> BackupRun:
        from openwatch_backup.operations.host_drill import run_host_drill

        run = self.recorder.get(str(run_id))
        volumes = list((run.details.get("request") or {}).get("volumes") or [])
        with self._operation(run_id, exclusive=False):
            run_host_drill(self.context, run_id, volumes)
        return self.recorder.get(str(run_id))

    def _drill_volumes(self) -> list[str]:
        from openwatch_backup.docker_api import docker_configured

        return self.settings.volume_names() if docker_configured() else []

    def rto_drill(self, scenario: str, *, trigger: Trigger = Trigger.CLI,
                  requested_by: str | None = None) -> BackupRun | None:
        """Run a volume or host drill now (the CLI); None when one is already queued or running."""
        if scenario == "volume":
            run_id = self.request_volume_drill(trigger, requested_by)
            return self.execute_volume_drill(run_id) if run_id else None
        run_id = self.request_host_drill(trigger, requested_by)
        return self.execute_host_drill(run_id) if run_id else None

    def rto_table(self, now: datetime | None = None) -> list[Measurement]:
        from openwatch_backup.operations.checklist import _age
        from openwatch_backup.operations.rto import rto_table

        return rto_table(self.context, now or datetime.now(UTC), _age)

    # --- the sweeper's part: scratch volumes and folders of drills that ended (a kill included)
    def sweep_rto_scratch(self) -> dict[str, list[str]]:
        from openwatch_backup.core.kinds import RunStatus
        from openwatch_backup.docker_api import docker_client, docker_configured
        from openwatch_backup.operations.host_drill import sweep_scratch_folders
        from openwatch_backup.operations.scratch_volumes import sweep_scratch_volumes

        def is_finished_run(prefix: str) -> bool:
            status = self.recorder.status_by_prefix(prefix)
            return status is not None and RunStatus(status).is_final

        found: dict[str, list[str]] = {"scratch_volumes": [], "scratch_folders": sweep_scratch_folders(is_finished_run)}
        if docker_configured():
            try:
                found["scratch_volumes"] = sweep_scratch_volumes(docker_client(), is_finished_run)
            except BackupError as exc:
                log.warning("sweep: scratch volumes were not checked: %s", exc.message)
        return found

    # --- the schedules (dispatch_due's part)
    def dispatch_rto_drills(self, now: datetime) -> list[tuple[str, uuid.UUID]]:
        """The volume drill (where the Docker API is configured) and the host drill (with off-site on), each at
        its cron expression's fire time; a refused request (nothing to drill with) logs and waits."""
        from openwatch_backup.docker_api import docker_configured
        from openwatch_backup.scheduling import SEEN_KEYS, is_due
        from openwatch_backup.settings import cron_problem, env_name

        queued: list[tuple[str, uuid.UUID]] = []
        for kind, field, wanted in ((DRILL_VOLUME, "volume_drill_schedule", docker_configured()),
                                    (DRILL_HOST, "host_drill_schedule", self.offsite is not None)):
            expression = str(getattr(self.settings, field))
            if not wanted:
                continue
            problem = cron_problem(expression)
            if problem:
                log.error("%s: %s (got %r)", env_name(field), problem, expression)
                continue
            if not is_due(expression, self._rto_reference(kind, expression, now), now):
                continue
            self.settings_store.set(SEEN_KEYS.get(kind, f"scheduler.seen.{kind}"),
                                    {"expression": expression, "since": now.isoformat()}, updated_by="celery-beat")
            try:
                run_id = (self.request_volume_drill if kind == DRILL_VOLUME else self.request_host_drill)(
                    Trigger.SCHEDULE, "celery-beat")
            except BackupError as exc:
                log.error("%s not queued: %s", kind, exc.message)
                continue
            if run_id is not None:
                queued.append((kind, run_id))
        return queued

    def next_rto_drills(self, now: datetime) -> dict[str, datetime]:
        """When the dispatcher queues the volume and host drills next (those it would run here, with a usable
        expression); nothing is recorded."""
        from openwatch_backup.docker_api import docker_configured
        from openwatch_backup.scheduling import SEEN_KEYS, next_run
        from openwatch_backup.settings import cron_problem

        found: dict[str, datetime] = {}
        for kind, field, wanted in ((DRILL_VOLUME, "volume_drill_schedule", docker_configured()),
                                    (DRILL_HOST, "host_drill_schedule", self.offsite is not None)):
            expression = str(getattr(self.settings, field))
            if not wanted or cron_problem(expression):
                continue
            seen: Any = self.settings_store.get(SEEN_KEYS.get(kind, f"scheduler.seen.{kind}"))
            since = (datetime.fromisoformat(str(seen["since"])) if isinstance(seen, dict)
                     and seen.get("expression") == expression and seen.get("since") else now)
            found[kind] = next_run(expression, now, since)
        return found

    def _rto_reference(self, kind: str, expression: str, now: datetime) -> datetime:
        """The last fire time handled (stored once due, whatever came of it), else when first seen."""
        from openwatch_backup.scheduling import SEEN_KEYS

        key = SEEN_KEYS.get(kind, f"scheduler.seen.{kind}")
        seen: Any = self.settings_store.get(key)
        if isinstance(seen, dict) and seen.get("expression") == expression and seen.get("since"):
            return datetime.fromisoformat(str(seen["since"]))
        self.settings_store.set(key, {"expression": expression, "since": now.isoformat()}, updated_by="celery-beat")
        return now
