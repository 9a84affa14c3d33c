"""The restore drill and the backup checklist against a real PostgreSQL: run records, item states, exit codes."""

from __future__ import annotations

import gc
import json
import os
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner, Result

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.cli import app
from openwatch_backup.core.kinds import BackupKind, Compression, RunStatus
from openwatch_backup.errors import DumpFailed, RunNotFound
from openwatch_backup.service import BackupService
from openwatch_backup.source.scratch import scratch_name
from tests.support.procs import children_named

KEYS = ["backup_present", "backup_verified", "verify_failures", "offsite_copy", "retention_applied", "log_clean",
        "settings_valid", "config_passphrase", "config_bundle", "certificates", "restore_drill",
        "rto_container_restart", "rto_database_corruption", "rto_host_failure", "rto_volume_loss", "offsite_accessible",
        "procedures_reviewed"]
HEALTHY = {"backup_present": "ok", "backup_verified": "ok", "verify_failures": "ok", "offsite_copy": "skip",
           "retention_applied": "ok", "log_clean": "ok", "settings_valid": "ok", "config_passphrase": "ok",
           "config_bundle": "ok", "certificates": "ok", "restore_drill": "ok",
           "offsite_accessible": "skip", "procedures_reviewed": "skip"}
NO_BACKUP = "no successful full backup to drill with; take one with `openwatch-backup backup`"

MakeService = Callable[..., BackupService]


@dataclass(frozen=True)
class Env:
    url: str
    dir: Path


@pytest.fixture
def env(backup_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    """A fresh sample database and an empty backup folder in OPENWATCH_DATABASE_URL / OPENWATCH_BACKUP_DIR,
    a config bundle's passphrase file and one input, and no other OPENWATCH_* or PG* variable from the outer
    environment."""
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id_ed25519").write_text("sample key\n")
    (tmp_path / "passphrase").write_text("a long sample passphrase for the checklist\n")
    (tmp_path / "passphrase").chmod(0o600)
    monkeypatch.setenv("OPENWATCH_BACKUP_CONFIG_PATHS", str(tmp_path / "keys"))
    monkeypatch.setenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", str(tmp_path / "passphrase"))
    return Env(backup_env.url, backup_env.dir)


@pytest.fixture
def service(env: Env, make_service: MakeService) -> BackupService:
    """With a verified config bundle, so the checklist's config items are ok (tests/test_config_on_change.py
    checks them)."""
    made = make_service(env.url, env.dir)
    bundle = made.backup(made.build_request(BackupKind.CONFIG))
    assert bundle.status == "succeeded", bundle.error
    verified, _ = made.verify(str(bundle.id))
    assert verified.status == "succeeded", verified.error
    return made


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def check_json(exit_code: int, *, all_keys: bool = True) -> dict[str, Any]:
    result = invoke("check", "--json")
    assert result.exit_code == exit_code, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    if all_keys:
        assert [item["key"] for item in report["items"]] == KEYS
    assert report["ok"] is (exit_code == 0)
    return report


def states(report: dict[str, Any]) -> dict[str, str]:
    """Item states without the RTO rows (tests/test_rto_check.py has those)."""
    return {item["key"]: item["status"] for item in report["items"] if not item["key"].startswith("rto_")}


def item(report: dict[str, Any], key: str) -> dict[str, Any]:
    return next(i for i in report["items"] if i["key"] == key)


MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def table_marks(output: str) -> list[str]:
    """The mark of each row of the human table, top to bottom (the first cell of a row's first line)."""
    found = []
    for line in output.splitlines():
        first = line.strip("│┃ ").split("│")[0].strip()
        if first in MARKS.values():
            found.append(first)
    return found


def check_human(exit_code: int, report: dict[str, Any]) -> None:
    """`check` without --json: the same verdict as a table, and the same exit status."""
    result = invoke("check")
    assert result.exit_code == exit_code, result.output
    assert "backup checklist" in result.stdout
    assert table_marks(result.stdout) == [MARKS[entry["status"]] for entry in report["items"]]


def full_backup(service: BackupService) -> BackupRun:
    run = service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    assert run.status == "succeeded", run.error
    return run


def scratch_databases(url: str, run_id: uuid.UUID) -> list[str]:
    """Scratch databases (any purpose) of one run, on the whole server."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'owbscratch\\_%%\\_' || %s",
                            (run_id.hex[:12],)).fetchall()
    return [str(r[0]) for r in rows]


def shift_back(url: str, run_id: uuid.UUID, interval: str) -> None:
    """Move every timestamp of a run into the past, as if it had run then."""
    with psycopg.connect(url) as conn:
        done = conn.execute("UPDATE backup_runs SET created_at = created_at - %s::interval, "
                            "started_at = started_at - %s::interval, finished_at = finished_at - %s::interval, "
                            "heartbeat_at = heartbeat_at - %s::interval WHERE id = %s",
                            (interval, interval, interval, interval, run_id))
        assert done.rowcount == 1


def catalog_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM backup_runs").fetchone()
    assert row is not None
    return int(row[0])


# --- drill -----------------------------------------------------------------------------------------------------


def test_drill_without_a_backup_is_refused(env: Env, service: BackupService) -> None:
    with pytest.raises(RunNotFound) as caught:
        service.drill()

    assert caught.value.message == NO_BACKUP
    result = invoke("drill", "--json")
    assert (result.exit_code, result.stdout, result.stderr) == (6, "", f"error: {NO_BACKUP}\n")
    assert catalog_count(env.url) == 2  # the fixture's config bundle and its verify: nothing for the drill


def test_drill_after_a_full_backup_passes_within_the_rto(env: Env, service: BackupService) -> None:
    backup = full_backup(service)

    drill = service.drill()

    assert (drill.kind, drill.status, drill.parent_id, drill.error_code, drill.error) == (
        "drill", "succeeded", backup.id, None, None)
    assert (drill.artifact_location, drill.size_bytes, drill.sha256) == (
        backup.artifact_location, backup.size_bytes, backup.sha256)
    info = drill.details["drill"]
    assert info["backup_run"] == str(backup.id)
    assert info["rto_seconds"] > 0
    assert (info["rto_target_seconds"], info["within_rto"]) == (1800, True)
    verify = info["verify"]
    assert (verify["result"], verify["reason"], verify["deep"]) == ("passed", None, True)
    assert verify["checks"]["canary"] == "found"
    assert set(verify["checks"]["row_counts"]) == {"hosts", "scans", "scan_findings", "users"}
    # The drill restored into its own scratch database and dropped it.
    assert verify["checks"]["scratch_database"] == scratch_name("drill", drill.id)
    assert scratch_databases(env.url, drill.id) == []


def test_drill_over_the_rto_fails(env: Env, make_service: MakeService) -> None:
    service = make_service(env.url, env.dir, rto_minutes=0.000001)
    backup = full_backup(service)

    drill = service.drill()

    assert (drill.kind, drill.status, drill.parent_id, drill.error_code) == (
        "drill", "failed", backup.id, "rto_exceeded")
    assert drill.error is not None
    assert drill.error.startswith("recovery took ")
    assert drill.error.endswith(" s, over the 1e-06 min objective (OPENWATCH_BACKUP_RTO_MINUTES)")
    info = drill.details["drill"]
    assert info["rto_target_seconds"] == pytest.approx(0.00006)
    assert (info["within_rto"], info["verify"]["result"], info["verify"]["deep"]) == (False, "passed", True)
    assert info["rto_seconds"] > info["rto_target_seconds"]
    assert scratch_databases(env.url, drill.id) == []


def test_drill_over_the_rto_through_the_cli_exits_8(env: Env, service: BackupService,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable the error names is the one that sets the objective."""
    backup = full_backup(service)
    monkeypatch.setenv("OPENWATCH_BACKUP_RTO_MINUTES", "0.000001")

    result = invoke("drill", "--json")

    assert result.exit_code == 8, result.output
    run = json.loads(result.stdout)
    assert (run["kind"], run["status"], run["parent_id"], run["error_code"]) == (
        "drill", "failed", str(backup.id), "rto_exceeded")
    assert result.stderr == f"error: {run['error']}\n"


def test_drill_of_a_corrupted_newest_backup_fails_its_checksum(env: Env, service: BackupService) -> None:
    full_backup(service)
    newest = full_backup(service)
    path = Path(newest.artifact_location or "")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    drill = service.drill()

    assert (drill.kind, drill.status, drill.parent_id, drill.error_code) == (
        "drill", "failed", newest.id, "verify_checksum")
    assert drill.error is not None
    assert drill.error.startswith(f"verify failed (checksum): {path.name} has sha256 ")
    assert drill.error.endswith(f", the manifest says {newest.sha256}")
    info = drill.details["drill"]
    assert (info["verify"]["result"], info["verify"]["reason"], info["verify"]["deep"]) == (
        "failed", "checksum", False)
    assert scratch_databases(env.url, drill.id) == []


def test_drill_as_a_cli_command(env: Env, service: BackupService) -> None:
    backup = full_backup(service)

    result = invoke("drill", "--json")

    assert (result.exit_code, result.stderr) == (0, "")
    run = json.loads(result.stdout)
    assert (run["kind"], run["status"], run["parent_id"]) == ("drill", "succeeded", str(backup.id))
    human = invoke("drill")
    assert human.exit_code == 0
    assert human.stdout.startswith("drill passed: recovered in ")
    assert " s (objective 30 min) (run " in human.stdout


def create_scratch(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_scratch(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_drill_sweeps_the_scratch_database_its_catalogs_finished_run_left(env: Env, service: BackupService) -> None:
    killed = service.recorder.create("verify", "cli")
    assert service.recorder.claim(killed)
    service.recorder.finish_unsuccessfully(killed, RunStatus.ABANDONED, "abandoned", "the worker died")
    name = scratch_name("verify", killed)
    create_scratch(env.url, name)
    try:
        full_backup(service)
        assert service.drill().status == "succeeded"

        assert scratch_databases(env.url, killed) == []
    finally:
        drop_scratch(env.url, name)


def test_a_drill_leaves_the_scratch_database_of_another_catalogs_running_run(
        env: Env, service: BackupService, make_database: Any, make_service: MakeService, tmp_path: Path) -> None:
    """Scratch databases are server-wide, catalogs are per database: a run the catalog does not know is left
    alone (it used to be dropped WITH (FORCE) mid-restore)."""
    other = make_service(make_database("other"), tmp_path / "other")
    running = other.recorder.create("verify", "cli")
    assert other.recorder.claim(running)  # a deep verify in progress against the other database
    name = scratch_name("verify", running)
    create_scratch(env.url, name)
    try:
        full_backup(service)
        assert service.drill().status == "succeeded"

        assert scratch_databases(env.url, running) == [name]
    finally:
        drop_scratch(env.url, name)


def corrupt(run: BackupRun, offset: int | None = None) -> Path:
    """Flip one byte of a run's artifact, by default in the middle (same size, other content)."""
    path = Path(run.artifact_location or "")
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_feeder_pipes_are_closed(env: Env, service: BackupService) -> None:
    """A deep verify feeds `pg_restore --list` and the restore; neither leaves a pipe open (it used to)."""
    backup = full_backup(service)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        verify, _ = service.verify(str(backup.id), deep=True)
        gc.collect()

    assert (verify.status, verify.details["verify"]["deep"]) == ("succeeded", True)
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_quick_verify_of_an_undecompressable_artifact_reaps_pg_restore(env: Env, service: BackupService) -> None:
    """The `pg_restore --list` child is ended when decompression fails (it used to wait on its stdin forever)."""
    backup = full_backup(service)
    corrupt(backup, offset=64)  # in the first zstd block: pg_restore gets no byte before decompression fails

    verify, result = service.verify(str(backup.id))

    assert (verify.status, verify.error_code) == ("failed", "verify_checksum")
    assert result is not None
    assert result.checks["sha256"] != backup.sha256
    assert children_named(os.getpid(), "pg_restore") == []


# --- check -----------------------------------------------------------------------------------------------------


def test_check_of_an_empty_catalog_fails(env: Env, service: BackupService) -> None:
    items = service.checklist()

    first = items[0]
    assert (first.key, first.status.value, first.detail, first.fix) == (
        "backup_present", "fail", "no successful full backup in the catalog", "run `openwatch-backup backup`")
    report = check_json(1)  # every item, even without a backup: monitoring keys on them
    assert states(report) == {**HEALTHY, "backup_present": "fail", "backup_verified": "fail",
                              "retention_applied": "fail", "restore_drill": "fail"}
    assert (item(report, "backup_verified")["detail"], item(report, "log_clean")["detail"]) == (
        "no backup to verify", "no error")
    assert item(report, "restore_drill")["detail"] == "no passed drill in 90 days (never run)"
    check_human(1, report)


def test_check_after_a_backup_only(env: Env, service: BackupService) -> None:
    backup = full_backup(service)

    items = {i.key: i for i in service.checklist()}

    assert list(items) == KEYS
    assert items["backup_verified"].as_dict() == {
        "key": "backup_verified", "title": "The backup reads back (pg_restore --list, checksum)",
        "cadence": "each backup", "status": "fail", "detail": "never verified",
        "fix": f"run `openwatch-backup verify {str(backup.id)[:8]}`"}
    report = check_json(1)
    assert states(report) == {**HEALTHY, "backup_verified": "fail", "retention_applied": "fail",
                              "restore_drill": "fail"}
    assert item(report, "backup_present")["detail"].startswith(f"{backup.details['artifact']} (")
    assert item(report, "restore_drill")["detail"] == "no passed drill in 90 days (never run)"
    check_human(1, report)


def test_check_after_a_failed_verify(env: Env, service: BackupService) -> None:
    backup = full_backup(service)
    corrupt(backup)
    verify, _ = service.verify(str(backup.id))
    assert verify.status == "failed"

    report = check_json(1)

    assert states(report) == {**HEALTHY, "backup_verified": "fail", "verify_failures": "fail",
                              "retention_applied": "fail", "log_clean": "fail", "restore_drill": "fail"}
    assert item(report, "backup_verified")["detail"] == verify.error
    failures = item(report, "verify_failures")
    assert failures["detail"] == f"full backup {str(backup.id)[:8]}: quick verify failed 0.0 h ago: {verify.error}"
    assert failures["fix"] == (f"see `openwatch-backup show {str(verify.id)[:8]}`; fix the cause and verify it again "
                               f"(`openwatch-backup verify {str(backup.id)[:8]}`), or take a new backup")
    assert item(report, "log_clean")["detail"].startswith(f"verify run {str(verify.id)[:8]} failed ")


@dataclass(frozen=True)
class Healthy:
    service: BackupService
    backup: BackupRun
    verify: BackupRun
    drill: BackupRun


@pytest.fixture
def healthy(env: Env, service: BackupService) -> Healthy:
    """A full backup, its quick verify, a passed drill and an applied prune: every item that can be ok is ok."""
    backup = full_backup(service)
    verify, _ = service.verify(str(backup.id))
    drill = service.drill()
    assert (verify.status, drill.status, service.prune(apply=True).status) == ("succeeded",) * 3
    return Healthy(service, backup, verify, drill)


def test_check_after_verify_and_drill_passes(env: Env, healthy: Healthy) -> None:
    items = [i for i in healthy.service.checklist() if not i.key.startswith("rto_")]  # test_rto_check.py

    assert [(i.key, i.status.value) for i in items] == list(HEALTHY.items())
    assert [i.cadence for i in items] == ["each backup"] * 10 + ["quarterly"] * 3
    assert all(i.fix == "" for i in items)
    report = check_json(0)
    assert states(report) == HEALTHY
    assert item(report, "backup_verified")["detail"] == "drill passed 0.0 h ago"  # the newest verdict
    assert item(report, "verify_failures")["detail"] == "none failed"
    assert item(report, "log_clean")["detail"] == "no error"
    assert item(report, "restore_drill")["detail"].startswith(
        f"passed 0.0 h ago: recovered in {healthy.drill.details['drill']['rto_seconds']} s (objective 30 min")
    assert item(report, "offsite_copy")["detail"] == "off-site storage is not configured"
    check_human(0, report)


def test_check_after_a_deep_verify_says_deep(env: Env, service: BackupService) -> None:
    backup = full_backup(service)
    verify, _ = service.verify(str(backup.id), deep=True)
    assert verify.status == "succeeded"

    report = check_json(1)  # no drill yet

    assert states(report) == {**HEALTHY, "retention_applied": "fail", "restore_drill": "fail"}
    assert item(report, "backup_verified")["detail"].startswith("deep verify passed ")


def test_check_after_a_failed_run_fails_log_clean(env: Env, healthy: Healthy) -> None:
    service = healthy.service
    with pytest.raises(DumpFailed):
        service.backup(service.build_request(BackupKind.TABLES, Compression.ZSTD, ["nosuchtable"]))
    failed = service.list_runs(limit=1)[0]
    assert (failed.kind, failed.status) == ("tables", "failed")

    report = check_json(1)

    assert states(report) == {**HEALTHY, "log_clean": "fail"}
    log = item(report, "log_clean")
    assert log["detail"] == f"tables run {str(failed.id)[:8]} failed 0.0 h ago: {failed.error}"
    assert "nosuchtable" in log["detail"]
    assert log["fix"] == f"see `openwatch-backup show {str(failed.id)[:8]}`, fix the cause, run it again"
    check_human(1, report)


def test_check_fails_a_backup_older_than_max_age(env: Env, healthy: Healthy) -> None:
    shift_back(env.url, healthy.backup.id, "30 hours")

    report = check_json(1)

    assert states(report) == {**HEALTHY, "backup_present": "fail"}
    present = item(report, "backup_present")
    assert present["detail"] == "the newest backup is from 30.0 h ago, over 26 h"
    assert present["fix"] == "check that the nightly schedule runs; run `openwatch-backup backup`"
    check_human(1, report)


def test_check_passes_a_backup_younger_than_max_age(env: Env, healthy: Healthy) -> None:
    shift_back(env.url, healthy.backup.id, "25 hours")

    assert states(check_json(0)) == HEALTHY


def test_check_fails_a_drill_older_than_drill_max_age(env: Env, healthy: Healthy) -> None:
    shift_back(env.url, healthy.drill.id, "100 days")

    report = check_json(1)

    assert states(report) == {**HEALTHY, "restore_drill": "fail"}
    drill = item(report, "restore_drill")
    assert (drill["detail"], drill["fix"]) == ("no passed drill in 90 days (last one 100 days ago)",
                                               "run `openwatch-backup drill`")
    check_human(1, report)


def test_check_fails_when_the_artifact_is_gone(env: Env, healthy: Healthy) -> None:
    path = Path(healthy.backup.artifact_location or "")
    path.unlink()

    report = check_json(1)

    assert states(report) == {**HEALTHY, "backup_present": "fail"}
    present = item(report, "backup_present")
    assert (present["detail"], present["fix"]) == (f"{path} is missing or empty",
                                                   "take a new backup and find out what removed the file")
    check_human(1, report)


def test_check_fails_when_the_artifact_is_empty(env: Env, healthy: Healthy) -> None:
    path = Path(healthy.backup.artifact_location or "")
    path.write_bytes(b"")

    report = check_json(1)

    assert states(report) == {**HEALTHY, "backup_present": "fail"}
    assert item(report, "backup_present")["detail"] == f"{path} is missing or empty"


# --- verdicts: a drill verifies, and every failed verify shows (issue 9, failures 9 and 10) ------------------------


def test_a_passed_drill_counts_as_verified(env: Env, service: BackupService) -> None:
    """The repro: a backup whose drill passed, never verified on its own, said "never verified"."""
    full_backup(service)
    drill = service.drill()
    assert drill.status == "succeeded"

    report = check_json(1)  # no prune yet

    assert states(report) == {**HEALTHY, "retention_applied": "fail"}
    assert item(report, "backup_verified")["detail"] == "drill passed 0.0 h ago"


def test_a_drill_over_the_rto_still_verified_the_backup(env: Env, make_service: MakeService) -> None:
    """Over the RTO the drill fails (restore_drill), but it did restore and check the backup."""
    slow = make_service(env.url, env.dir, rto_minutes=0.0001)
    full_backup(slow)
    drill = slow.drill()
    assert (drill.status, drill.error_code) == ("failed", "rto_exceeded")

    report = check_json(1)

    assert states(report)["backup_verified"] == "ok"
    assert states(report)["verify_failures"] == "ok"
    assert item(report, "backup_verified")["detail"] == "drill passed 0.0 h ago"


def test_bytes_out_is_recorded_on_a_finished_backup(env: Env, service: BackupService) -> None:
    backup = full_backup(service)

    assert backup.details["bytes_out"] == backup.size_bytes == Path(backup.artifact_location or "").stat().st_size
    assert backup.details["bytes_out"] > 0


def _recorded_verify(service: BackupService, backup: BackupRun, *, deep: bool, passed: bool,
                     error: str = "verify failed (counts): row counts differ (hosts: 1 restored, 2 in the manifest)"
                     ) -> BackupRun:
    """A verify run exactly as run_verify records it (request, result), for verdicts a real file cannot produce
    on demand (a deep failure after a quick pass)."""
    run_id = service.recorder.create("verify", "cli", "test", parent_id=backup.id, details={"request": {"deep": deep}})
    assert service.recorder.claim(run_id)
    result = {"result": "passed" if passed else "failed", "reason": None if passed else "counts", "deep": deep,
              "message": "all checks passed" if passed else error, "checks": {}}
    if passed:
        service.recorder.succeed(run_id, location=backup.artifact_location, size=backup.size_bytes,
                                 sha256=backup.sha256, details={"verify": result, "backup_run": str(backup.id)})
    else:
        service.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, "verify_counts", error,
                                               {"verify": result, "backup_run": str(backup.id)})
    return service.get_run(str(run_id))


def test_a_failed_verify_of_an_older_tables_backup_shows(env: Env, healthy: Healthy) -> None:
    """The repro of failure 10: a `tables` backup's verify failed; the newest full backup is fine and the last
    run in the log succeeded, so nothing used to show it."""
    service = healthy.service
    tables = service.backup(service.build_request(BackupKind.TABLES, Compression.ZSTD, ["hosts"]))
    assert tables.status == "succeeded", tables.error
    corrupt(tables)
    verify, _ = service.verify(str(tables.id), deep=True)
    assert verify.status == "failed"
    newer = full_backup(service)
    assert service.verify(str(newer.id))[0].status == "succeeded"  # the log's last run is clean again

    report = check_json(1)

    assert states(report) == {**HEALTHY, "verify_failures": "fail", "restore_drill": "ok"}
    failures = item(report, "verify_failures")
    assert failures["detail"] == f"tables backup {str(tables.id)[:8]}: deep verify failed 0.0 h ago: {verify.error}"
    assert failures["fix"].endswith(f"(`openwatch-backup verify {str(tables.id)[:8]} --deep`), or take a new backup")
    check_human(1, report)


def test_a_quick_pass_does_not_clear_a_deep_failure_but_a_deep_pass_does(env: Env, healthy: Healthy) -> None:
    service, backup = healthy.service, healthy.backup
    deep_failure = _recorded_verify(service, backup, deep=True, passed=False)
    assert service.verify(str(backup.id))[0].status == "succeeded"  # a real quick verify, after it

    report = check_json(1)

    assert states(report) == {**HEALTHY, "verify_failures": "fail"}
    assert item(report, "backup_verified")["detail"].startswith("quick verify passed ")
    assert item(report, "verify_failures")["detail"] == (
        f"full backup {str(backup.id)[:8]}: deep verify failed 0.0 h ago: {deep_failure.error}")

    assert service.verify(str(backup.id), deep=True)[0].status == "succeeded"
    assert states(check_json(0)) == HEALTHY


def test_a_deep_pass_clears_an_earlier_quick_failure(env: Env, healthy: Healthy) -> None:
    service, backup = healthy.service, healthy.backup
    _recorded_verify(service, backup, deep=False, passed=False)
    assert states(check_json(1))["verify_failures"] == "fail"
    _recorded_verify(service, backup, deep=True, passed=True)

    assert states(check_json(0)) == HEALTHY


def test_a_pruned_backups_failed_verify_no_longer_shows(env: Env, healthy: Healthy) -> None:
    service, backup = healthy.service, healthy.backup
    older = full_backup(service)
    _recorded_verify(service, older, deep=False, passed=False)
    assert states(check_json(1))["verify_failures"] == "fail"
    with psycopg.connect(env.url) as conn:
        conn.execute("UPDATE backup_runs SET pruned_at = now() WHERE id = %s", (older.id,))
    newest = full_backup(service)
    assert service.verify(str(newest.id))[0].status == "succeeded"

    report = check_json(0)

    assert item(report, "verify_failures")["detail"] == "none failed"
    assert backup.id != older.id
