"""The RBAC matrix through OpenWatchAuth: OpenWatch's six roles (and no caller at all) on every endpoint.

Only super_admin holds `system:maintenance`, so only it gets 2xx; the five other roles get 403 and a caller
without a token 401, on reads as well as on mutating calls. Every mutating call by super_admin and every
download writes exactly one `log_admin_event` (action BACKUP_<...>, resource_type "backup", the user's id, a
closed session); reads write none, and refused calls write none and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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
    Endpoint("PUT", "/settings", lambda c: {"schedule": {"backup": "15 3 * * *", "drill": "0 5 * * 6"},
                                            "retention": {"keep_last": 3}, "allow_restore": True},
             audit="BACKUP_SETTINGS_CHANGED"),
    Endpoint("POST", "/runs", lambda c: {"kind": "full"}, 202, "BACKUP_BACKUP_REQUESTED", "full"),
    Endpoint("POST", "/runs/{run_id}/verify", lambda c: {"deep": True}, 202, "BACKUP_VERIFY_REQUESTED", "verify"),
    Endpoint("GET", "/runs/{run_id}/download", audit="BACKUP_DOWNLOAD"),
    Endpoint("POST", "/runs/{run_id}/restore", lambda c: {"confirm": "x", "into": f"{c.name}_copy"}, 202,
             "BACKUP_RESTORE_REQUESTED", "restore"),
    Endpoint("POST", "/prune/plan", None, 200, "BACKUP_PRUNE_PLANNED"),
    Endpoint("POST", "/prune", lambda c: {"apply": True}, 202, "BACKUP_PRUNE_REQUESTED", "prune"),
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
    audit, submitted = AuditLog(), Submitted()
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
    assert len(api.audit.sessions) == 1
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
