"""Record runs in backup_runs: create, claim, heartbeat, finish. Short transactions, database clock.

Every string stored here has passed the redactor. A run is claimed with a conditional UPDATE, so a task
delivered twice (acks_late + reject_on_worker_lost) finds the run no longer queued and does nothing.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Connection, Engine, String, Table, Text, case, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.sql import cast

from openwatch_backup.catalog import read_errors
from openwatch_backup.catalog.locks import REQUEST_KEY
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.owner import this_process
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import RunNotFound

_TABLE = typing.cast(Table, BackupRun.__table__)  # Core statements: no ORM identity map in long-running workers


LOG_LINES = 200  # kept per run; a log line is written per phase change, so this is never reached in practice


def _queued_line(trigger: str, requested_by: str | None, redact: Callable[[str], str]) -> str:
    from datetime import UTC, datetime

    who = f" by {redact(requested_by)}" if requested_by else ""
    return f"{datetime.now(UTC):%H:%M:%S} queued ({trigger}{who})"


def _append_log(details: Any, line: str) -> Any:
    """details with `log` extended by "HH:MM:SS line" (UTC, database clock), keeping the last LOG_LINES."""
    stamped = func.concat(func.to_char(func.timezone("UTC", func.now()), "HH24:MI:SS "), line)
    log = func.coalesce(details.op("->")(cast("log", Text)), cast([], JSONB)).op("||")(
        func.to_jsonb(cast(stamped, Text)))
    return func.jsonb_set(details, cast(["log"], ARRAY(Text)), log)


@contextmanager
def catalog_errors(database: str) -> Iterator[None]:
    """Turn driver errors into the two our callers can act on."""
    try:
        yield
    except ProgrammingError as exc:
        raise read_errors.refused(exc, getattr(exc.orig, "sqlstate", None), database) from None
    except OperationalError as exc:
        raise read_errors.unreachable(exc, exc.orig, database) from None


class CatalogWriter:
    """What the catalog's writers share: the engine, the redactor every stored string passes, short transactions
    whose driver errors are translated."""

    def __init__(self, engine: Engine, redact: Callable[[str], str], database: str) -> None:
        self._engine = engine
        self._redact = redact
        self._database = database

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with catalog_errors(self._database), self._engine.begin() as conn:
            yield conn


class RunRecorder(CatalogWriter):

    def release_connections(self) -> None:
        """Close pooled connections (a restore must rename the database they point at); later calls reconnect."""
        self._engine.dispose()

    def create(self, kind: str, trigger: str, requested_by: str | None = None,
               parent_id: uuid.UUID | None = None, details: dict[str, Any] | None = None) -> uuid.UUID:
        run_id = uuid.uuid4()
        # A CLI run is carried out by the process that queues it: recorded now, a kill before its claim (while it
        # waits for the lock) is seen by sweep too, instead of a run queued forever.
        owner = {"owner": this_process()} if trigger == "cli" else {}
        with self._begin() as conn:
            conn.execute(_TABLE.insert().values(
                id=run_id, kind=kind, status=RunStatus.QUEUED.value, trigger=trigger,
                requested_by=self._redact(requested_by) if requested_by else None, parent_id=parent_id,
                details={**(details or {}), **owner, "log": [_queued_line(trigger, requested_by, self._redact)]},
                bytes_done=0))
        return run_id

    def create_unless_active(self, kind: str, active_kinds: tuple[str, ...], trigger: str,
                             requested_by: str | None = None, details: dict[str, Any] | None = None,
                             parent_id: uuid.UUID | None = None) -> tuple[uuid.UUID, bool]:
        """Queue a run unless one of active_kinds is queued or running; then return that one (created False).

        A transaction-level advisory lock serialises concurrent requests across processes and hosts.
        """
        with self._begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(REQUEST_KEY)))
            active = conn.execute(
                select(_TABLE.c.id).where(_TABLE.c.kind.in_(active_kinds),
                                          _TABLE.c.status.in_((RunStatus.QUEUED.value, RunStatus.RUNNING.value)))
                .order_by(_TABLE.c.created_at.desc()).limit(1)).scalar()
            if active is not None:
                return active, False
            run_id = uuid.uuid4()
            conn.execute(_TABLE.insert().values(
                id=run_id, kind=kind, status=RunStatus.QUEUED.value, trigger=trigger,
                requested_by=self._redact(requested_by) if requested_by else None, parent_id=parent_id,
                details={**(details or {}), "log": [_queued_line(trigger, requested_by, self._redact)]},
                bytes_done=0))
            return run_id, True

    def beat(self, run_id: uuid.UUID) -> None:
        """Heartbeat only (no phase change): the run's worker is alive."""
        with self._begin() as conn:
            conn.execute(update(_TABLE).where(_TABLE.c.id == run_id, _TABLE.c.status == RunStatus.RUNNING.value)
                         .values(heartbeat_at=func.now()))

    def mark_abandoned(self, stale_after_seconds: float) -> list[uuid.UUID]:
        """Running runs without a heartbeat for stale_after_seconds: their worker died. Returns their ids."""
        cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after_seconds)
        with self._begin() as conn:
            rows = conn.execute(
                update(_TABLE).where(_TABLE.c.status == RunStatus.RUNNING.value,
                                     func.coalesce(_TABLE.c.heartbeat_at, _TABLE.c.started_at) < cutoff)
                .values(status=RunStatus.ABANDONED.value, finished_at=func.now(), error_code="abandoned",
                        error=func.concat("no heartbeat since ", func.to_char(func.timezone(
                            "UTC", func.coalesce(_TABLE.c.heartbeat_at, _TABLE.c.started_at)),
                            'YYYY-MM-DD"T"HH24:MI:SS'),
                            " UTC: the worker running it stopped (killed or lost); its leftovers were removed"))
                .returning(_TABLE.c.id)).scalars().all()
        return list(rows)

    def claim(self, run_id: uuid.UUID) -> bool:
        """queued -> running. False when another delivery already took (or finished) the run."""
        with self._begin() as conn:
            result = conn.execute(
                update(_TABLE).where(_TABLE.c.id == run_id, _TABLE.c.status == RunStatus.QUEUED.value)
                .values(status=RunStatus.RUNNING.value, started_at=func.now(), heartbeat_at=func.now(),
                        phase="starting",
                        # Who runs it, so a sweep on this machine sees at once when that process is gone.
                        details=_TABLE.c.details.op("||")(cast({"owner": this_process()}, JSONB))))
            return result.rowcount == 1

    def progress(self, run_id: uuid.UUID, phase: str, bytes_done: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"phase": phase, "heartbeat_at": func.now()}
        if bytes_done is not None:
            values["bytes_done"] = bytes_done
        merged = _TABLE.c.details.op("||")(cast(details or {}, JSONB))
        # The run's log (what `GET .../log` tails): one line each time the phase changes.
        values["details"] = case((_TABLE.c.phase.is_distinct_from(phase), _append_log(merged, phase)), else_=merged)
        with self._begin() as conn:
            conn.execute(update(_TABLE).where(_TABLE.c.id == run_id,
                                              _TABLE.c.status == RunStatus.RUNNING.value).values(**values))

    def succeed(self, run_id: uuid.UUID, *, location: str | None, size: int | None, sha256: str | None,
                details: dict[str, Any], bytes_done: int | None = None,
                local_copy: str | None = None) -> None:
        """local_copy: the storage key of the file a backup wrote; its local copy is recorded in the same
        transaction, so no succeeded backup lacks one."""
        with self._begin() as conn:
            if local_copy is not None and location is not None:
                from openwatch_backup.catalog.copies import CopyStore
                from openwatch_backup.core.copies import CopyStorage

                CopyStore(self._engine, self._redact, self._database).record(
                    run_id, CopyStorage.LOCAL, key=local_copy, location=location, size=size, sha256=sha256,
                    conn=conn)
            conn.execute(update(_TABLE).where(_TABLE.c.id == run_id).values(
                status=RunStatus.SUCCEEDED.value, phase="done", finished_at=func.now(), heartbeat_at=func.now(),
                artifact_location=location, size_bytes=size, sha256=sha256,
                bytes_done=bytes_done if bytes_done is not None else _TABLE.c.bytes_done,
                details=_append_log(_TABLE.c.details.op("||")(cast(details, JSONB)), "succeeded"),
                error=None, error_code=None))

    def add_details(self, run_id: uuid.UUID, details: dict[str, Any]) -> None:
        """Merge into details whatever the status (notification delivery, for one)."""
        with self._begin() as conn:
            conn.execute(update(_TABLE).where(_TABLE.c.id == run_id).values(
                details=_TABLE.c.details.op("||")(cast(details, JSONB))))

    def finish_unsuccessfully(self, run_id: uuid.UUID, status: RunStatus, code: str, message: str,
                              details: dict[str, Any] | None = None, *, only_if: RunStatus | None = None) -> None:
        """failed / cancelled / abandoned, with a redacted reason. The phase is kept: it says where.

        only_if: change the run only while it has that status (a second delivery must not fail the first's run).
        """
        condition = _TABLE.c.id == run_id
        if only_if is not None:
            condition = condition & (_TABLE.c.status == only_if.value)
        with self._begin() as conn:
            conn.execute(update(_TABLE).where(condition).values(
                status=status.value, finished_at=func.now(), error_code=code, error=self._redact(message),
                details=_append_log(_TABLE.c.details.op("||")(cast(details or {}, JSONB)),
                                    f"{status.value}: {self._redact(message)}")))

    def status_by_prefix(self, hex_prefix: str) -> str | None:
        """The status of the one run whose id (as 32 hex digits) starts with hex_prefix; None if none or several."""
        pattern = "-".join(filter(None, (hex_prefix[:8], hex_prefix[8:12])))  # the uuid's text form
        with self._begin() as conn:
            rows = conn.execute(select(_TABLE.c.status).where(
                cast(_TABLE.c.id, String).startswith(pattern, autoescape=True)).limit(2)).all()
        return str(rows[0][0]) if len(rows) == 1 else None

    def get(self, ref: str) -> BackupRun:
        """A run by full id or by a unique id prefix (as `list` prints them)."""
        text = ref.strip().lower()
        if not text or any(c not in "0123456789abcdef-" for c in text):
            raise RunNotFound(f"{ref!r} is not a run id; use an id (or its first characters) from "
                              "`openwatch-backup list`")
        if len(text) == 36:
            condition = _TABLE.c.id == uuid.UUID(text)
        else:
            condition = cast(_TABLE.c.id, String).startswith(text, autoescape=True)
        with catalog_errors(self._database), Session(self._engine, expire_on_commit=False) as session:
            rows = list(session.scalars(select(BackupRun).where(condition).limit(2)))
        if not rows:
            raise RunNotFound(f"no run {ref!r} in the catalog; `openwatch-backup list` shows the runs")
        if len(rows) > 1:
            raise RunNotFound(f"{ref!r} matches more than one run; give more characters of the id")
        return rows[0]

    def list(self, *, limit: int = 50, kind: str | None = None, status: str | None = None,
             parent_id: uuid.UUID | None = None, finished_only: bool = False, trigger: str | None = None,
             kinds: tuple[str, ...] | None = None, oldest_first: bool = False,
             before: tuple[datetime, uuid.UUID] | None = None) -> list[BackupRun]:
        """Runs newest first (by the recorded creation time, never by name). `before` pages through them by
        (created_at, id), which the index serves equally fast on every page."""
        order = (_TABLE.c.created_at.asc(), _TABLE.c.id.asc()) if oldest_first else \
            (_TABLE.c.created_at.desc(), _TABLE.c.id.desc())
        query = select(BackupRun).order_by(*order).limit(limit)
        if before is not None:
            query = query.where(tuple_(_TABLE.c.created_at, _TABLE.c.id) < tuple_(before[0], before[1]))
        if trigger is not None:
            query = query.where(_TABLE.c.trigger == trigger)
        if kinds is not None:
            query = query.where(_TABLE.c.kind.in_(kinds))
        if parent_id is not None:
            query = query.where(_TABLE.c.parent_id == parent_id)
        if finished_only:
            query = query.where(_TABLE.c.finished_at.is_not(None))
        if kind:
            query = query.where(_TABLE.c.kind == kind)
        if status:
            query = query.where(_TABLE.c.status == status)
        with catalog_errors(self._database), Session(self._engine, expire_on_commit=False) as session:
            return list(session.scalars(query))
