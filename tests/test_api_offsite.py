"""What the API shows of off-site copies, against real PostgreSQL and moto's S3 over HTTP: each run's copies in
GET runs and GET runs/{id}, where off-site copies go in GET settings, and POST offsite/test (the page's "Test
connection"): passing against moto, the failing step named against a closed port, one line when off-site is off.
No answer ever carries a credential."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from openwatch_backup.catalog.copies import copy_to_dict
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.service import BackupService
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    Services,
    Submitted,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    openwatch_auth,
)
from tests.support.moto_server import ACCESS_KEY, REGION, SECRET_KEY, raw_client, s3_storage
from tests.support.moto_server import PREFIX as S3_PREFIX
from tests.support.offsite import s3_overrides
from tests.support.offsite_copies import backup_keys, copy_offsite

ADMIN = bearer("super_admin")
NOT_CONFIGURED = ("off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET (and "
                  "OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3)")


class QuickServices(Services):
    """Services whose off-site storage gives up after one attempt (a closed port fails at once, not after eight
    attempts of backoff)."""

    def __call__(self) -> BackupService:
        service = super().__call__()
        settings = service.settings
        if settings.s3_bucket and settings.s3_endpoint_url:
            service.__dict__["offsite"] = s3_storage(settings.s3_endpoint_url, settings.s3_bucket, max_attempts=1)
        return service


@dataclass
class Api:
    client: Any
    services: Services
    audit: AuditLog
    bodies: list[bytes]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, f"{PREFIX}{path}", headers=ADMIN, **kwargs)
        self.bodies.append(response.content)
        return response

    def service(self) -> BackupService:
        return self.services()


@pytest.fixture
def bodies() -> Iterator[list[bytes]]:
    """Every answer a test got: none may hold the test credentials boto3 used."""
    seen: list[bytes] = []
    yield seen
    assert seen, "the test made no request"
    for body in seen:
        assert SECRET_KEY.encode() not in body
        assert ACCESS_KEY.encode() not in body


def _api(catalog: Catalog, bodies: list[bytes], **overrides: Any) -> Iterator[Api]:
    audit = AuditLog()
    services = QuickServices(catalog.url, catalog.backup_dir, **overrides)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client:
        yield Api(client, services, audit, bodies)
    services.close()


@pytest.fixture
def s3_api(catalog: Catalog, moto_endpoint: str, bucket: str, bodies: list[bytes]) -> Iterator[Api]:
    yield from _api(catalog, bodies, **s3_overrides(moto_endpoint, bucket))


@pytest.fixture
def plain_api(catalog: Catalog, bodies: list[bytes]) -> Iterator[Api]:
    yield from _api(catalog, bodies)


def _json(data: Any) -> Any:
    return json.loads(json.dumps(data))


def _expected_copies(service: BackupService, run_id: Any) -> list[dict[str, Any]]:
    return [_json(copy_to_dict(c)) for c in service.copies.of_runs([run_id])[run_id]]


def _same_times(answer: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Equal, timestamps compared as instants (the API writes them its own way)."""
    from datetime import datetime

    def norm(copies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: datetime.fromisoformat(v) if k.endswith("_at") and v else v for k, v in c.items()}
                for c in copies]

    assert norm(answer) == norm(expected)


def test_runs_carry_their_copies(s3_api: Api, catalog: Catalog, bucket: str) -> None:
    service = s3_api.service()
    backup = catalog.backup
    key = copy_offsite(service, backup)

    listed = {item["id"]: item for item in s3_api.request("GET", "/runs", params={"limit": 50}).json()["items"]}
    copies = listed[str(backup.id)]["copies"]
    assert [(c["storage"], c["state"]) for c in copies] == [("local", "verified"), ("s3", "verified")]
    s3 = copies[1]
    assert s3["location"] == f"s3://{bucket}/{S3_PREFIX}/{key}"
    assert (s3["size_bytes"], s3["sha256"], s3["error"], s3["reverified_at"]) == (
        backup.size_bytes, backup.sha256, None, None)
    assert s3["verified_at"] is not None
    assert copies[0]["location"] == str(catalog.backup_dir / key)
    _same_times(copies, _expected_copies(service, backup.id))
    # Runs that are not backups, and a backup that failed, have none.
    assert listed[str(catalog.verify.id)]["copies"] == []
    assert listed[str(catalog.failed.id)]["copies"] == []

    one = s3_api.request("GET", f"/runs/{backup.id}").json()
    assert one["copies"] == copies


def test_a_failed_copy_shows_its_error(s3_api: Api, catalog: Catalog, moto_endpoint: str) -> None:
    service = s3_api.service()
    backup = catalog.backup
    copy_offsite(service, backup, verify=False)
    error = f"cannot reach bucket: the connection to {moto_endpoint} refused (test)"
    assert service.copies.failed(backup.id, CopyStorage.S3, error)

    copies = s3_api.request("GET", f"/runs/{backup.id}").json()["copies"]

    assert [(c["storage"], c["state"], c["error"]) for c in copies] == [("local", "verified", None),
                                                                        ("s3", "failed", error)]


def test_settings_say_where_offsite_copies_go(s3_api: Api, moto_endpoint: str, bucket: str) -> None:
    offsite = s3_api.request("GET", "/settings").json()["offsite"]
    assert offsite == {"configured": True, "bucket": bucket, "prefix": S3_PREFIX, "region": REGION,
                       "endpoint": moto_endpoint}


def test_settings_without_offsite(plain_api: Api) -> None:
    offsite = plain_api.request("GET", "/settings").json()["offsite"]
    assert offsite == {"configured": False, "bucket": None, "prefix": None, "region": None, "endpoint": None}


def test_connection_test_passes_against_moto(s3_api: Api, moto_endpoint: str, bucket: str) -> None:
    response = s3_api.request("POST", "/offsite/test")

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ok"] is True
    assert [(s["name"], s["ok"], s["code"], s["error"]) for s in answer["steps"]] == [
        ("put", True, None, None), ("head", True, None, None), ("get", True, None, None),
        ("delete", True, None, None)]
    assert all(s["seconds"] >= 0 for s in answer["steps"])
    assert answer["location"].startswith(f"s3://{bucket}/{S3_PREFIX}/.openwatch-probe-")
    assert answer["summary"].startswith(f"{answer['location']}: put, head, get and delete work (put ")
    # The probe left nothing behind, and the call is in the audit log.
    assert raw_client(moto_endpoint).list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3_api.audit.actions() == ["BACKUP_OFFSITE_TESTED"]
    assert s3_api.audit.calls[0].details == {"ok": True, "failed_step": None}


def test_connection_test_names_the_failing_step(catalog: Catalog, bucket: str, bodies: list[bytes]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    closed = f"http://127.0.0.1:{port}"
    for api in _api(catalog, bodies, **s3_overrides(closed, bucket)):
        response = api.request("POST", "/offsite/test")

        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["ok"] is False
        assert [(s["name"], s["ok"], s["code"]) for s in answer["steps"]] == [("put", False, "storage_unreachable")]
        error = answer["steps"][0]["error"]
        assert f"the connection to {closed} refused" in error
        assert "\n" not in error
        assert answer["summary"] == f"{answer['location']}: put failed [storage_unreachable]: {error}"
        assert api.audit.calls[0].details == {"ok": False, "failed_step": "put"}


def test_connection_test_without_offsite_is_one_line(plain_api: Api) -> None:
    response = plain_api.request("POST", "/offsite/test")

    assert response.status_code == 422
    assert response.json() == {"detail": NOT_CONFIGURED}
    assert response.headers["x-error-code"] == "config"
    assert plain_api.audit.calls == []


def test_status_fails_the_offsite_check_until_a_copy_verified(s3_api: Api, catalog: Catalog) -> None:
    """GET status's failing_checks take the checklist's off-site items."""
    status = s3_api.request("GET", "/status").json()
    assert {"offsite_copy", "offsite_accessible"} <= set(status["failing_checks"])

    service = s3_api.service()
    copy_offsite(service, catalog.backup)
    assert service.copies.reverified(catalog.backup.id, CopyStorage.S3, size=catalog.backup.size_bytes or 0,
                                     sha256=catalog.backup.sha256 or "")
    status = s3_api.request("GET", "/status").json()
    assert not {"offsite_copy", "offsite_accessible"} & set(status["failing_checks"])
    items = {i["key"]: i for i in status["checklist"]}
    assert items["offsite_copy"]["status"] == items["offsite_accessible"]["status"] == "ok"
    assert backup_keys(catalog.backup)[0] in items["offsite_copy"]["detail"]


def test_a_page_of_runs_reads_the_copies_in_one_query(s3_api: Api, catalog: Catalog) -> None:
    from sqlalchemy import event

    s3_api.request("GET", "/runs")  # the app's service exists from here on
    service = s3_api.services.made[0]
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(service.engine, "before_cursor_execute", seen)
    try:
        items = s3_api.request("GET", "/runs", params={"limit": 50}).json()["items"]
    finally:
        event.remove(service.engine, "before_cursor_execute", seen)
    assert len(items) >= 3
    assert len([s for s in statements if "backup_copies" in s]) == 1
