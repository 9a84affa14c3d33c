"""The RBAC matrix through OpenWatchAuth: OpenWatch's six roles (and no caller at all) on every endpoint.

Only super_admin holds `system:maintenance`, so only it gets 2xx; the five other roles get 403 and a caller
without a token 401, on reads as well as on mutating calls. Every mutating call by super_admin and every
download writes exactly one row through OpenWatch's `log_audit_event` (action BACKUP_<...>, resource_type
"backup", the user's id, details as JSON text, a closed session) into the database's real audit_logs; reads
write none, and refused calls write none and change nothing. OpenWatch API keys (`owk_...`, role "api_key")
are judged by their own permissions; an audit record OpenWatch does not take is logged and shown in /status.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    ROLES,
    USER_IDS,
    AuditLog,
    Catalog,
    Services,
    Submitted,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    current_user,
    has_permission,
    make_api_key,
    make_token,
    module_catalog_fixture,
    openwatch_auth,
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # the path template below the prefix, as the router declares it
    body: Callable[[Catalog], Any] | None = None
    ok: int = 200
    audit: str | None = None  # the action of its one log_admin_event (mutating calls and downloads)
    submits: str | None = None  # the kind it hands to the worker
    query: str = ""

    @property
    def name(self) -> str:
        return f"{self.method} {self.route}"

    def path(self, catalog: Catalog) -> str:
        return PREFIX + self.route.replace("{run_id}", str(catalog.backup.id)) + self.query


ENDPOINTS = [
    Endpoint("GET", "/runs", query="?limit=5"),
    Endpoint("GET", "/runs/{run_id}"),
    Endpoint("GET", "/runs/{run_id}/log"),
    Endpoint("GET", "/status"),
    Endpoint("GET", "/settings"),
    Endpoint("GET", "/settings/cron-preview", query="?expr=30+1+*+*+*"),
    Endpoint("PUT", "/settings", lambda c: {"schedule": {"backup": "15 3 * * *", "drill": "0 5 * * 6"},
                                            "retention": {"keep_last": 3}, "allow_restore": True},
             audit="BACKUP_SETTINGS_CHANGED"),
    Endpoint("POST", "/runs", lambda c: {"kind": "full"}, 202, "BACKUP_BACKUP_REQUESTED", "full"),
    Endpoint("POST", "/runs/{run_id}/verify", lambda c: {"deep": True}, 202, "BACKUP_VERIFY_REQUESTED", "verify"),
    Endpoint("GET", "/runs/{run_id}/download", audit="BACKUP_DOWNLOAD"),
    Endpoint("GET", "/runs/{run_id}/restore/check", query="?into=copy_checked"),
    Endpoint("POST", "/runs/{run_id}/restore", lambda c: {"into": f"{c.name}_copy"}, 202,
             "BACKUP_RESTORE_REQUESTED", "restore"),
    Endpoint("POST", "/prune/plan", None, 200, "BACKUP_PRUNE_PLANNED"),
    Endpoint("POST", "/prune", lambda c: {"apply": True}, 202, "BACKUP_PRUNE_REQUESTED", "prune"),
    # These catalogs have no off-site storage: 422, nothing probed, nothing audited (tests/test_api_offsite.py).
    Endpoint("POST", "/offsite/test", None, 422),
    # No passphrase and no config bundle in these catalogs: 422 and 404, nothing queued or audited
    # (tests/test_api_config.py covers them with a passphrase).
    Endpoint("GET", "/config"),
    Endpoint("POST", "/config/backup", None, 422),
    Endpoint("GET", "/config/{run_id}/download", ok=404),
]
DENIED = [role for role in ROLES if role != "super_admin"]


@dataclass
class Api:
    client: Any
    catalog: Catalog
    audit: AuditLog
    submitted: Submitted

    def call(self, endpoint: Endpoint, headers: dict[str, str]) -> Any:
        body = endpoint.body(self.catalog) if endpoint.body else None
        return self.client.request(endpoint.method, endpoint.path(self.catalog), headers=headers, json=body)


def _api(catalog: Catalog) -> Iterator[Api]:
    audit, submitted = AuditLog(catalog.url), Submitted()
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=submitted)) as client:
        yield Api(client, catalog, audit, submitted)
    services.close()


@pytest.fixture(scope="module")
def module_api(module_catalog: Catalog) -> Iterator[Api]:
    yield from _api(module_catalog)


@pytest.fixture
def fresh_api(catalog: Catalog) -> Iterator[Api]:
    catalog.service.settings_store.set("api.allow_restore", True, updated_by="test")
    yield from _api(catalog)


def test_the_matrix_covers_every_endpoint(module_api: Api) -> None:
    """Every operation of the OpenAPI description is in the matrix; the admin page (/ui, no data, no auth) is
    the only route outside it."""
    paths = module_api.client.get("/openapi.json").json()["paths"]
    declared = {(method.upper(), path.removeprefix(PREFIX)) for path, operations in paths.items()
                for method in operations}
    assert declared == {(e.method, e.route) for e in ENDPOINTS}


def _snapshot(catalog: Catalog) -> tuple[Any, ...]:
    runs = sorted((str(r.id), r.status, r.pruned_at) for r in catalog.runs())
    return tuple(runs), tuple(sorted(catalog.service.settings_store.all("").items()))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", [*DENIED, None], ids=lambda r: r or "no-token")
def test_refused(module_api: Api, role: str | None, endpoint: Endpoint) -> None:
    before = _snapshot(module_api.catalog)
    module_api.audit.clear()
    response = module_api.call(endpoint, bearer(role) if role else {})
    if role is None:
        assert response.status_code == 401, response.text
        assert response.json() == {"detail": "Not authenticated"}
    else:
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "Permission system:maintenance required"}
    assert response.headers["content-type"] == "application/json"
    assert module_api.audit.calls == []
    assert module_api.audit.sessions == []
    assert module_api.submitted.calls == []
    assert _snapshot(module_api.catalog) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_super_admin(request: pytest.FixtureRequest, endpoint: Endpoint) -> None:
    # Reads use the module's catalog; each mutating call gets a catalog of its own (restores allowed).
    api: Api = request.getfixturevalue("fresh_api" if endpoint.audit else "module_api")
    api.audit.clear()
    response = api.call(endpoint, bearer("super_admin"))
    assert response.status_code == endpoint.ok, response.text
    if endpoint.audit is None:
        assert api.audit.calls == []
        assert api.submitted.calls == []
        return
    assert len(api.audit.calls) == 1, api.audit.actions()
    call = api.audit.calls[0]
    assert call.action == endpoint.audit
    assert call.resource_type == "backup"
    assert call.user_id == USER_IDS["super_admin"]
    assert call.ip_address == "testclient"
    assert call.session.closed
    assert call.session.committed == 1
    assert len(api.audit.sessions) == 1
    # The row is in audit_logs, as OpenWatch's audit page reads it: details are JSON text.
    with psycopg.connect(api.catalog.url) as conn:
        rows = conn.execute("SELECT action, resource_type, resource_id, user_id, details FROM audit_logs "
                            "WHERE action LIKE 'BACKUP_%'").fetchall()
    assert len(rows) == 1, rows
    assert rows[0][:2] == (endpoint.audit, "backup")
    assert rows[0][3] == USER_IDS["super_admin"]
    assert json.loads(rows[0][4]) == call.details
    if endpoint.route != "/settings":
        assert rows[0][2] == call.details["run_id"]
    if endpoint.route == "/runs/{run_id}/download":
        artifact = api.catalog.backup.details["artifact"]
        assert call.details == {"run_id": str(api.catalog.backup.id), "artifact": artifact}
        assert response.content == (api.catalog.backup_dir / "postgres" / artifact).read_bytes()
    elif endpoint.route == "/settings":
        assert call.details == {"schedule.backup": "15 3 * * *", "schedule.drill": "0 5 * * 6",
                                "retention.keep_last": 3, "api.allow_restore": True}
        assert response.json()["retention"]["keep_last"] == 3
    else:
        assert call.details["run_id"] == response.json()["id"]
    if endpoint.submits:
        assert api.submitted.calls == [(endpoint.submits, api.submitted.calls[0][1])]
        assert str(api.submitted.calls[0][1]) == response.json()["id"]
        assert response.json()["status"] == "queued"
        assert response.json()["requested_by"] == "super_admin-user"
    else:
        assert api.submitted.calls == []


def test_audit_without_a_database_logger(module_catalog: Catalog) -> None:
    """OpenWatchAuth without log_admin_event/db_session (a bare install) still answers; the file log gets it."""
    from openwatch_backup.api import OpenWatchAuth
    from tests.api_support import current_user, has_permission

    services = Services(module_catalog.url, module_catalog.backup_dir)
    auth = OpenWatchAuth(current_user=current_user, has_permission=has_permission)
    with client_for(build_app(auth=auth, services=services, submit=Submitted())) as client:
        response = client.get(f"{PREFIX}/runs/{module_catalog.backup.id}/download", headers=bearer("super_admin"))
        assert response.status_code == 200
        assert client.get(f"{PREFIX}/status", headers=bearer("auditor")).status_code == 403
    services.close()


# OpenWatch's own signatures (backend/app/audit_db.py at a12e8f1e), copied as text: the stand-ins must keep them,
# so that an adapter calling OpenWatch's functions the wrong way fails here as it fails in OpenWatch.
OPENWATCH_SIGNATURES = {
    "log_audit_event": "(db, action, resource_type, resource_id=None, user_id=None, ip_address='0.0.0.0', "
                       "user_agent=None, details=None)",
    "log_admin_event": "(db, action, user_id, ip_address, resource_type='system', details=None)",
}


def _shape(function: Callable[..., Any]) -> str:
    parameters = [p.replace(annotation=inspect.Parameter.empty)
                  for p in inspect.signature(function).parameters.values()]
    return str(inspect.Signature(parameters))


def test_the_stand_ins_have_openwatchs_signatures() -> None:
    audit = AuditLog()
    assert {name: _shape(getattr(audit, name)) for name in OPENWATCH_SIGNATURES} == OPENWATCH_SIGNATURES


def test_the_old_readme_line_fails_and_says_so(catalog: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    """OpenWatch's log_admin_event (the README's former line) takes neither these arguments nor a dict: no row,
    an ERROR in the log, the status names it, and the call itself still succeeds."""
    from openwatch_backup.api import OpenWatchAuth

    audit = AuditLog(catalog.url)
    auth = OpenWatchAuth(current_user=current_user, has_permission=has_permission,
                         log_audit_event=audit.log_admin_event, db_session=audit.db_session)
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=auth, services=services, submit=Submitted())) as client, \
            caplog.at_level(logging.ERROR, logger="openwatch_backup.audit"):
        assert client.get(f"{PREFIX}/status", headers=bearer("super_admin")).json()["audit"]["last_error"] is None
        response = client.post(f"{PREFIX}/runs", headers=bearer("super_admin"), json={"kind": "full"})
        assert response.status_code == 202, response.text
        status = client.get(f"{PREFIX}/status", headers=bearer("super_admin")).json()
    services.close()
    assert audit.calls == []
    assert all(s.closed for s in audit.sessions)
    assert status["audit"]["last_error_action"] == "BACKUP_BACKUP_REQUESTED"
    assert status["audit"]["last_error"].startswith("TypeError: ")
    assert "resource_id" in status["audit"]["last_error"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "audit record BACKUP_BACKUP_REQUESTED by super_admin-user was NOT written to OpenWatch's audit_logs: "
        + status["audit"]["last_error"]]


def test_a_refused_audit_row_shows_in_the_status(catalog: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    """OpenWatch's log_audit_event swallows a database error and answers False: logged and shown, not silent."""
    catalog.execute("ALTER TABLE audit_logs RENAME TO audit_logs_away")
    audit = AuditLog(catalog.url)
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client, \
            caplog.at_level(logging.ERROR):
        response = client.post(f"{PREFIX}/prune/plan", headers=bearer("super_admin"))
        assert response.status_code == 200, response.text
        status = client.get(f"{PREFIX}/status", headers=bearer("super_admin")).json()
    services.close()
    assert audit.calls == []
    assert status["audit"]["last_error_action"] == "BACKUP_PRUNE_PLANNED"
    assert status["audit"]["last_error"].startswith("log_audit_event returned False")
    assert any("audit_logs" in r.getMessage() and r.name == "tests.openwatch.audit_db" for r in caplog.records)
    assert any("was NOT written" in r.getMessage() for r in caplog.records if r.name == "openwatch_backup.audit")


@pytest.mark.parametrize(("permissions", "allowed"), [
    (["system:maintenance"], True),
    (["system:logs", "system:maintenance"], True),
    ({"system": ["maintenance"]}, True),  # the shape OpenWatch's API-key routes store
    (["system:logs", "scan:read"], False),
    ({"system": ["config", "logs"]}, False),
    ([], False),
    ({}, False),
    (None, False),
], ids=str)
def test_openwatch_api_keys(fresh_api: Api, permissions: Any, allowed: bool) -> None:
    """`owk_` keys come back from get_current_user as role "api_key" with their permissions: judged by those, 403
    without system:maintenance, never a 500; the audit row has no user id (the key's id is a UUID) but names
    the key."""
    key, key_id = make_api_key(permissions)
    fresh_api.audit.clear()
    status = fresh_api.client.get(f"{PREFIX}/status", headers=bearer(key))
    backup = fresh_api.client.post(f"{PREFIX}/runs", headers=bearer(key), json={"kind": "full"})
    if not allowed:
        assert (status.status_code, backup.status_code) == (403, 403), backup.text
        assert backup.json() == {"detail": "Permission system:maintenance required"}
        assert fresh_api.audit.calls == []
        assert fresh_api.submitted.calls == []
        return
    assert (status.status_code, backup.status_code) == (200, 202), backup.text
    assert backup.json()["requested_by"] == "API Key: backup-robot"
    [call] = fresh_api.audit.calls
    assert (call.action, call.user_id, call.resource_id) == ("BACKUP_BACKUP_REQUESTED", None, backup.json()["id"])
    assert call.details["api_key_id"] == key_id
    assert fresh_api.client.get(f"{PREFIX}/status", headers=bearer(key)).json()["audit"]["last_error"] is None


@pytest.mark.parametrize("role", ["api_key", "root", "", "SUPER_ADMIN"])
def test_a_role_openwatch_does_not_know_is_refused(module_api: Api, role: str) -> None:
    """The README's `UserRole(role)` raises for these (the stand-in too): 403, not 500."""
    response = module_api.client.get(f"{PREFIX}/status", headers=bearer(make_token(role)))
    assert response.status_code == 403, response.text
    assert response.json() == {"detail": "Permission system:maintenance required"}


def test_an_unknown_api_key_is_401(module_api: Api) -> None:
    response = module_api.client.get(f"{PREFIX}/status", headers=bearer("owk_not-a-key"))
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key"}
