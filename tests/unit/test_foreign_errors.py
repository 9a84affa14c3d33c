"""Every foreign exception type we can meet after connecting maps to one of our errors, with a stable code, an
exit status and a one-line message (foreign_errors.as_backup_error, used by run records, the CLI and the API)."""

from __future__ import annotations

import errno
import zlib

import psycopg
import pytest
import sqlalchemy.exc
import zstandard
from psycopg import errors as pg

from openwatch_backup.core.artifact_stream import UnreadableArtifact
from openwatch_backup.errors import BackupError, DumpFailed, RunCancelled
from openwatch_backup.foreign_errors import as_backup_error

WHERE = "postgres@127.0.0.1:5432/openwatch"


def _wrapped(cls: type[sqlalchemy.exc.DBAPIError], orig: BaseException) -> sqlalchemy.exc.DBAPIError:
    return cls("SELECT 1", {}, orig)  # type: ignore[arg-type]


CASES: list[tuple[str, BaseException, str, int, str]] = [
    # (id, foreign exception, code, exit status, start of the message)
    ("connection-lost", psycopg.OperationalError("server closed the connection unexpectedly\n\tThis probably..."),
     "database_unavailable", 3, f"lost the connection to {WHERE} (server closed the connection unexpectedly); "),
    ("interface", psycopg.InterfaceError("the connection is closed"),
     "database_unavailable", 3, f"lost the connection to {WHERE} (the connection is closed); "),
    ("admin-shutdown", pg.AdminShutdown("terminating connection due to administrator command"),
     "database_unavailable", 3, f"lost the connection to {WHERE} (terminating connection due to administrator "),
    ("crash-shutdown", pg.CrashShutdown("terminating connection because of crash of another server process"),
     "database_unavailable", 3, f"lost the connection to {WHERE} (terminating connection because of crash"),
    ("cannot-connect-now", pg.CannotConnectNow("the database system is starting up"),
     "database_unavailable", 3, f"lost the connection to {WHERE} (the database system is starting up)"),
    ("too-many-connections", pg.TooManyConnections("sorry, too many clients already"),
     "database_unavailable", 3, f"lost the connection to {WHERE} (sorry, too many clients already)"),
    ("object-in-use", pg.ObjectInUse('database "owbscratch_restore_0123" is being accessed by other users'),
     "database_in_use", 8, 'database "owbscratch_restore_0123" is being accessed by other users: another session '
     "is using it; end that session"),
    ("lock-not-available", pg.LockNotAvailable('could not obtain lock on relation "hosts"'),
     "database_in_use", 8, 'could not obtain lock on relation "hosts": another session holds a lock on it; '),
    ("deadlock", pg.DeadlockDetected("deadlock detected"),
     "database_in_use", 8, "deadlock detected: a deadlock with another session; "),
    ("query-canceled", pg.QueryCanceled("canceling statement due to statement timeout"),
     "database_refused", 3, f"PostgreSQL cancelled a statement on {WHERE} (canceling statement due to statement "
     "timeout): a statement_timeout or pg_cancel_backend(); "),
    ("insufficient-privilege", pg.InsufficientPrivilege("permission denied for table backup_runs"),
     "database_refused", 3, f"PostgreSQL refused a statement on {WHERE} (permission denied for table backup_runs): "
     "the role of OPENWATCH_DATABASE_URL lacks that privilege"),
    ("disk-full", pg.DiskFull("could not extend file"),
     "database_refused", 3, "the database server's disk is full (could not extend file); "),
    ("undefined-column", pg.UndefinedColumn('column "x" does not exist'),
     "database_refused", 3, f'PostgreSQL refused a statement on {WHERE}: column "x" does not exist (SQLSTATE 42703)'),
    ("sqlalchemy-operational", _wrapped(sqlalchemy.exc.OperationalError,
                                        psycopg.OperationalError("server closed the connection unexpectedly")),
     "database_unavailable", 3, f"lost the connection to {WHERE} (server closed the connection unexpectedly); "),
    ("sqlalchemy-object-in-use", _wrapped(sqlalchemy.exc.OperationalError,
                                          pg.ObjectInUse('database "x" is being accessed by other users')),
     "database_in_use", 8, 'database "x" is being accessed by other users: another session is using it; '),
    ("sqlalchemy-dbapi-privilege", _wrapped(sqlalchemy.exc.ProgrammingError,
                                            pg.InsufficientPrivilege("permission denied for schema public")),
     "database_refused", 3, f"PostgreSQL refused a statement on {WHERE} (permission denied for schema public)"),
    ("sqlalchemy-pool-timeout", sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
     "database_unavailable", 3, f"lost the connection to {WHERE} (QueuePool limit of size 5 overflow 10 reached)"),
    ("disk-full-os", OSError(errno.ENOSPC, "No space left on device", "/backups/postgres/x.partial"),
     "insufficient_space", 4, "the disk is full writing /backups/postgres/x.partial (No space left on device); "),
    ("permission-os", PermissionError(errno.EACCES, "Permission denied", "/backups/postgres"),
     "storage", 4, "cannot read or write /backups/postgres (Permission denied); check the path"),
    ("zstd", zstandard.ZstdError("zstd decompress error: Unknown frame descriptor"),
     "artifact_unreadable", 4, "a stored stream does not decompress (zstd decompress error: Unknown frame "),
    ("zlib", zlib.error("Error -3 while decompressing data: invalid stored block lengths"),
     "artifact_unreadable", 4, "a stored stream does not decompress (Error -3 while decompressing data: "),
    ("unreadable-artifact", UnreadableArtifact("the zstd stream ends before its frame does (truncated)"),
     "artifact_unreadable", 4, "a stored stream does not decompress (the zstd stream ends before its frame does"),
    ("bug", KeyError("artifact"),
     "internal", 1, "internal error, please report it: KeyError: 'artifact'"),
    ("bug-multiline", ValueError("first line\nsecond line\nthird"),
     "internal", 1, "internal error, please report it: ValueError: first line"),
]


@pytest.mark.parametrize(("foreign", "code", "exit_status", "start"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_each_foreign_exception_has_a_stable_code(foreign: BaseException, code: str, exit_status: int,
                                                   start: str) -> None:
    ours = as_backup_error(foreign, where=WHERE)

    assert isinstance(ours, BackupError)
    assert (ours.code, ours.exit_status) == (code, exit_status)
    assert ours.message.startswith(start), ours.message
    assert "\n" not in ours.message
    assert ours.__cause__ is foreign


def test_our_own_errors_pass_through_unchanged() -> None:
    for ours in (DumpFailed("pg_dump exited with status 1: x"), RunCancelled("cancelled by SIGTERM")):
        assert as_backup_error(ours) is ours


def test_a_wrapped_error_of_ours_is_unwrapped() -> None:
    ours = DumpFailed("pg_dump was killed by SIGKILL")
    assert as_backup_error(sqlalchemy.exc.StatementError("bind failed", "SELECT 1", {}, ours)) is ours


def test_messages_pass_the_redactor() -> None:
    foreign = psycopg.OperationalError('connection to "postgresql://u:S3cret@db/x" failed')
    ours = as_backup_error(foreign, redact=lambda text: text.replace("S3cret", "***"))
    assert "S3cret" not in ours.message
    assert "u:***@db" in ours.message
