"""Verify passes on every kind and compression, from the service and the CLI; leftovers are swept.

Quick verify reads the file (size, sha256, readable); deep verify also restores it into a scratch
database named after the verify run, checks counts, canary and migration head, and always drops it.
A verify killed mid-restore leaves that database behind, and `sweep` removes it once its run is over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from openwatch_backup import devstack
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.cli import app
from openwatch_backup.core.kinds import DATABASE_KINDS, BackupKind, Compression, RunStatus
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.errors import DumpFailed, RunNotFound
from openwatch_backup.service import BackupService
from openwatch_backup.source.scratch import scratch_name
from tests.support.forge import (
    artifact_path,
    database_exists,
    scratch_databases_of,
    update_catalog,
)
from tests.support.procs import children_named, command_lines

CLI = Path(sys.executable).with_name("openwatch-backup")
OPENWATCH_HEAD = "035_merge_alerts"  # the sample schema's alembic_version
SELECTED = ("hosts", "scans", "scan_findings")  # the default tables of the `tables` kind
NOT_A_BACKUP = "verify takes a backup run from `openwatch-backup list --status succeeded`"

MakeService = Callable[..., BackupService]
@pytest.fixture
def service(openwatch_db: str, tmp_path: Path, make_service: MakeService) -> BackupService:
    return make_service(openwatch_db, tmp_path / "backups")


def take_backup(service: BackupService, kind: BackupKind, compression: Compression) -> tuple[BackupRun, Manifest]:
    run = service.backup(service.build_request(kind, compression))
    assert run.status == "succeeded", run.error
    manifest = service.manifest_of(run)
    assert manifest is not None
    return run, manifest


def expected_counts(kind: BackupKind, manifest: Manifest) -> dict[str, int]:
    """The row counts a deep verify must find, written out per kind (not with the package's own helper)."""
    if kind is BackupKind.SCHEMA:
        return {}
    if kind is BackupKind.TABLES:
        return {table: manifest.row_counts[table] for table in SELECTED}
    return dict(manifest.row_counts)


def assert_passed(run: BackupRun, backup: BackupRun, *, deep: bool) -> dict[str, Any]:
    """A verify run that passed, linked to its backup; returns its recorded checks."""
    assert (run.kind, run.status, run.error_code, run.error, run.phase) == ("verify", "succeeded", None, None, "done")
    assert run.parent_id == backup.id
    assert (run.artifact_location, run.size_bytes, run.sha256) == (
        backup.artifact_location, backup.size_bytes, backup.sha256)
    assert run.details["request"] == {"deep": deep}
    assert run.details["backup_run"] == str(backup.id)
    verify = run.details["verify"]
    assert {k: v for k, v in verify.items() if k != "checks"} == {
        "result": "passed", "reason": None, "message": "all checks passed", "deep": deep}
    checks: dict[str, Any] = verify["checks"]
    assert checks["artifact"] == f"postgres/{backup.details['artifact']}"
    assert (checks["size_bytes"], checks["sha256"]) == (backup.size_bytes, backup.sha256)
    assert checks["read_seconds"] >= 0
    return checks


# --- verify passes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("kind", list(DATABASE_KINDS))  # config bundles: tests/test_config_bundle.py
def test_quick_and_deep_verify_pass(service: BackupService, kind: BackupKind, compression: Compression) -> None:
    backup, manifest = take_backup(service, kind, compression)

    quick_run, quick = service.verify(str(backup.id))
    assert quick is not None
    assert quick.passed
    assert quick.deep is False
    quick_checks = assert_passed(quick_run, backup, deep=False)
    assert set(quick_checks) == {"artifact", "size_bytes", "sha256", "read_seconds"}

    deep_run, deep = service.verify(str(backup.id), deep=True)
    assert deep is not None
    assert deep.passed
    assert deep.deep is True
    checks = assert_passed(deep_run, backup, deep=True)
    scratch = scratch_name("verify", deep_run.id)
    assert checks["scratch_database"] == scratch
    assert isinstance(checks["restore_seconds"], float)
    assert checks["restore_seconds"] > 0
    assert checks["row_counts"] == expected_counts(kind, manifest)
    if kind is not BackupKind.SCHEMA:
        assert set(checks["row_counts"]) >= set(SELECTED)
        assert all(n > 0 for n in checks["row_counts"].values())
    extra = {"scratch_database", "restore_seconds", "row_counts", "secrets"}
    # No config bundle here: the master key proof (operations/secrets_proof.py) records why it did not run.
    assert checks["secrets"]["skipped"] == (
        "no encrypted values in the database" if kind is BackupKind.SCHEMA else "no config bundle")
    if kind is not BackupKind.SCHEMA:  # the canary is data; a schema-only dump has none
        assert manifest.canary_included is True
        assert checks["canary"] == "found"
        extra.add("canary")
    if kind in (BackupKind.FULL, BackupKind.PLAIN):
        assert checks["openwatch_alembic_head"] == OPENWATCH_HEAD == manifest.openwatch_alembic_head
        extra.add("openwatch_alembic_head")
    assert set(checks) == set(quick_checks) | extra

    assert not database_exists(service.settings.database_url, scratch)
    assert scratch_databases_of(service) == []
    verify_runs = service.list_runs(kind="verify")
    assert [r.id for r in verify_runs] == [deep_run.id, quick_run.id]


# --- the CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def cli_service(backup_env: Any, make_service: MakeService, monkeypatch: pytest.MonkeyPatch) -> BackupService:
    """backup_env (OPENWATCH_DATABASE_URL, OPENWATCH_BACKUP_DIR) without any other OPENWATCH_* or PG* variable,
    and a service on the same database and folder, its tables migrated."""
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    return make_service(backup_env.url, backup_env.dir)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_cli_deep_verify_by_id_prefix_exits_0(cli_service: BackupService) -> None:
    backup, _ = take_backup(cli_service, BackupKind.FULL, Compression.ZSTD)

    result = invoke("verify", str(backup.id)[:8], "--deep", "--json")

    assert (result.exit_code, result.stderr) == (0, ""), result.output
    data = json.loads(result.stdout)
    assert (data["kind"], data["status"], data["parent_id"], data["error_code"], data["error"]) == (
        "verify", "succeeded", str(backup.id), None, None)
    assert data["details"]["verify"]["result"] == "passed"
    assert data["details"]["verify"]["deep"] is True
    assert data["details"]["verify"]["checks"]["canary"] == "found"
    assert data["details"]["verify"]["checks"]["openwatch_alembic_head"] == OPENWATCH_HEAD
    (recorded,) = cli_service.list_runs(kind="verify")
    assert (str(recorded.id), recorded.status) == (data["id"], "succeeded")
    assert scratch_databases_of(cli_service) == []


def test_cli_failing_verify_exits_9_with_the_reason(cli_service: BackupService) -> None:
    backup, _ = take_backup(cli_service, BackupKind.FULL, Compression.NONE)
    path = artifact_path(cli_service, backup)
    path.unlink()

    result = invoke("verify", str(backup.id)[:8], "--json")

    assert result.exit_code == 9, result.output
    assert result.stderr == f"error: verify failed (missing): {path} does not exist\n"
    data = json.loads(result.stdout)  # --json still prints the recorded run
    assert (data["kind"], data["status"], data["error_code"], data["parent_id"]) == (
        "verify", "failed", "verify_missing", str(backup.id))
    assert data["error"] == f"verify failed (missing): {path} does not exist"

    quiet = invoke("verify", str(backup.id)[:8], "--deep")
    assert (quiet.exit_code, quiet.stdout) == (9, "")
    assert quiet.stderr == f"error: verify failed (missing): {path} does not exist\n"
    assert [r.status for r in cli_service.list_runs(kind="verify")] == ["failed", "failed"]


# --- only a successful backup can be verified ---------------------------------------------------------


def _failed_backup(service: BackupService) -> BackupRun:
    with pytest.raises(DumpFailed):
        service.backup(service.build_request(BackupKind.TABLES, Compression.ZSTD, ["hosts", "no_such_table"]))
    (run,) = service.list_runs()
    return run


def _verify_run(service: BackupService) -> BackupRun:
    backup, _ = take_backup(service, BackupKind.SCHEMA, Compression.NONE)
    run, result = service.verify(str(backup.id))
    assert result is not None
    assert result.passed
    return run


def _running_backup(service: BackupService) -> BackupRun:
    run_id = service.recorder.create("full", "cli")
    assert service.recorder.claim(run_id)
    return service.get_run(str(run_id))


@pytest.mark.parametrize("make_run", [_failed_backup, _verify_run, _running_backup],
                         ids=["failed-backup", "verify-run", "running-backup"])
def test_verify_refuses_a_run_that_is_not_a_successful_backup(
        service: BackupService, make_run: Callable[[BackupService], BackupRun]) -> None:
    run = make_run(service)
    verify_runs_before = [r.id for r in service.list_runs(kind="verify")]
    runs_before = len(service.list_runs())

    with pytest.raises(RunNotFound) as caught:
        service.verify(str(run.id)[:8], deep=True)

    assert caught.value.message == (f"run {run.id} is not a successful backup (kind {run.kind}, status "
                                    f"{run.status}); {NOT_A_BACKUP}")
    assert caught.value.exit_status == 6
    assert [r.id for r in service.list_runs(kind="verify")] == verify_runs_before
    assert len(service.list_runs()) == runs_before  # no verify run recorded
    assert scratch_databases_of(service) == []


def test_cli_verify_of_a_verify_run_exits_6(cli_service: BackupService) -> None:
    run = _verify_run(cli_service)

    result = invoke("verify", str(run.id), "--deep")

    assert (result.exit_code, result.stdout) == (6, "")
    assert result.stderr == (f"error: run {run.id} is not a successful backup (kind verify, status succeeded); "
                             f"{NOT_A_BACKUP}\n")
    assert len(cli_service.list_runs(kind="verify")) == 1


# --- leftovers of killed runs -------------------------------------------------------------------------


def _create_database(pg: devstack.PostgresHandle, make_database: Any, name: str) -> str:
    make_database.track(name)  # dropped at teardown if the code under test left it
    devstack.create_database(pg, name)
    return name


def test_sweep_drops_leftovers_of_finished_runs_and_keeps_those_of_running_runs(
        service: BackupService, pg: devstack.PostgresHandle, make_database: Any) -> None:
    backup, _ = take_backup(service, BackupKind.FULL, Compression.ZSTD)
    recorder = service.recorder
    killed = recorder.create("verify", "cli", parent_id=backup.id)
    assert recorder.claim(killed)
    recorder.finish_unsuccessfully(killed, RunStatus.ABANDONED, "abandoned", "the worker died")
    running = recorder.create("verify", "cli", parent_id=backup.id)
    assert recorder.claim(running)
    running_backup = recorder.create("full", "cli")
    assert recorder.claim(running_backup)
    in_progress = "postgres/openwatch_20260101_000000.dump.zst"
    recorder.progress(running_backup, "dumping", 0, {"artifact_in_progress": in_progress})

    dead_verify = _create_database(pg, make_database, scratch_name("verify", killed))
    dead_restore = _create_database(pg, make_database, scratch_name("restore", killed))
    live_verify = _create_database(pg, make_database, scratch_name("verify", running))
    postgres_dir = service.settings.dir / "postgres"
    stray = postgres_dir / "x.dump.zst.partial"
    stray.write_bytes(b"half a dump")
    live_partial = postgres_dir / "openwatch_20260101_000000.dump.zst.partial"
    live_partial.write_bytes(b"a dump being written")
    finished = sorted(p.name for p in postgres_dir.iterdir() if not p.name.endswith(".partial"))
    assert len(finished) == 2  # the backup's artifact and manifest

    report = service.sweep()

    assert {dead_verify, dead_restore} <= set(report.databases)
    assert live_verify not in report.databases
    assert report.partial_files == ["postgres/x.dump.zst.partial"]
    url = service.settings.database_url
    assert not database_exists(url, dead_verify)
    assert not database_exists(url, dead_restore)
    assert database_exists(url, live_verify)
    assert scratch_databases_of(service) == [live_verify]
    assert not stray.exists()
    assert live_partial.read_bytes() == b"a dump being written"
    assert sorted(p.name for p in postgres_dir.iterdir()) == sorted([*finished, live_partial.name])

    again = service.sweep()  # nothing left to do for this catalog
    assert live_verify not in again.databases
    assert again.partial_files == []


def test_sweep_leaves_the_scratch_database_of_another_catalogs_running_run(
        service: BackupService, make_service: MakeService, make_database: Any, pg: devstack.PostgresHandle,
        tmp_path: Path) -> None:
    other = make_service(make_database("other"), tmp_path / "other")
    running = other.recorder.create("verify", "cli")
    assert other.recorder.claim(running)
    live = _create_database(pg, make_database, scratch_name("verify", running))

    report = service.sweep()

    assert live not in report.databases
    assert database_exists(service.settings.database_url, live)


# --- a deep verify killed mid-restore -----------------------------------------------------------------


def _wait_until_restoring(service: BackupService, proc: subprocess.Popen[bytes]) -> tuple[BackupRun, str]:
    """The running verify run and its scratch database, once pg_restore streams into that database."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            pytest.fail(f"verify ended (status {proc.returncode}) before it could be killed mid-restore: "
                        f"{stderr.decode(errors='replace')}")
        runs = service.list_runs(kind="verify")
        if runs and runs[0].status == "running":
            name = scratch_name("verify", runs[0].id)
            restoring = [pid for pid in children_named(proc.pid, "pg_restore")
                         if f"--dbname={name}" in command_lines().get(pid, "")]
            if restoring and database_exists(service.settings.database_url, name):
                return runs[0], name
        time.sleep(0.02)
    pytest.fail("the deep verify never started restoring")


def _restores_into(name: str) -> list[int]:
    return [pid for pid, argv in command_lines().items() if "pg_restore" in argv and f"--dbname={name}" in argv]


def test_deep_verify_killed_mid_restore_leaves_a_scratch_database_that_sweep_drops(
        bulky_db: str, tmp_path: Path, make_service: MakeService, make_database: Any) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(bulky_db, backup_dir)
    backup, _ = take_backup(service, BackupKind.FULL, Compression.ZSTD)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "OPENWATCH_"))}
    env.update(OPENWATCH_DATABASE_URL=bulky_db, OPENWATCH_BACKUP_DIR=str(backup_dir))

    proc = subprocess.Popen([str(CLI), "verify", str(backup.id)[:8], "--deep"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        verify_run, scratch = _wait_until_restoring(service, proc)
        make_database.track(scratch)  # dropped at teardown should the sweep below fail
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    url = service.settings.database_url
    assert database_exists(url, scratch)
    stuck = service.get_run(str(verify_run.id))
    assert (stuck.status, stuck.phase, stuck.parent_id) == ("running", "deep", backup.id)

    kept = service.sweep()  # its run still counts as running: the sweep must not touch it
    assert scratch not in kept.databases
    assert database_exists(url, scratch)

    update_catalog(service, stuck, status="abandoned")  # what the stale-run sweeper will do
    done = subprocess.run([str(CLI), "sweep", "--json"], env=env, capture_output=True, text=True, timeout=120)

    assert (done.returncode, done.stderr) == (0, "")
    assert scratch in json.loads(done.stdout)["databases"]
    assert not database_exists(url, scratch)
    assert scratch_databases_of(service) == []
    deadline = time.monotonic() + 10
    while _restores_into(scratch) and time.monotonic() < deadline:  # the orphaned pg_restore lost its database
        time.sleep(0.05)
    assert _restores_into(scratch) == []
    assert service.get_run(str(backup.id)).status == "succeeded"


def test_scratch_name_is_per_run() -> None:
    run_id = uuid.UUID("0123456789ab4def8123456789abcdef")
    assert scratch_name("verify", run_id) == "owbscratch_verify_0123456789ab"
