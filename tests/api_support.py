"""The backup API as OpenWatch mounts it, for the tests: a FastAPI app with `backups_router` under
/api/system/backups, OpenWatch-shaped auth stand-ins, a catalog database with runs in it, and helpers to send
requests exactly as a client wrote them (no URL normalisation) to a uvicorn on loopback.

OpenWatch's shapes (shared/reference/openwatch.md, section 4) the stand-ins copy:
- `current_user(token) -> dict` like OpenWatch's JWT payload (`sub`, `id`, `username`, `email`, `role`,
  `mfa_enabled`, `exp`, `iat`, `jti`), raising `HTTPException(401)` for a missing, forged or expired token;
  and for an `owk_` API key OpenWatch's API-key dict (`role: "api_key"`, its `permissions`, a UUID string id);
- `has_permission(role, permission)` over `ROLE_PERMISSIONS` (the six roles and the Permission values the
  reference lists; what it states is kept exactly: `system:config`, `system:credentials` and `system:maintenance`
  belong to super_admin only, security_admin has `system:logs`; the other roles' read/scan/report lists are
  plausible fillers, none of them grants a `system:*` permission); an unknown role raises ValueError, as the
  README's `UserRole(role)` does;
- `log_audit_event` and `log_admin_event` with OpenWatch's exact signatures (backend/app/audit_db.py), over a
  session that refuses what psycopg2 and audit_logs' columns refuse (a dict as `details`, too long a text),
  and with a database URL really inserts the row.

Fixtures are imported by the test modules that use them under their `*_fixture` names (as in
tests/celery_support.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import importlib.util
import itertools
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from celery import Celery
from fastapi import FastAPI, HTTPException

from openwatch_backup import devstack
from openwatch_backup.api import OpenWatchAuth, backups_router
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

with warnings.catch_warnings():
    # Starlette 1.x warns at import that its TestClient wants `httpx2` (not installed here); httpx works.
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

PREFIX = "/api/system/backups"

# --- OpenWatch's RBAC (backend/app/rbac.py), as the reference describes it ----------------------------------
ROLES = ("super_admin", "security_admin", "security_analyst", "compliance_officer", "auditor", "guest")
_ALL = [f"user:{a}" for a in ("create", "read", "update", "delete", "manage_roles")] + \
    [f"host:{a}" for a in ("create", "read", "update", "delete", "manage_access")] + \
    [f"content:{a}" for a in ("create", "read", "update", "delete")] + \
    [f"scan:{a}" for a in ("create", "read", "update", "delete", "execute", "write", "approve", "rollback")] + \
    ["results:read", "results:read_all", "reports:generate", "reports:export",
     "system:config", "system:credentials", "system:logs", "system:maintenance",
     "audit:read", "compliance:view", "compliance:export"]
SUPER_ADMIN_ONLY = {"system:config", "system:credentials", "system:maintenance"}
ROLE_PERMISSIONS: dict[str, list[str]] = {
    "super_admin": list(_ALL),
    "security_admin": [p for p in _ALL if p not in SUPER_ADMIN_ONLY and p != "user:manage_roles"],
    "security_analyst": ["host:read", "content:read", "scan:create", "scan:read", "scan:execute", "scan:write",
                         "results:read", "reports:generate", "compliance:view"],
    "compliance_officer": ["host:read", "content:read", "scan:read", "results:read", "results:read_all",
                           "reports:generate", "reports:export", "audit:read", "compliance:view",
                           "compliance:export"],
    "auditor": ["host:read", "scan:read", "results:read", "results:read_all", "reports:generate", "audit:read",
                "compliance:view"],
    "guest": ["host:read", "scan:read", "results:read"],
}
assert [r for r, perms in ROLE_PERMISSIONS.items() if "system:maintenance" in perms] == ["super_admin"]
assert "system:logs" in ROLE_PERMISSIONS["security_admin"]


def has_permission(role: str, permission: str) -> bool:
    """README's `Permission(perm) in ROLE_PERMISSIONS.get(UserRole(role), [])`: a role OpenWatch's UserRole enum
    does not know (such as an API key's "api_key") raises ValueError, as `UserRole(role)` does."""
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"{role!r} is not a valid UserRole")
    return permission in ROLE_PERMISSIONS[role]


# --- tokens: a JWT-like test token (header.payload.signature, HMAC-SHA256 with a per-session key) ----------
_TOKEN_KEY = secrets.token_bytes(32)
USER_IDS = {role: number for number, role in enumerate(ROLES, start=1)}
# OpenWatch's api_keys rows (backend/app/database.py ApiKey: UUID id, name, sha256 key_hash, JSON permissions).
_API_KEYS: dict[str, dict[str, Any]] = {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(role: str, *, username: str | None = None, user_id: int | None = None,
               expires_in: float = 12 * 3600, key: bytes = _TOKEN_KEY) -> str:
    """A token whose payload has the fields of OpenWatch's access token (routes/auth/login.py). OpenWatch's expire
    after 30 minutes; these last 12 hours, as test modules make theirs at import, long before a full suite
    reaches them."""
    now = int(time.time())
    name = username or f"{role}-user"
    payload = {"sub": name, "id": user_id if user_id is not None else USER_IDS.get(role, 99), "username": name,
               "email": f"{name}@example.test", "role": role, "mfa_enabled": False, "iat": now,
               "exp": now + int(expires_in), "jti": uuid.uuid4().hex}
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = _b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{signature}"


def make_api_key(permissions: Any, name: str = "backup-robot") -> tuple[str, str]:
    """An OpenWatch API key (`owk_` + token_urlsafe(32), stored by its sha256): (the key, its row's id)."""
    key = f"owk_{secrets.token_urlsafe(32)}"
    key_id = str(uuid.uuid4())
    _API_KEYS[hashlib.sha256(key.encode()).hexdigest()] = {"id": key_id, "name": name, "permissions": permissions}
    return key, key_id


def current_user(token: str) -> dict[str, Any]:
    """OpenWatch's get_current_user (backend/app/auth.py), minus FastAPI: for an `owk_` API key the dict it
    builds from the api_keys row (role "api_key", the stored permissions, the key's UUID as a string), for a
    JWT its payload; HTTPException(401) otherwise."""
    invalid = HTTPException(401, detail="Could not validate credentials", headers={"WWW-Authenticate": "Bearer"})
    if token.startswith("owk_"):
        row = _API_KEYS.get(hashlib.sha256(token.encode()).hexdigest())
        if row is None:
            raise HTTPException(401, detail="Invalid API key")
        return {"sub": f"api_key_{row['id']}", "id": row["id"], "username": f"API Key: {row['name']}",
                "email": None, "role": "api_key", "permissions": row["permissions"], "api_key_id": row["id"],
                "api_key_name": row["name"]}
    try:
        head, body, signature = token.split(".")
        expected = _b64(hmac.new(_TOKEN_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(signature, expected):
            raise invalid
        payload: dict[str, Any] = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if payload.get("exp", 0) < time.time():
        raise HTTPException(401, detail="Token has expired", headers={"WWW-Authenticate": "Bearer"})
    return payload


def bearer(role_or_token: str) -> dict[str, str]:
    """Authorization header for a role (a fresh token) or for a literal token."""
    token = make_token(role_or_token) if role_or_token in ROLES else role_or_token
    return {"Authorization": f"Bearer {token}"}


# --- OpenWatch's audit log (backend/app/audit_db.py) --------------------------------------------------------
# The signatures below are OpenWatch's, copied (a12e8f1e); tests/test_api_rbac.py pins them. audit_logs columns
# (baseline migration 001): user_id integer, action varchar(50), resource_type varchar(50), resource_id
# varchar(100), ip_address varchar(45) NOT NULL, user_agent varchar(500), details text, timestamp NOT NULL.
AUDIT_COLUMN_TYPES: dict[str, tuple[type, int | None]] = {
    "user_id": (int, None), "action": (str, 50), "resource_type": (str, 50), "resource_id": (str, 100),
    "ip_address": (str, 45), "user_agent": (str, 500), "details": (str, None)}
_INSERT_AUDIT = ("INSERT INTO audit_logs (user_id, action, resource_type, resource_id, ip_address, user_agent, "
                 "details, timestamp) VALUES (%(user_id)s, %(action)s, %(resource_type)s, %(resource_id)s, "
                 "%(ip_address)s, %(user_agent)s, %(details)s, %(timestamp)s)")
audit_db_log = logging.getLogger("tests.openwatch.audit_db")


@dataclass
class AuditCall:
    session: AuditSession
    action: str
    user_id: Any
    ip_address: str
    resource_type: str
    details: Any  # the stored text, parsed as JSON (None when there is none)
    resource_id: str | None = None
    user_agent: str | None = None


class AuditSession:
    """`SessionLocal()` as OpenWatch's audit helpers use it (execute, commit, rollback, close). Parameters are
    checked the way the driver and audit_logs' columns check them: a dict, a list or a number where text belongs
    is refused ("can't adapt type 'dict'"), and so is text longer than its column. With a database URL the row is
    really inserted into that database's audit_logs."""

    def __init__(self, number: int, url: str | None) -> None:
        self.number = number
        self.closed = False
        self.committed = 0
        self._conn = psycopg.connect(url) if url else None

    def execute(self, params: dict[str, Any]) -> None:
        for column, (kind, limit) in AUDIT_COLUMN_TYPES.items():
            value = params[column]
            if value is None:
                continue
            if isinstance(value, dict | list):
                raise psycopg.ProgrammingError(f"can't adapt type '{type(value).__name__}'")
            if not isinstance(value, kind) or isinstance(value, bool):
                raise psycopg.errors.DatatypeMismatch(f"column {column!r} is {kind.__name__}, got {value!r}")
            if limit is not None and len(value) > limit:
                raise psycopg.errors.StringDataRightTruncation(f"value too long for type character varying({limit})")
        if params["ip_address"] is None:
            raise psycopg.errors.NotNullViolation('null value in column "ip_address"')
        if self._conn is not None:
            self._conn.execute(_INSERT_AUDIT, params)

    def commit(self) -> None:
        if self._conn is not None:
            self._conn.commit()
        self.committed += 1

    def rollback(self) -> None:
        if self._conn is not None:
            self._conn.rollback()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self.closed = True


@dataclass
class AuditLog:
    """OpenWatch's audit_db helpers over `AuditSession`s; `calls` holds the rows written."""

    url: str | None = None
    calls: list[AuditCall] = field(default_factory=list)
    sessions: list[AuditSession] = field(default_factory=list)

    def db_session(self) -> AuditSession:
        session = AuditSession(len(self.sessions) + 1, self.url)
        self.sessions.append(session)
        return session

    def log_audit_event(
        self,
        db: Any,
        action: str,
        resource_type: str,
        resource_id: str | None = None,
        user_id: int | None = None,
        ip_address: str = "0.0.0.0",
        user_agent: str | None = None,
        details: str | None = None,
    ) -> bool:
        """As OpenWatch's: insert, commit, True; any error is logged and rolled back, and the answer is False."""
        try:
            if not isinstance(ip_address, str):
                audit_db_log.error("Invalid ip_address parameter type: %s", type(ip_address))
                return False
            params = {"user_id": user_id, "action": action, "resource_type": resource_type,
                      "resource_id": resource_id, "ip_address": ip_address, "user_agent": user_agent,
                      "details": details, "timestamp": datetime.now(UTC).replace(tzinfo=None)}
            db.execute(params)
            db.commit()
        except Exception as exc:
            audit_db_log.error("Failed to log audit event: %s", exc)
            db.rollback()
            return False
        self.calls.append(AuditCall(db, action, user_id, ip_address, resource_type,
                                    json.loads(details) if details else None, resource_id, user_agent))
        return True

    def log_admin_event(
        self,
        db: Any,
        action: str,
        user_id: int,
        ip_address: str,
        resource_type: str = "system",
        details: str | None = None,
    ) -> bool:
        return self.log_audit_event(db=db, action=f"ADMIN_{action.upper()}", resource_type=resource_type,
                                    user_id=user_id, ip_address=ip_address, details=details)

    def actions(self) -> list[str]:
        return [c.action for c in self.calls]

    def clear(self) -> None:
        self.calls.clear()
        self.sessions.clear()


def openwatch_auth(audit: AuditLog) -> OpenWatchAuth:
    """The README's OpenWatchAuth line with the stand-ins in place of OpenWatch's functions."""
    return OpenWatchAuth(current_user=current_user, has_permission=has_permission,
                         log_audit_event=audit.log_audit_event, db_session=audit.db_session)


# --- the app ------------------------------------------------------------------------------------------------
@dataclass
class Submitted:
    """A `submit=` stand-in: records (kind, run_id) instead of sending a task."""

    calls: list[tuple[str, uuid.UUID]] = field(default_factory=list)

    def __call__(self, kind: str, run_id: uuid.UUID) -> None:
        self.calls.append((kind, run_id))


class Services:
    """The `service_factory` the router gets; remembers every service it made so teardown can close them."""

    def __init__(self, url: str, backup_dir: Path, **overrides: Any) -> None:
        self.url = url
        self.backup_dir = backup_dir
        self.overrides = overrides
        self.made: list[BackupService] = []

    def __call__(self) -> BackupService:
        service = BackupService(load_settings(database_url=self.url, dir=self.backup_dir, **self.overrides))
        self.made.append(service)
        return service

    def close(self) -> None:
        for service in self.made:
            service.close()


def build_app(*, auth: Any, services: Services, celery_app: Any = None, submit: Any = None) -> FastAPI:
    """FastAPI() + backups_router(...) mounted where OpenWatch mounts it (/api/system/backups)."""
    app = FastAPI(title="OpenWatch (test)")
    app.include_router(backups_router(auth=auth, celery_app=celery_app, submit=submit, service_factory=services),
                       prefix=PREFIX)
    return app


def client_for(app: FastAPI) -> TestClient:
    """A TestClient that hands back 5xx answers instead of raising (a test asserts on the status)."""
    return TestClient(app, raise_server_exceptions=False)


@contextlib.contextmanager
def catalog_client(catalog: Catalog, *, audit: AuditLog | None = None, submit: Any = None) -> Iterator[TestClient]:
    """The router on the catalog as OpenWatch mounts it (OpenWatch's auth, audited to `audit`), tasks recorded
    by `submit` (a new Submitted() by default); its services closed after."""
    services = Services(catalog.url, catalog.backup_dir)
    try:
        app = build_app(auth=openwatch_auth(audit if audit is not None else AuditLog()), services=services,
                        submit=submit if submit is not None else Submitted())
        with client_for(app) as client:
            yield client
    finally:
        services.close()


# --- OpenWatch's Celery app and worker ---------------------------------------------------------------------
CELERY_APP_MODULE = "openwatch_backup.devstack.celery_app"
WORKER_QUEUES = "default,maintenance"
_app_numbers = itertools.count(1)


def openwatch_celery_app(broker_url: str) -> Celery:
    """A fresh instance of OpenWatch's app (openwatch_backup/devstack/celery_app.py executed anew, with its
    configuration and the plugin's `install` line) bound to `broker_url`, as OpenWatch's backend holds it.

    Importing the module would hand back the one instance made at first import, bound to whichever Redis was
    configured then; executing the file again binds this one to this test's Redis database.
    """
    import openwatch_backup.devstack.celery_app as module

    saved = os.environ.get("OPENWATCH_REDIS_URL")
    spec = importlib.util.spec_from_file_location(f"owb_api_celery_app_{next(_app_numbers)}", module.__file__)
    assert spec is not None
    assert spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    os.environ["OPENWATCH_REDIS_URL"] = broker_url
    try:
        spec.loader.exec_module(fresh)
    finally:
        if saved is None:
            os.environ.pop("OPENWATCH_REDIS_URL", None)
        else:
            os.environ["OPENWATCH_REDIS_URL"] = saved
    app: Celery = fresh.celery_app
    assert app.conf.broker_url == broker_url
    return app


@pytest.fixture(name="api_celery")
def api_celery_fixture(broker_url: str) -> Iterator[Celery]:
    """OpenWatch's Celery app bound to this test's Redis database (celery_support's `broker_url`)."""
    app = openwatch_celery_app(broker_url)
    try:
        yield app
    finally:
        app.close()


def start_worker(processes: Any, *, database_url: str, backup_dir: Path, broker_url: str, **env: Any) -> Any:
    """`python -m celery -A openwatch_backup.devstack.celery_app worker -Q default,maintenance` in its own
    session (celery_support.Processes: stopped by PID at teardown), waited until ready."""
    from tests.celery_support import plugin_env

    node = f"owbapi-{uuid.uuid4().hex[:8]}@%h"
    argv = [sys.executable, "-m", "celery", "-A", CELERY_APP_MODULE, "worker", "--loglevel=info", "-Q",
            WORKER_QUEUES, "--concurrency=2", "-n", node, "--without-gossip", "--without-mingle"]
    worker = processes.start("worker", argv, plugin_env(database_url, backup_dir, broker_url, **env))
    worker.wait_for_log(r"\bready\.", timeout=45)
    return worker


# --- a catalog with runs in it --------------------------------------------------------------------------------
@dataclass
class Catalog:
    """A copy of the seeded OpenWatch database with the plugin's tables, a backup folder, and runs."""

    pg: devstack.PostgresHandle
    name: str
    url: str
    backup_dir: Path
    service: BackupService
    backup: BackupRun  # a succeeded full backup, its artifact in backup_dir
    verify: BackupRun  # a succeeded quick verify of it
    failed: BackupRun  # a failed backup (no artifact)

    def runs(self) -> list[BackupRun]:
        return self.service.recorder.list(limit=1000)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params)  # type: ignore[arg-type]


def failed_backup(service: BackupService) -> BackupRun:
    run_id = service.recorder.create("full", "cli", "test", details={"request": {"kind": "full", "tables": [],
                                                                                 "compression": "zstd"}})
    service.recorder.claim(run_id)
    service.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, "dump_failed", "pg_dump exited with 1 (test)")
    return service.get_run(str(run_id))


@contextlib.contextmanager
def make_catalog(pg: devstack.PostgresHandle, template: str, backup_dir: Path,
                 prefix: str = "api") -> Iterator[Catalog]:
    name = devstack.scratch_database_name(prefix)
    devstack.create_database(pg, name, template=template)
    url = pg.url_for(name)
    service = BackupService(load_settings(database_url=url, dir=backup_dir))
    try:
        service.db_upgrade()
        backup = service.backup(service.build_request(), requested_by="fixture")
        assert backup.status == "succeeded", backup.error
        verify, _ = service.verify(str(backup.id), requested_by="fixture")
        assert verify.status == "succeeded", verify.error
        yield Catalog(pg, name, url, backup_dir, service, backup, verify, failed_backup(service))
    finally:
        service.close()
        devstack.drop_database(pg, name)


@pytest.fixture(scope="module", name="module_catalog")
def module_catalog_fixture(pg: devstack.PostgresHandle, openwatch_template: str,
                           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """One catalog for the module's read-mostly tests (tests that change it put it back)."""
    with make_catalog(pg, openwatch_template, tmp_path_factory.mktemp("backups"), "apimod") as catalog:
        yield catalog


@pytest.fixture(name="catalog")
def catalog_fixture(pg: devstack.PostgresHandle, openwatch_template: str, tmp_path: Path) -> Iterator[Catalog]:
    """A catalog of the test's own (for tests that queue runs or change settings)."""
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    with make_catalog(pg, openwatch_template, backup_dir) as catalog:
        yield catalog


@pytest.fixture(name="audit")
def audit_fixture() -> AuditLog:
    return AuditLog()


@pytest.fixture(scope="module", name="module_audit")
def module_audit_fixture() -> AuditLog:
    return AuditLog()


@pytest.fixture(scope="module", name="submitted")
def submitted_fixture() -> Submitted:
    return Submitted()


@pytest.fixture(scope="module", name="client")
def module_client_fixture(module_catalog: Catalog, module_audit: AuditLog,
                          submitted: Submitted) -> Iterator[TestClient]:
    """The router on the module's catalog; the module's tests share its audit log and submitted tasks."""
    with catalog_client(module_catalog, audit=module_audit, submit=submitted) as client:
        yield client


# --- raw HTTP to a real server: the path exactly as written -----------------------------------------------
class LoopbackServer:
    """uvicorn serving `app` on 127.0.0.1 (a free port) in a thread, for requests whose path must reach the
    server byte for byte (httpx normalises `..` segments away).

    The socket says IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted connections (with proto 0 it does
    not, and Nagle + the client's delayed ACK add 40 ms to every response)."""

    def __init__(self, app: FastAPI) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._run, name="uvicorn-test", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def raw_get(self, raw_path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET with the request target sent verbatim (http.client does not touch `..` or %-escapes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest("GET", raw_path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()


# --- polling -----------------------------------------------------------------------------------------------------
def poll_run(client: TestClient, run_id: str, headers: dict[str, str], statuses: tuple[str, ...], *,
             timeout: float, context: Callable[[], str] | None = None) -> dict[str, Any]:
    """GET runs/{id} until its status is one of `statuses` (fail after `timeout` s with the last answer)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        response = client.get(f"{PREFIX}/runs/{run_id}", headers=headers)
        assert response.status_code == 200, response.text
        last = response.json()
        if last["status"] in statuses:
            return dict(last)
        if last["status"] not in ("queued", "running"):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    extra = f"\n{context()}" if context else ""
    pytest.fail(f"run {run_id} is {last['status']}, wanted {'/'.join(statuses)} (within {timeout:g} s): "
                f"{json.dumps(last, default=str)[:1500]}{extra}", pytrace=False)


# --- OpenWatch's modules as the README's install lines import them ------------------------------------------
def openwatch_modules(audit: AuditLog, celery_app: Any = None) -> dict[str, Any]:
    """`app.audit_db`, `app.auth`, `app.celery_app`, `app.database`, `app.rbac` (and the packages above them)
    built from the stand-ins, with OpenWatch's names: for exec'ing the README's lines as OpenWatch would run
    them (put them in sys.modules with monkeypatch)."""
    import enum
    import types

    from fastapi.security import HTTPAuthorizationCredentials

    def module(name: str, **attrs: Any) -> types.ModuleType:
        made = types.ModuleType(name)
        made.__dict__.update(attrs)
        return made

    user_role = enum.Enum("UserRole", {r.upper(): r for r in ROLES}, type=str)  # type: ignore[misc]
    permission = enum.Enum("Permission", {p.upper().replace(":", "_"): p for p in _ALL}, type=str)  # type: ignore[misc]

    class RBACManager:
        @staticmethod
        def has_permission(user_role: Any, required_permission: Any) -> bool:
            return str(required_permission.value) in ROLE_PERMISSIONS.get(str(user_role.value), [])

    def get_current_user(credentials: HTTPAuthorizationCredentials) -> dict[str, Any]:
        return current_user(credentials.credentials)

    return {
        "app": module("app", __path__=[]),
        "app.audit_db": module("app.audit_db", log_audit_event=audit.log_audit_event,
                               log_admin_event=audit.log_admin_event),
        "app.auth": module("app.auth", get_current_user=get_current_user),
        "app.celery_app": module("app.celery_app", celery_app=celery_app or Celery("openwatch")),
        "app.database": module("app.database", SessionLocal=audit.db_session),
        "app.rbac": module("app.rbac", UserRole=user_role, Permission=permission, RBACManager=RBACManager),
    }
