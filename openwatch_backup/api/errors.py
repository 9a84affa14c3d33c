"""Our errors as HTTP answers: the status from the error type, the one-line message as `detail`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, status

from openwatch_backup.catalog.locks import OperationBusy
from openwatch_backup.errors import (
    BackupError,
    CatalogMissing,
    ConfigError,
    DatabaseUnavailable,
    RestoreRefused,
    RunNotFound,
)

_STATUS: list[tuple[type[BackupError], int]] = [
    (RunNotFound, status.HTTP_404_NOT_FOUND),
    (OperationBusy, status.HTTP_409_CONFLICT),
    (RestoreRefused, status.HTTP_409_CONFLICT),
    (ConfigError, 422),  # a literal: the constant's name changed across Starlette versions
    (DatabaseUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
    (CatalogMissing, status.HTTP_503_SERVICE_UNAVAILABLE),
]


def http_status(exc: BackupError) -> int:
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


@contextmanager
def translated() -> Iterator[None]:
    """Routers cannot register exception handlers (the app owns those), so each route translates here."""
    try:
        yield
    except BackupError as exc:
        raise HTTPException(http_status(exc), detail=exc.message, headers={"X-Error-Code": exc.code}) from None
