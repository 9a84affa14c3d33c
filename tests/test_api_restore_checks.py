"""The guarded restore's API (issue 14 item 5): GET runs/{id}/restore/check lists what a restore needs, checked
now; POST runs/{id}/restore refuses at once (409, one line) what the background restore would refuse later: a
backup that is not restorable (failed, deleted, a config bundle, its last verify failed), a new database that
exists or is not a name, a backup or restore already under way. Nothing is queued, audited or submitted then.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    Submitted,
    bearer,
    catalog_client,
    module_audit_fixture,
    module_catalog_fixture,
    module_client_fixture,
    submitted_fixture,
)

ADMIN = bearer("super_admin")


@pytest.fixture
def restores_on(module_catalog: Catalog) -> Iterator[None]:
    module_catalog.service.settings_store.set("api.allow_restore", True, updated_by="test")
    yield
    module_catalog.service.settings_store.delete("api.allow_restore")


def _check(client: Any, run_id: Any, **params: str) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/runs/{run_id}/restore/check", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _by_name(answer: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {c["name"]: (c["ok"], c["detail"]) for c in answer["checks"]}


def _unchanged(catalog: Catalog, audit: AuditLog, submitted: Submitted) -> tuple[int, int, int]:
    return len(catalog.runs()), len(audit.calls), len(submitted.calls)


def _run_of(catalog: Catalog, kind: str, status: RunStatus, parent: BackupRun | None = None,
            error: str = "failed (test)") -> uuid.UUID:
    recorder = catalog.service.recorder
    run_id = recorder.create(kind, "cli", "test", parent_id=parent.id if parent else None,
                             details={"request": {"kind": kind}})
    if status is not RunStatus.QUEUED:
        recorder.claim(run_id)
    if status is RunStatus.FAILED:
        recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, "test_failure", error)
    return run_id


def test_the_check_lists_every_check_passing_for_a_good_backup(client: Any, module_catalog: Catalog,
                                                               restores_on: None) -> None:
    into = f"copy_{uuid.uuid4().hex[:8]}"
    answer = _check(client, module_catalog.backup.id, into=into)

    assert (answer["ok"], answer["mode"], answer["into"], answer["live_database"]) == (
        True, "into", into, module_catalog.name)
    checks = _by_name(answer)
    assert list(checks) == ["allowed", "restorable", "verified", "file", "compatible", "target", "idle"]
    assert checks["allowed"] == (True, "restores through the API are on")
    assert checks["restorable"] == (True, "a succeeded full backup of the database")
    assert checks["verified"] == (True, f"its last verify (run {module_catalog.verify.id}) succeeded")
    assert checks["file"][0]
    assert module_catalog.backup.details["artifact"] in checks["file"][1]
    assert checks["file"][1].endswith(f"(local copy), sha256 {module_catalog.backup.sha256}")
    assert checks["compatible"][0]
    assert "onto this PostgreSQL" in checks["compatible"][1]
    assert checks["target"] == (True, f"database {into} does not exist yet: the restore creates it")
    assert checks["idle"] == (True, "no backup or restore is queued or running")


def test_the_check_says_what_is_wrong_without_changing_anything(client: Any, module_catalog: Catalog,
                                                                module_audit: AuditLog,
                                                                submitted: Submitted) -> None:
    before = _unchanged(module_catalog, module_audit, submitted)
    off = _check(client, module_catalog.backup.id, into=module_catalog.name)
    assert off["ok"] is False
    checks = _by_name(off)
    assert checks["allowed"] == (False, 'restores through the API are off; turn on "allow restore" in the backup '
                                        "settings first")
    assert checks["target"] == (False, f"into names the live database {module_catalog.name}; to restore over it "
                                       f'send {{"confirm": "{module_catalog.name}"}}')

    failed = _by_name(_check(client, module_catalog.failed.id, into="copy_x"))
    assert failed["restorable"] == (False, f"backup {module_catalog.failed.id} failed: only a succeeded backup can "
                                           "be restored; pick another")
    assert "file" not in failed  # not looked for: the backup is ruled out already

    replace = _check(client, module_catalog.backup.id, mode="replace")
    assert (replace["mode"], replace["into"]) == ("replace", None)
    assert [c["name"] for c in replace["checks"]][-3:] == ["target", "sessions", "idle"]
    assert _by_name(replace)["target"] == (True, f"replaces {module_catalog.name}; the old database is kept under "
                                                 "a dated name, never dropped")
    no_name = _by_name(_check(client, module_catalog.backup.id))
    assert "target" not in no_name  # the wizard asks for the name after the checks
    bad = _by_name(_check(client, module_catalog.backup.id, into="1bad-name"))
    assert bad["target"] == (False, "1bad-name is not a database name: letters, digits and _, up to 63, not starting "
                                    "with a digit")
    assert _unchanged(module_catalog, module_audit, submitted) == before


def test_unknown_run_is_404_and_a_long_name_422(client: Any) -> None:
    missing = uuid.uuid4()
    response = client.get(f"{PREFIX}/runs/{missing}/restore/check", headers=ADMIN)
    assert response.status_code == 404
    assert str(missing) in response.json()["detail"]
    response = client.get(f"{PREFIX}/runs/{missing}/restore/check", headers=ADMIN, params={"into": "x" * 101})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query parameter into: must have at most 100 characters")


def _restore(client: Any, run_id: Any, body: dict[str, Any]) -> Any:
    return client.post(f"{PREFIX}/runs/{run_id}/restore", headers=ADMIN, json=body)


def _refused(client: Any, catalog: Catalog, audit: AuditLog, submitted: Submitted, run_id: Any,
             body: dict[str, Any], detail: str, status: int = 409) -> None:
    before = _unchanged(catalog, audit, submitted)
    response = _restore(client, run_id, body)
    assert (response.status_code, response.json()) == (status, {"detail": detail}), response.text
    assert _unchanged(catalog, audit, submitted) == before


def test_restores_off_stay_403(client: Any, module_catalog: Catalog, module_audit: AuditLog,
                               submitted: Submitted) -> None:
    _refused(client, module_catalog, module_audit, submitted, module_catalog.backup.id, {"into": "copy_off"},
             'restores through the API are off; turn on "allow restore" in the backup settings first', 403)


def test_a_failed_or_deleted_backup_is_409(client: Any, module_catalog: Catalog, restores_on: None,
                                           module_audit: AuditLog, submitted: Submitted) -> None:
    failed = module_catalog.failed.id
    _refused(client, module_catalog, module_audit, submitted, failed, {"into": "copy_failed"},
             f"backup {failed} failed: only a succeeded backup can be restored; pick another")
    pruned = module_catalog.service.backup(module_catalog.service.build_request(), requested_by="test")
    try:
        module_catalog.execute("UPDATE backup_runs SET pruned_at = now() WHERE id = %s", (str(pruned.id),))
        _refused(client, module_catalog, module_audit, submitted, pruned.id, {"into": "copy_pruned"},
                 f"backup {pruned.id} was deleted by retention: its files are gone; pick another")
    finally:
        module_catalog.execute("DELETE FROM backup_copies WHERE run_id = %s", (str(pruned.id),))
        module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (str(pruned.id),))


def test_a_config_bundle_is_409(client: Any, module_catalog: Catalog, restores_on: None, module_audit: AuditLog,
                                submitted: Submitted) -> None:
    config = _run_of(module_catalog, "config", RunStatus.RUNNING)
    try:
        module_catalog.execute("UPDATE backup_runs SET status = 'succeeded', finished_at = now() WHERE id = %s",
                               (str(config),))
        _refused(client, module_catalog, module_audit, submitted, config, {"into": "copy_config"},
                 "a config bundle restores into a new folder with the CLI "
                 f"(openwatch-backup restore {str(config)[:8]} --to DIR)")
    finally:
        module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (str(config),))


def test_a_backup_whose_last_verify_failed_is_409(client: Any, module_catalog: Catalog, restores_on: None,
                                                  module_audit: AuditLog, submitted: Submitted) -> None:
    verify = _run_of(module_catalog, "verify", RunStatus.FAILED, module_catalog.backup,
                     error="checksum: sha256 differs (test)")
    try:
        _refused(client, module_catalog, module_audit, submitted, module_catalog.backup.id, {"into": "copy_bad"},
                 f"its last verify (run {verify}) failed: checksum: sha256 differs (test); verify it again or pick "
                 "another backup")
        assert _by_name(_check(client, module_catalog.backup.id, into="copy_bad"))["verified"][0] is False
    finally:
        module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (str(verify),))


def test_a_missing_file_is_409(client: Any, module_catalog: Catalog, restores_on: None, module_audit: AuditLog,
                               submitted: Submitted) -> None:
    service = module_catalog.service
    gone = service.backup(service.build_request(), requested_by="test")
    try:
        (module_catalog.backup_dir / "postgres" / gone.details["artifact"]).unlink()
        before = _unchanged(module_catalog, module_audit, submitted)
        response = _restore(client, gone.id, {"into": "copy_gone"})
        assert response.status_code == 409, response.text
        assert gone.details["artifact"] in response.json()["detail"]
        assert "\n" not in response.json()["detail"]
        assert _unchanged(module_catalog, module_audit, submitted) == before
    finally:
        module_catalog.execute("DELETE FROM backup_copies WHERE run_id = %s", (str(gone.id),))
        module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (str(gone.id),))


def test_an_existing_database_is_409(client: Any, module_catalog: Catalog, restores_on: None,
                                     module_audit: AuditLog, submitted: Submitted) -> None:
    existing = f"{module_catalog.name}_there"
    module_catalog.execute(f'CREATE DATABASE "{existing}"')
    try:
        _refused(client, module_catalog, module_audit, submitted, module_catalog.backup.id, {"into": existing},
                 f"database {existing} already exists; into restores only into a new database (choose another "
                 "name)")
        assert _by_name(_check(client, module_catalog.backup.id, into=existing))["target"][0] is False
    finally:
        module_catalog.execute(f'DROP DATABASE IF EXISTS "{existing}"')


def test_a_replace_of_a_partial_backup_is_409(client: Any, module_catalog: Catalog, restores_on: None,
                                              module_audit: AuditLog, submitted: Submitted) -> None:
    from openwatch_backup.core.kinds import BackupKind

    service = module_catalog.service
    schema = service.backup(service.build_request(BackupKind.SCHEMA), requested_by="test")
    try:
        _refused(client, module_catalog, module_audit, submitted, schema.id, {"confirm": module_catalog.name},
                 "a schema backup does not hold the whole database: restore it into a new database instead")
    finally:
        module_catalog.execute("DELETE FROM backup_copies WHERE run_id = %s", (str(schema.id),))
        module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (str(schema.id),))


@pytest.mark.parametrize("kind", ["restore", "full"])
def test_a_restore_or_backup_under_way_is_409(client: Any, module_catalog: Catalog, restores_on: None,
                                              module_audit: AuditLog, submitted: Submitted, kind: str) -> None:
    active = _run_of(module_catalog, kind, RunStatus.RUNNING, module_catalog.backup if kind == "restore" else None)
    try:
        what = "a restore" if kind == "restore" else "a full backup"
        _refused(client, module_catalog, module_audit, submitted, module_catalog.backup.id, {"into": "copy_busy"},
                 f"{what} is already running (run {active}); wait for it to finish")
        assert _by_name(_check(client, module_catalog.backup.id, into="copy_busy"))["idle"] == (
            False, f"{what} is already running (run {active}); wait for it to finish")
    finally:
        module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (str(active),))


def test_a_good_request_is_still_queued(client: Any, module_catalog: Catalog, restores_on: None,
                                        submitted: Submitted) -> None:
    into = f"copy_{uuid.uuid4().hex[:8]}"
    response = _restore(client, module_catalog.backup.id, {"into": into})
    assert response.status_code == 202, response.text
    run = response.json()
    assert submitted.calls[-1] == ("restore", uuid.UUID(run["id"]))
    module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (run["id"],))


def test_a_replace_while_others_are_connected_is_409_unless_they_are_disconnected(
        client: Any, module_catalog: Catalog, restores_on: None, module_audit: AuditLog,
        submitted: Submitted) -> None:
    import psycopg

    with psycopg.connect(module_catalog.url, application_name="openwatch-backend-test"):
        answer = _check(client, module_catalog.backup.id, mode="replace")
        ok, detail = _by_name(answer)["sessions"]
        assert not ok
        assert "(openwatch-backend-test) connected to " + module_catalog.name in detail
        assert detail.endswith("; stop OpenWatch's backend, worker and beat first, or disconnect them at the swap "
                               "(terminate_connections)")
        _refused(client, module_catalog, module_audit, submitted, module_catalog.backup.id,
                 {"confirm": module_catalog.name}, detail)
        disconnected = _by_name(_check(client, module_catalog.backup.id, mode="replace",
                                       terminate_connections="true"))["sessions"]
        assert disconnected[0] is True
        assert disconnected[1].endswith(f"connected to {module_catalog.name}: disconnected at the swap")
