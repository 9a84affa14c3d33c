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
                        requested_by: str | None = None, then_prune: bool = False) -> uuid.UUID:
        """Queue an offsite run of `backup`; refused (nothing recorded) when off-site is off or the backup is not
        a present, successful one. then_prune: the Celery chain's prune follows it, whatever its outcome."""
        from openwatch_backup.operations.presence import present_artifact

        self.require_offsite()
        present_artifact(backup)
        self._refuse_second_copy(backup)
        return self.recorder.create(OFFSITE_KIND, trigger.value, requested_by, parent_id=backup.id,
                                    details={"then_prune": True} if then_prune else None)

    def _refuse_second_copy(self, backup: BackupRun) -> None:
        """Two uploads of one backup at once would race for its copy row: the second asker is told which runs."""
        from openwatch_backup.catalog.locks import OperationBusy
        from openwatch_backup.core.kinds import RunStatus

        active = [r for r in self.recorder.list(limit=20, kind=OFFSITE_KIND, parent_id=backup.id)
                  if r.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value)]
        if active:
            raise OperationBusy(f"offsite run {str(active[0].id)[:8]} of backup {str(backup.id)[:8]} is "
                                f"{active[0].status} already; wait for it (`openwatch-backup show "
                                f"{str(active[0].id)[:8]}`), or run `openwatch-backup sweep` if its process was "
                                "killed")

    def execute_offsite(self, run_id: uuid.UUID) -> BackupRun:
        from openwatch_backup.operations.offsite import run_offsite

        run = self.recorder.get(str(run_id))
        backup = self.recorder.get(str(run.parent_id))
        with self._operation(run_id, exclusive=False):
            run_offsite(self.context, run_id, backup)
        return self.recorder.get(str(run_id))

    def retry_offsite(self) -> uuid.UUID | None:
        """The sweeper's retry: queue an offsite run for the newest verified backup whose s3 copy is missing or
        failed (bounded: operations/offsite_sweep.offsite_to_retry). None when there is nothing to retry."""
        from openwatch_backup.operations.offsite_sweep import offsite_to_retry

        backup = offsite_to_retry(self.context)
        if backup is None:
            return None
        run_id, created = self.recorder.create_unless_active(OFFSITE_KIND, (OFFSITE_KIND,), Trigger.SCHEDULE.value,
                                                             "sweeper (off-site retry)", parent_id=backup.id)
        return run_id if created else None

    def abort_interrupted_uploads(self) -> list[str]:
        """The uploads killed offsite runs left (and orphans over an hour old), aborted; their copies failed."""
        from openwatch_backup.operations.offsite_sweep import abort_interrupted_uploads

        return abort_interrupted_uploads(self.context)

    def offsite_test(self) -> ProbeResult:
        """put, head, get and delete a probe object in the bucket; says which step failed and why."""
        from openwatch_backup.storage.probe import probe

        return probe(self.require_offsite())
