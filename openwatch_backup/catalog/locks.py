"""PostgreSQL advisory locks: single-flight across every worker and host.

`exclusive_operation` is a session lock held on a connection of its own for the whole backup, restore
or prune: if the worker dies, PostgreSQL closes the connection and the lock is gone with it. The
request lock is a transaction lock that serialises "is one running? else queue one", so fifty clicks on
"Back up now" queue exactly one run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.errors import BackupError
from openwatch_backup.source.connection import connect

# Two fixed 64-bit keys in the plugin's own space (first bytes of "owbackup"); OpenWatch takes none.
EXCLUSIVE_KEY = 0x6F776261636B0001
REQUEST_KEY = 0x6F776261636B0002


class OperationBusy(BackupError):
    """Another backup, restore or prune holds the lock."""

    code = "busy"
    exit_status = 11


@contextmanager
def exclusive_operation(target: DatabaseTarget, redact: Callable[[str], str], wait_seconds: float,
                        holder: Callable[[], str]) -> Iterator[None]:
    """Hold the plugin's exclusive lock; OperationBusy (naming the holder) after wait_seconds."""
    conn = connect(target, redact)
    try:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(conn):
            if time.monotonic() >= deadline:
                raise OperationBusy(f"another backup, restore or prune is running ({holder()}); wait for it to "
                                    "finish or raise OPENWATCH_BACKUP_LOCK_WAIT_SECONDS")
            time.sleep(0.5)
        yield
    finally:
        conn.close()  # closing the session releases the lock, also on every error path


def _try_lock(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (EXCLUSIVE_KEY,)).fetchone()
    return bool(row and row[0])
