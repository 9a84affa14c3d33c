"""The one-line errors of a catalog read, whichever way it reached PostgreSQL.

RunRecorder (SQLAlchemy) and the CLI's `list` (psycopg alone, catalog/fast_list.py) both end here, so a missing
table or an unreachable server reads the same from either. Nothing heavy is imported: `list` starts in 0.3 s.
"""

from __future__ import annotations

from openwatch_backup.errors import BackupError, CatalogMissing, DatabaseUnavailable
from openwatch_backup.foreign_errors import as_backup_error

UNDEFINED_TABLE = "42P01"


def refused(exc: BaseException, sqlstate: str | None, database: str) -> BackupError:
    """The server answered the statement with an error (the driver's ProgrammingError)."""
    if sqlstate == UNDEFINED_TABLE:
        return CatalogMissing(f"the backup_runs table does not exist in {database}; "
                              "run `openwatch-backup db upgrade` first")
    return as_backup_error(exc, where=f"the catalog database {database}")


def unreachable(exc: BaseException, driver_error: BaseException | None, database: str) -> BackupError:
    """The connection failed or broke (the driver's OperationalError); `driver_error` is psycopg's own."""
    translated = as_backup_error(exc, where=f"the catalog database {database}")
    if not isinstance(translated, DatabaseUnavailable):  # answered, but refused: a lock, a privilege...
        return translated
    reason = str(driver_error).strip().splitlines()[0] if driver_error else "no answer"
    return DatabaseUnavailable(f"cannot reach the catalog database {database} ({reason}); check "
                               "OPENWATCH_DATABASE_URL and that PostgreSQL is running")
