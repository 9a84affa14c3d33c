"""Who may call the API, and where their actions are written down.

The router takes its auth as a dependency (`Auth`): OpenWatch's adapter checks its own user and the
`system:maintenance` permission (super_admin, or an API key holding it) and audits through
`log_audit_event`; the standalone default compares a bearer token from the environment in constant time and
audits to the log.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import HTTPException, Request, status

audit_log = logging.getLogger("openwatch_backup.audit")
TOKEN_ENV = "OPENWATCH_BACKUP_API_TOKEN"  # noqa: S105 - the variable's name, not a token
API_KEY_ROLE = "api_key"  # what OpenWatch's get_current_user says for an `owk_...` key


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    user_id: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditFailure:
    """The last audit record that could not be written (shown by GET /status)."""

    at: datetime
    action: str
    error: str


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

    page_login = "token"  # the admin page asks for this token (page.py)

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
    """OpenWatch's own callers: get_current_user + the system:maintenance permission, audited to audit_logs.

    OpenWatch passes its own callables (README, "Install into OpenWatch"), so this package imports nothing
    of OpenWatch's and the same code is tested here with stand-ins of the same signatures:

    - `current_user(token) -> dict`: a user's JWT payload (`role` one of the six roles, `id` an int), or for an
      API key (`owk_...`) `role: "api_key"` with a `permissions` list (the key's id is a UUID string);
    - `has_permission(role, permission) -> bool` for users' roles; an API key is judged by its own
      `permissions` instead, and a role OpenWatch's enum does not know is refused (403), never a 500;
    - `log_audit_event(db, action, resource_type, resource_id=None, user_id=None, ip_address="0.0.0.0",
      user_agent=None, details=None) -> bool` (app.audit_db): `details` is text, so ours go as JSON; it
      swallows its own errors and returns False, so a False (or an exception) is logged as an error and kept
      as `last_audit_error` for the status endpoint.
    """

    # The admin page, served on OpenWatch's origin, uses the admin's own OpenWatch login (page.py).
    page_login = "openwatch"

    def __init__(self, current_user: Callable[[str], dict[str, Any]], has_permission: Callable[[str, str], bool],
                 log_audit_event: Callable[..., Any] | None = None,
                 db_session: Callable[[], Any] | None = None, permission: str = "system:maintenance") -> None:
        self._current_user = current_user
        self._has_permission = has_permission
        self._log_audit_event = log_audit_event
        self._db_session = db_session
        self._permission = permission
        self.last_audit_error: AuditFailure | None = None

    def authenticate(self, request: Request) -> Principal:
        token = _bearer(request)
        if token is None:
            raise _unauthorized("Not authenticated")
        try:
            user = self._current_user(token)
        except HTTPException as exc:
            raise _unauthorized(str(exc.detail)) from None
        role = str(user.get("role", ""))
        if not self._allowed(role, user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"Permission {self._permission} required")
        user_id = user.get("id")
        extra = {"api_key_id": str(user.get("api_key_id") or user_id)} if role == API_KEY_ROLE else {}
        # audit_logs.user_id is an integer (users.id); an API key's id is a UUID string and goes in the details.
        return Principal(name=str(user.get("username", "")), role=role,
                         user_id=user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None,
                         extra=extra)

    def _allowed(self, role: str, user: dict[str, Any]) -> bool:
        if role == API_KEY_ROLE:
            return self._permission in api_key_permissions(user.get("permissions"))
        try:
            return bool(self._has_permission(role, self._permission))
        except (ValueError, KeyError):  # UserRole(role) / Permission(perm) of a value OpenWatch does not know
            audit_log.warning("refused a caller with the unknown role %r", role[:40])
            return False

    def audit(self, request: Request, principal: Principal, action: str, details: dict[str, Any]) -> None:
        client = request.client.host if request.client else "0.0.0.0"  # noqa: S104 - OpenWatch's own default
        name = f"BACKUP_{action.upper()}"
        audit_log.info("%s by %s from %s: %s", name, principal.name, client, details)
        if self._log_audit_event is None or self._db_session is None:
            return
        record = {**principal.extra, **details}
        resource_id = record.get("run_id")
        reason: str | None = None
        session = self._db_session()
        try:
            written = self._log_audit_event(session, name, "backup", resource_id=str(resource_id)[:100]
                                            if resource_id else None, user_id=principal.user_id,
                                            ip_address=client[:45], user_agent=request.headers.get("user-agent"),
                                            details=json.dumps(record, default=str, sort_keys=True))
            if written is False:
                reason = "log_audit_event returned False (OpenWatch's log, logger app.audit_db, has the cause)"
        except Exception as exc:  # the action itself is done; its audit record must not turn it into a 500
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")
        finally:
            close = getattr(session, "close", None)
            if close is not None:
                close()
        if reason is not None:
            self.last_audit_error = AuditFailure(at=datetime.now(UTC), action=name, error=reason)
            audit_log.error("audit record %s by %s was NOT written to OpenWatch's audit_logs: %s", name,
                            principal.name, reason)


def api_key_permissions(value: Any) -> set[str]:
    """An API key's permissions as "resource:action" strings: OpenWatch's get_current_user hands over the stored
    JSON, a list (`["system:maintenance"]`, what its require_permissions reads) or, as its API-key routes store
    it, a mapping of resource to actions (`{"system": ["maintenance"]}`). Anything else grants nothing."""
    if isinstance(value, list | tuple | set):
        return {item for item in value if isinstance(item, str)}
    if isinstance(value, dict):
        return {f"{resource}:{act}" for resource, acts in value.items() if isinstance(resource, str)
                and isinstance(acts, list | tuple) for act in acts if isinstance(act, str)}
    return set()
