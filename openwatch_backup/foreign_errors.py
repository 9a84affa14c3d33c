"""Foreign exceptions (psycopg, SQLAlchemy, the OS, zstd/zlib) translated into our hierarchy, in one place.

Operations raise our errors where they know better (a failed pg_dump, a guard); whatever else escapes them
(a session on the database being renamed, a lost connection, a cancelled statement) is turned into a typed
error with a stable code here, by the run's failure record and by each entry layer (CLI, API), so a user
sees one line and never a traceback.

The driver modules are looked up in sys.modules, never imported: an exception of a library that was never
imported cannot occur, and the CLI's start-up stays free of them.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import Any

from openwatch_backup.errors import (
    ArtifactUnreadable,
    BackupError,
    DatabaseInUse,
    DatabaseRefused,
    DatabaseUnavailable,
    InsufficientSpace,
    InternalError,
    StorageError,
)

# SQLSTATEs whose meaning is "another session is in the way".
_IN_USE = {"55006": "another session is using it", "55P03": "another session holds a lock on it",
           "40P01": "a deadlock with another session", "40001": "a conflict with another session"}
# SQLSTATE classes and codes that mean "the server is gone or going" (08: connection exception).
_GONE_CLASSES = ("08",)
_GONE = {"57P01", "57P02", "57P03", "53300", "57P05"}


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _module(name: str) -> Any:
    return sys.modules.get(name)


def _unwrap(exc: BaseException) -> BaseException:
    """SQLAlchemy wraps the driver's exception, or one raised while binding (`.orig`); judge that one."""
    sa_exc = _module("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        orig: BaseException = exc.orig
        return orig
    return exc


def _database_error(exc: BaseException, where: str) -> BackupError | None:
    psycopg = _module("psycopg")
    sa_exc = _module("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError | sa_exc.TimeoutError):
        # No driver exception inside (or a pool timeout): judged by SQLAlchemy's class alone.
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
            return _gone(where, _first_line(str(getattr(exc, "orig", None) or exc)) or type(exc).__name__)
        return DatabaseRefused(f"PostgreSQL refused a statement on {where}: "
                               f"{_first_line(str(exc)) or type(exc).__name__}")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    state = getattr(exc, "sqlstate", None) or ""
    diag = getattr(exc, "diag", None)
    primary = _first_line((getattr(diag, "message_primary", None) or "") if diag is not None else "") \
        or _first_line(str(exc)) or type(exc).__name__
    if state in _IN_USE:
        detail = _first_line(getattr(diag, "message_detail", None) or "") if diag is not None else ""
        extra = f" ({detail})" if detail else ""
        return DatabaseInUse(f"{primary}{extra}: {_IN_USE[state]}; end that session (or wait for it), then run "
                             "the command again")
    if state.startswith(_GONE_CLASSES) or state in _GONE:
        return _gone(where, primary)
    if state == "57014":
        return DatabaseRefused(f"PostgreSQL cancelled a statement on {where} ({primary}): a statement_timeout "
                               "or pg_cancel_backend(); raise the timeout of the role or find who cancelled it")
    if state == "42501":
        return DatabaseRefused(f"PostgreSQL refused a statement on {where} ({primary}): the role of "
                               "OPENWATCH_DATABASE_URL lacks that privilege; grant it or use a role that has it")
    if state == "53100":
        return DatabaseRefused(f"the database server's disk is full ({primary}); free space on {where}'s server")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not state:
        return _gone(where, primary)  # the connection broke: no SQLSTATE, no answer
    if state:
        return DatabaseRefused(f"PostgreSQL refused a statement on {where}: {primary} (SQLSTATE {state})")
    return None


def _gone(where: str, reason: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"lost the connection to {where} ({reason}); check that PostgreSQL is running, "
                               "then run the command again (`openwatch-backup sweep` cleans up after the run)")


def _other_error(exc: BaseException) -> BackupError | None:
    unreadable = tuple(getattr(_module(module), name) for module, name in (
        ("zstandard", "ZstdError"), ("zlib", "error"), ("openwatch_backup.core.artifact_stream", "UnreadableArtifact"))
        if _module(module) is not None)
    if isinstance(exc, unreadable):
        return ArtifactUnreadable(f"a stored stream does not decompress ({_first_line(str(exc))}); "
                                  "`openwatch-backup verify RUN` names the damaged backup")
    if isinstance(exc, OSError):
        what = f" {exc.filename}" if exc.filename else ""
        reason = exc.strerror or _first_line(str(exc)) or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return InsufficientSpace(f"the disk is full writing{what} ({reason}); free space or point "
                                     "OPENWATCH_BACKUP_DIR elsewhere")
        return StorageError(f"cannot read or write{what} ({reason}); check the path and its permissions")
    return None


def as_backup_error(exc: BaseException, *, where: str = "the database",
                    redact: Callable[[str], str] | None = None) -> BackupError:
    """Our error for any exception: itself if it is ours, a typed translation if known, else InternalError.

    `where` names the database for the messages (DatabaseTarget.describe(), never with a password);
    `redact` scrubs what the server or the OS said, as every stored or printed message must be.
    """
    if isinstance(exc, BackupError):
        return exc
    inner = _unwrap(exc)
    if isinstance(inner, BackupError):
        return inner
    translated = _database_error(inner, where) or _database_error(exc, where) or _other_error(inner)
    if translated is None:
        translated = InternalError(f"internal error, please report it: {type(inner).__name__}: "
                                   f"{_first_line(str(inner)) or 'no message'}")
    if redact is not None:
        translated.message = redact(translated.message)
    translated.__cause__ = exc
    return translated
