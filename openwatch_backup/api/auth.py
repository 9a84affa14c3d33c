"""Who may call the API, and where their actions are written down.

The router takes its auth as a dependency (`Auth`): OpenWatch's adapter checks its own user and the
`system:maintenance` permission (super_admin) and audits through `log_admin_event`; the standalone
default compares a bearer token from the environment in constant time and audits to the log.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import HTTPException, Request, status

audit_log = logging.getLogger("openwatch_backup.audit")
TOKEN_ENV = "OPENWATCH_BACKUP_API_TOKEN"  # noqa: S105 - the variable's name, not a token


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    user_id: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Auth(Protocol):
    def authenticate(self, request: Request) -> Principal:
        """The caller, or HTTPException 401 (no or bad credentials) / 403 (not allowed)."""

    def audit(self, request: Request, principal: Principal, action: str, details: dict[str, Any]) -> None:
        """Record a mutating call or a download."""


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class TokenAuth:
    """Standalone: one bearer token (OPENWATCH_BACKUP_API_TOKEN), compared in constant time."""

    def __init__(self, token: str | None = None) -> None:
        self._token = token if token is not None else os.environ.get(TOKEN_ENV, "")

    def authenticate(self, request: Request) -> Principal:
        if not self._token:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                detail=f"the backup API has no token configured; set {TOKEN_ENV}")
        given = _bearer(request)
        if given is None:
            raise _unauthorized("missing bearer token")
        if not hmac.compare_digest(given.encode(), self._token.encode()):
            raise _unauthorized("invalid token")
        return Principal(name="api-token", role="super_admin")

    def audit(self, request: Request, principal: Principal, action: str, details: dict[str, Any]) -> None:
        client = request.client.host if request.client else "-"
        audit_log.info("BACKUP_%s by %s from %s: %s", action.upper(), principal.name, client, details)


class OpenWatchAuth:
    """OpenWatch's own users: get_current_user + the system:maintenance permission, audited to audit_logs.

    OpenWatch passes its own callables (README, "Install into OpenWatch"), so this package imports nothing
    of OpenWatch's and the same code is tested here with stand-ins of the same shape.
    """

    def __init__(self, current_user: Callable[[str], dict[str, Any]], has_permission: Callable[[str, str], bool],
                 log_admin_event: Callable[..., Any] | None = None,
                 db_session: Callable[[], Any] | None = None, permission: str = "system:maintenance") -> None:
        self._current_user = current_user
        self._has_permission = has_permission
        self._log_admin_event = log_admin_event
        self._db_session = db_session
        self._permission = permission

    def authenticate(self, request: Request) -> Principal:
        token = _bearer(request)
        if token is None:
            raise _unauthorized("Not authenticated")
        try:
            user = self._current_user(token)
        except HTTPException as exc:
            raise _unauthorized(str(exc.detail)) from None
        role = str(user.get("role", ""))
        if not self._has_permission(role, self._permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"Permission {self._permission} required")
        return Principal(name=str(user.get("username", "")), role=role, user_id=user.get("id"))

    def audit(self, request: Request, principal: Principal, action: str, details: dict[str, Any]) -> None:
        client = request.client.host if request.client else "0.0.0.0"  # noqa: S104 - OpenWatch's own default
        audit_log.info("BACKUP_%s by %s from %s: %s", action.upper(), principal.name, client, details)
        if self._log_admin_event is None or self._db_session is None:
            return
        session = self._db_session()
        try:
            self._log_admin_event(session, f"BACKUP_{action.upper()}", principal.user_id, client,
                                  resource_type="backup", details=details)
        finally:
            close = getattr(session, "close", None)
            if close is not None:
                close()
