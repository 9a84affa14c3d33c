"""Our errors as HTTP answers: the status from the error type, the one-line message as `detail`; and 422s for
malformed requests in the same one-line shape."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from openwatch_backup.catalog.locks import OperationBusy
from openwatch_backup.errors import (
    BackupError,
    CatalogMissing,
    ConfigError,
    DatabaseInUse,
    DatabaseRefused,
    DatabaseUnavailable,
    RestoreRefused,
    RunNotFound,
)
from openwatch_backup.foreign_errors import as_backup_error

_STATUS: list[tuple[type[BackupError], int]] = [
    (RunNotFound, status.HTTP_404_NOT_FOUND),
    (OperationBusy, status.HTTP_409_CONFLICT),
    (RestoreRefused, status.HTTP_409_CONFLICT),
    (ConfigError, 422),  # a literal: the constant's name changed across Starlette versions
    (DatabaseUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
    (DatabaseInUse, status.HTTP_409_CONFLICT),
    (DatabaseRefused, status.HTTP_503_SERVICE_UNAVAILABLE),
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
    except HTTPException:
        raise
    except Exception as exc:  # a driver's or the OS's error: typed in one place (foreign_errors), never a traceback
        ours = as_backup_error(exc)
        raise HTTPException(http_status(ours), detail=ours.message, headers={"X-Error-Code": ours.code}) from None


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "schedule", "backup") -> "schedule.backup"; ("query", "limit") -> "query parameter limit"."""
    source, *path = [str(part) for part in loc] or ["body"]
    if source == "body":
        return ".".join(path) if path and not path[0].isdigit() else "the request body"
    return f"{source} parameter {'.'.join(path)}" if source in ("query", "path", "header") else ".".join(loc)


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "is not valid JSON"
    if error.get("type") == "uuid_parsing":
        return "is not a UUID (e.g. 3f2c9a4e-0b1d-4c55-9e0a-7f4b2a1c8d90)"
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return " ".join(message.split())  # one line, whatever a validator wrote


def validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's list of field errors as one line naming each bad field, never repeating the input."""
    errors = list(exc.errors())
    parts = [f"{_where(e.get('loc', ()))}: {_message(e)}" for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more if parts else "the request is invalid"


def validation_response(exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": validation_detail(exc)}, status_code=422,
                        headers={"X-Error-Code": "invalid_request"})


class OneLineErrorsRoute(APIRoute):
    """Routes whose 422 is the documented {"detail": "<one line>"} instead of FastAPI's echoing list.

    A router cannot register exception handlers (OpenWatch's app owns those, and its own 422s must stay as they
    are), so each of our routes catches RequestValidationError around its own handler.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def one_line_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return validation_response(exc)

        return one_line_errors
