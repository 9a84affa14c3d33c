"""Off-site copies: copy a backup to S3 and verify the copy, re-read a remote copy, test the connection."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from openwatch_backup.core.kinds import Trigger
from openwatch_backup.service.recovery import RecoveryService

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.storage.probe import ProbeResult

# Each operation is imported by the method that runs it (see service/recovery.py).

OFFSITE_KIND = "offsite"


class OffsiteService(RecoveryService):
    # --- the copy (operations/offsite.py)
    def copy_offsite(self, ref: str, *, trigger: Trigger = Trigger.CLI, requested_by: str | None = None) -> BackupRun:
        """Copy a backup and its manifest to S3 as a recorded run linked to it; the run's status says whether
        the copy verified."""
        run_id = self.request_offsite(self.recorder.get(ref), trigger=trigger, requested_by=requested_by)
        return self.execute_offsite(run_id)

    def request_offsite(self, backup: BackupRun, *, trigger: Trigger = Trigger.CLI,
                        requested_by: str | None = None) -> uuid.UUID:
        """Queue an offsite run of `backup`; refused (nothing recorded) when off-site is off or the backup is not
        a present, successful one."""
        from openwatch_backup.operations.presence import present_artifact

        self.require_offsite()
        present_artifact(backup)
        return self.recorder.create(OFFSITE_KIND, trigger.value, requested_by, parent_id=backup.id)

    def execute_offsite(self, run_id: uuid.UUID) -> BackupRun:
        from openwatch_backup.operations.offsite import run_offsite

        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        with self._operation(run_id, exclusive=False):
            run_offsite(self.context, run_id, backup)
        return self.recorder.get(str(run_id))

    def offsite_test(self) -> ProbeResult:
        """put, head, get and delete a probe object in the bucket; says which step failed and why."""
        from openwatch_backup.storage.probe import probe

        return probe(self.require_offsite())
