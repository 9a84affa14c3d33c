"""Retention: prune (plan, apply) and pins."""

from __future__ import annotations

import uuid

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import Trigger
from openwatch_backup.service.offsite import OffsiteService


class RetentionService(OffsiteService):
    def request_prune(self, *, apply: bool = True, trigger: Trigger = Trigger.SCHEDULE,
                      requested_by: str | None = None) -> uuid.UUID | None:
        """Queue a prune unless one is queued or running (then None). It applies by default: the scheduled chain
        asks for one only after a backup verified."""
        run_id, created = self.recorder.create_unless_active("prune", ("prune",), trigger.value, requested_by,
                                                             details={"request": {"apply": apply}})
        return run_id if created else None

    def execute_prune(self, run_id: uuid.UUID) -> BackupRun:
        from openwatch_backup.catalog.prune_store import PruneStore
        from openwatch_backup.operations.prune import run_prune

        run = self.recorder.get(str(run_id))
        apply = bool(run.details.get("request", {}).get("apply"))
        with self._operation(run_id, exclusive=True):
            run_prune(self.context, run_id, apply, PruneStore(self.engine, self.target.describe()),
                      lambda: self.settings_store.all("retention."))
        return self.recorder.get(str(run_id))

    def prune(self, apply: bool = False, trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> BackupRun:
        """Plan retention as a recorded run (the plan is stored on it); with apply, carry it out."""
        run_id = self.recorder.create("prune", trigger.value, requested_by, details={"request": {"apply": apply}})
        return self.execute_prune(run_id)

    def pin(self, ref: str, requested_by: str | None = None) -> BackupRun:
        """Keep a successful backup forever: no retention rule deletes a pinned backup."""
        from openwatch_backup.catalog.prune_store import PruneStore
        from openwatch_backup.operations.pin import set_pin

        return set_pin(self.context, PruneStore(self.engine, self.target.describe()), ref, True, requested_by)

    def unpin(self, ref: str, requested_by: str | None = None) -> BackupRun:
        from openwatch_backup.catalog.prune_store import PruneStore
        from openwatch_backup.operations.pin import set_pin

        return set_pin(self.context, PruneStore(self.engine, self.target.describe()), ref, False, requested_by)
