"""Our errors as HTTP answers: the status from the error type, the one-line message as `detail`; and 422s for
malformed requests in the same one-line shape, with each bad field named and its problem in words ("must be at
least 0", never pydantic's greater_than_equal) so a form can show it under its input."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from openwatch_backup.api.schemas import CRON, DATABASE_NAME, IDENTIFIER
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


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """The field a form shows the error under: "schedule.backup", "retention.days", "limit"; "" for the body."""
    source, *path = [str(part) for part in loc] or ["body"]
    if source == "body" and (not path or path[0].isdigit()):
        return ""
    return ".".join(path) if path else source


# Patterns whose regex would mean nothing to a reader, said in words.
_PATTERN_WORDS = {
    CRON: "is not a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'",
    IDENTIFIER: "is not a table name (letters, digits and _, not starting with a digit, optionally schema.table; "
                "at most 63 characters each)",
    DATABASE_NAME: "is not a database name (letters, digits and _, not starting with a digit; at most 63 characters)",
    r"^[a-z]+$": "must be lower-case letters only, e.g. full or succeeded",  # the runs list's kind and status
}


def _number(value: Any) -> str:
    """36500 -> "36,500" (as allowed_range writes bounds); 1.0 -> "1"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _plural(count: Any, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _expected(expected: str) -> str:
    """pydantic's "'zstd', 'pg' or 'none'" as "one of 'zstd', 'pg' or 'none'"; a single "True" as "true"."""
    if expected in ("True", "False"):
        return expected.lower()
    return f"one of {expected}" if " or " in expected else expected


def _message(error: dict[str, Any]) -> str:
    """pydantic's error in words a form can show under its field: "must be at least 0", not greater_than_equal."""
    kind, ctx = error.get("type"), error.get("ctx") or {}
    words: dict[str, Callable[[], str]] = {
        "json_invalid": lambda: "is not valid JSON",
        "uuid_parsing": lambda: "is not a UUID (e.g. 3f2c9a4e-0b1d-4c55-9e0a-7f4b2a1c8d90)",
        "uuid_type": lambda: "is not a UUID (e.g. 3f2c9a4e-0b1d-4c55-9e0a-7f4b2a1c8d90)",
        "missing": lambda: "is required",
        "extra_forbidden": lambda: "is not a field this request takes",
        "greater_than_equal": lambda: f"must be at least {_number(ctx.get('ge'))}",
        "greater_than": lambda: f"must be more than {_number(ctx.get('gt'))}",
        "less_than_equal": lambda: f"must be at most {_number(ctx.get('le'))}",
        "less_than": lambda: f"must be less than {_number(ctx.get('lt'))}",
        "int_parsing": lambda: "must be a whole number",
        "int_type": lambda: "must be a whole number",
        "int_from_float": lambda: "must be a whole number",
        "int_parsing_size": lambda: "is far too large (must be a whole number within the allowed range)",
        "float_parsing": lambda: "must be a number",
        "float_type": lambda: "must be a number",
        "finite_number": lambda: "must be a finite number",
        "bool_parsing": lambda: "must be true or false",
        "bool_type": lambda: "must be true or false",
        "string_type": lambda: "must be text",
        "string_too_short": lambda: ("must not be empty" if ctx.get("min_length") == 1
                                     else f"must have at least {_plural(ctx.get('min_length'), 'character')}"),
        "string_too_long": lambda: f"must have at most {_plural(ctx.get('max_length'), 'character')}",
        "too_short": lambda: f"must have at least {_plural(ctx.get('min_length'), 'item')}",
        "too_long": lambda: f"must have at most {_plural(ctx.get('max_length'), 'item')}",
        "list_type": lambda: "must be a list",
        "model_type": lambda: "must be a JSON object",
        "model_attributes_type": lambda: "must be a JSON object",
        "dict_type": lambda: "must be a JSON object",
        "literal_error": lambda: f"must be {_expected(str(ctx.get('expected')))}",
        "enum": lambda: f"must be {_expected(str(ctx.get('expected')))}",
        "string_pattern_mismatch": lambda: _PATTERN_WORDS.get(
            str(ctx.get("pattern")), f"does not have the expected form ({ctx.get('pattern')})"),
    }
    if kind in words:
        return words[str(kind)]()
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")  # a validator's own words
    return " ".join(message.split())  # one line, whatever a validator wrote


@dataclass(frozen=True)
class FieldProblem:
    """One bad field: where the page shows it ("retention.days", "" for the whole body) and what is wrong."""

    field: str
    message: str
    where: str  # how the one-line detail names it ("retention.days", "query parameter limit", "the request body")

    def line(self) -> str:
        return f"{self.where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def field_problems(exc: RequestValidationError) -> list[FieldProblem]:
    """FastAPI's validation errors as fields and words, never repeating the input."""
    return [FieldProblem(_field(e.get("loc", ())), _message(e), _where(e.get("loc", ()))) for e in exc.errors()]


def validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's list of field errors as one line naming each bad field, never repeating the input."""
    problems = field_problems(exc)
    parts = [problem.line() for problem in problems[:3]]
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(parts) + more if parts else "the request is invalid"


def field_error_response(detail: str, problems: list[FieldProblem], code: str = "invalid_request",
                         status_code: int = 422) -> JSONResponse:
    """The documented 422: the one line, and each field with its words (the admin page shows them per input)."""
    return JSONResponse({"detail": detail, "errors": [problem.as_dict() for problem in problems]},
                        status_code=status_code, headers={"X-Error-Code": code})


def validation_response(exc: RequestValidationError) -> JSONResponse:
    return field_error_response(validation_detail(exc), field_problems(exc))


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
