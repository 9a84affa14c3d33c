"""A heartbeat that does not depend on progress: pg_dump waiting on a lock is alive, a killed worker is not.

The thread writes heartbeat_at every heartbeat_seconds while the operation runs; the sweeper marks a
running run whose heartbeat is older than OPENWATCH_BACKUP_STALE_AFTER_SECONDS as abandoned, and a CLI run
whose process is gone at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from openwatch_backup.catalog.owner import is_gone
from openwatch_backup.catalog.recorder import RunRecorder
from openwatch_backup.core.kinds import RunStatus, Trigger

log = logging.getLogger(__name__)


class _Beater(threading.Thread):
    def __init__(self, recorder: RunRecorder, run_id: uuid.UUID, interval: float) -> None:
        super().__init__(name=f"heartbeat-{str(run_id)[:8]}", daemon=True)
        self._recorder, self._run_id, self._interval = recorder, run_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self._interval):
            try:
                self._recorder.beat(self._run_id)
            except Exception as exc:  # a blip in the catalog must not kill the backup; the sweeper has slack
                log.warning("heartbeat of run %s failed: %s", self._run_id, type(exc).__name__)


@contextmanager
def heartbeat(recorder: RunRecorder, run_id: uuid.UUID, interval: float) -> Iterator[None]:
    beater = _Beater(recorder, run_id, interval)
    beater.start()
    try:
        yield
    finally:
        beater.stopped.set()
        beater.join(timeout=interval + 5)


def abandon_dead_cli_runs(recorder: RunRecorder) -> list[uuid.UUID]:
    """Running (or still queued) CLI runs whose process is provably gone (killed on this machine): abandoned now,
    not after the stale heartbeat. A CLI run has no one else to finish it; Celery runs keep the heartbeat rule."""
    abandoned = []
    for status in (RunStatus.RUNNING, RunStatus.QUEUED):  # queued: killed while it waited for the lock
        for run in recorder.list(limit=1000, status=status.value, trigger=Trigger.CLI.value):
            owner = run.details.get("owner") or {}
            if is_gone(owner):
                recorder.finish_unsuccessfully(
                    run.id, RunStatus.ABANDONED, "abandoned",
                    f"its process (pid {owner['pid']} on {owner['host']}) ended without finishing the run (killed); "
                    "its leftovers were removed", only_if=status)
                abandoned.append(run.id)
    return abandoned
