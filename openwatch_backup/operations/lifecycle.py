"""How every operation's run ends when something goes wrong: a stable code and a redacted reason."""

from __future__ import annotations

import logging
import resource
import time
import uuid
from collections.abc import Callable

from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import BackupError, RunCancelled
from openwatch_backup.foreign_errors import as_backup_error
from openwatch_backup.operations.context import OperationContext

log = logging.getLogger(__name__)

UNRECORDED = ("; the run could not be recorded (the catalog database does not answer): `openwatch-backup sweep` "
              "marks it abandoned once PostgreSQL is back")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def throttled_progress(ctx: OperationContext, run_id: uuid.UUID, phase: str) -> Callable[[int], None]:
    """A bytes-done callback that writes to the catalog at most every heartbeat_seconds."""
    last = [0.0]

    def report(bytes_done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= ctx.settings.heartbeat_seconds:
            last[0] = now
            ctx.recorder.progress(run_id, phase, bytes_done)

    return report


def record_failure(ctx: OperationContext, run_id: uuid.UUID, exc: BaseException) -> None:
    """Store why the run ended. If the catalog itself is unreachable, log it: the original error wins."""
    try:
        _store_failure(ctx, run_id, exc)
    except Exception as store_error:
        log.warning("run %s failed (%s) and could not be recorded: %s", run_id, ctx.redact(str(exc)),
                    ctx.redact(str(store_error)))
        if isinstance(exc, BackupError) and UNRECORDED not in exc.message:
            # Said on the same line as the failure, which is all a CLI user sees (PostgreSQL stopped mid-run).
            exc.message += UNRECORDED


def _store_failure(ctx: OperationContext, run_id: uuid.UUID, exc: BaseException) -> None:
    if isinstance(exc, RunCancelled):
        ctx.recorder.finish_unsuccessfully(run_id, RunStatus.CANCELLED, exc.code, exc.message)
        return
    if isinstance(exc, BackupError):
        code, message = exc.code, exc.message
    elif isinstance(exc, KeyboardInterrupt):
        ctx.recorder.finish_unsuccessfully(run_id, RunStatus.CANCELLED, "cancelled", "interrupted by the operator")
        return
    elif type(exc).__name__ == "SoftTimeLimitExceeded":
        # Celery's soft limit, matched by name: operations never import celery (only tasks.py does).
        code = "time_limit"
        message = (f"the run exceeded its time limit of {ctx.settings.time_limit_seconds} s "
                   "(OPENWATCH_BACKUP_TIME_LIMIT_SECONDS); pg_dump was stopped and its partial file removed")
    else:
        translated = as_backup_error(exc, where=ctx.target.describe(), redact=ctx.redact)
        code, message = translated.code, translated.message
    ctx.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, code, ctx.redact(message),
                                       {"peak_rss_bytes": peak_rss_bytes()})
