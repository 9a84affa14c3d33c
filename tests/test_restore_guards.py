"""The guards in front of a restore: confirmation, other sessions, compatibility, verification. Each one
refuses before anything changes; the CLI maps refusals and failures to their exit statuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import RestoreFailed, RestoreRefused
from openwatch_backup.operations.backup import ProgressEvent
from openwatch_backup.operations.restore import RestoreRequest
from tests.support.procs import children_named
from tests.support.restore_helpers import (
    CANARY,
    CATALOG,
    Content,
    DatabaseFactory,
    Lab,
    ServiceFactory,
    backend_dir,
    cli_env,
    content,
    count,
    database_exists,
    databases_named_after,
    flip_byte,
    forge_manifest,
    release_hung_children,
    run_cli,
    server_major,
)

# `lab` (tests/conftest.py) is the restore tests' shared fixture; each test starts from a clean environment.
pytestmark = pytest.mark.usefixtures("restore_env")


def assert_untouched(lab: Lab, before: Content, *, skip: tuple[str, ...] = (CATALOG,)) -> None:
    """Nothing changed: same content, no kept or other database named after it, no scratch database,
    no safety backup."""
    assert content(lab.url, skip=skip) == before
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert lab.leftovers() == []
    assert lab.safety_runs() == []


def assert_refused_run(lab: Lab, message: str, phase: str = "guards") -> None:
    run = lab.only_restore_run()
    assert (run.status, run.error_code, run.phase, run.error) == ("failed", "restore_refused", phase, message)


# --- confirmation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("confirm", "tables"), [
    pytest.param(None, (), id="missing"),
    pytest.param("openwatch", (), id="wrong"),
    pytest.param("UPPER", (), id="other-case"),
    pytest.param(None, ("scan_findings",), id="table-missing"),
])
def test_restore_needs_the_database_name_confirmed(lab: Lab, confirm: str | None, tables: tuple[str, ...]) -> None:
    backup = lab.backup()
    if tables:
        with psycopg.connect(lab.url) as conn:
            conn.execute("DELETE FROM scan_findings")  # the --table restore would have rows to bring back
    before = content(lab.url)
    typed = lab.name.upper() if confirm == "UPPER" else confirm

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(confirm=typed, tables=tables, data_only=bool(tables)))

    assert caught.value.message == (f"this replaces database {lab.name}: type its name to confirm "
                                    f"(--confirm {lab.name})")
    assert_untouched(lab, before)
    assert_refused_run(lab, caught.value.message)


# --- other sessions ----------------------------------------------------------------------------------


def test_other_sessions_refuse_the_restore_unless_terminated(lab: Lab) -> None:
    backup = lab.backup()
    at_backup = content(lab.url)
    with psycopg.connect(lab.url, application_name="someone", autocommit=True) as someone:
        with pytest.raises(RestoreRefused) as caught:
            lab.service.restore(str(backup.id), RestoreRequest(confirm=lab.name))

        assert caught.value.message == (
            f"1 other session(s) (someone) connected to {lab.name}; stop OpenWatch's backend, worker and beat "
            "first (docker stop openwatch-backend openwatch-worker openwatch-celery-beat), or pass "
            "--terminate-connections")
        assert_untouched(lab, at_backup)
        assert_refused_run(lab, caught.value.message)
        assert someone.execute("SELECT 1").fetchone() == (1,)

        run = lab.service.restore(str(backup.id), RestoreRequest(confirm=lab.name, terminate_connections=True,
                                                                 safety_backup=False))

        assert run.status == "succeeded"
        assert content(lab.url) == at_backup
        with pytest.raises(psycopg.OperationalError):
            someone.execute("SELECT 1")
    assert len(databases_named_after(lab.pg, lab.name)) == 2  # live and the kept one


def test_a_session_that_arrives_before_the_swap_fails_the_restore_and_changes_nothing(lab: Lab) -> None:
    """The guard saw no one; someone connects while the safety backup runs: the swap refuses, the scratch
    database goes, the live database takes connections again."""
    backup = lab.backup()
    before = content(lab.url, skip=(CATALOG, CANARY))  # the safety backup rewrites the canary
    late: list[psycopg.Connection] = []

    def arrive(event: ProgressEvent) -> None:
        if not late:
            late.append(psycopg.connect(lab.url, application_name="latecomer", autocommit=True))

    try:
        with pytest.raises(RestoreFailed) as caught:
            lab.service.restore(str(backup.id), RestoreRequest(confirm=lab.name), observer=arrive)
        assert late, "the safety backup reported no progress: the session never arrived"
        assert caught.value.message == (f"1 other session(s) (latecomer) connected to {lab.name} at the swap; stop "
                                        "OpenWatch's backend, worker and beat, or pass --terminate-connections")
        assert late[0].execute("SELECT 1").fetchone() == (1,)
    finally:
        for conn in late:
            conn.close()

    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert lab.leftovers() == []
    with lab.pg.connect() as admin:
        assert admin.execute("SELECT datallowconn FROM pg_database WHERE datname = %s",
                             (lab.name,)).fetchone() == (True,)
    run = lab.only_restore_run()
    assert (run.status, run.error_code, run.phase) == ("failed", "restore_failed", "swapping")
    assert [r.status for r in lab.safety_runs()] == ["succeeded"]


# --- compatibility -------------------------------------------------------------------------------------


def test_dump_from_a_newer_server_is_refused_unless_allowed(lab: Lab, make_database: DatabaseFactory) -> None:
    backup = lab.backup()
    at_backup = content(lab.url)
    major = server_major(lab.pg)
    forge_manifest(lab, backup, server_version=f"{major + 1}.4")

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(confirm=lab.name))

    assert caught.value.message == (f"the dump comes from PostgreSQL {major + 1}.4, newer than this server "
                                    f"({major}); restore onto PostgreSQL {major + 1} or pass --allow-newer-server")
    assert_untouched(lab, at_backup)
    assert_refused_run(lab, caught.value.message)

    target = make_database.track(make_database.new_name("into"))
    run = lab.service.restore(str(backup.id), RestoreRequest(into=target, allow_newer_server=True))
    assert run.status == "succeeded"
    assert content(lab.pg.url_for(target)) == at_backup


@pytest.mark.parametrize(("revisions", "allow", "refused"), [
    pytest.param(("034_x",), False, True, id="unknown-head"),
    pytest.param(("034_x", "035_merge_alerts"), False, False, id="known-head"),
    pytest.param(("034_x",), True, False, id="unknown-head-allowed"),
])
def test_migration_head_gate(lab: Lab, make_database: DatabaseFactory, make_service: ServiceFactory, tmp_path: Path,
                             revisions: tuple[str, ...], allow: bool, refused: bool) -> None:
    backup = lab.backup()
    assert lab.manifest(backup).openwatch_alembic_head == "035_merge_alerts"
    at_backup = content(lab.url)
    backend = backend_dir(tmp_path / "backend", *revisions)
    service = make_service(lab.url, lab.backup_dir, openwatch_backend_dir=backend)
    target = make_database.track(make_database.new_name("into"))
    request = RestoreRequest(into=target, allow_newer_migrations=allow)

    if refused:
        with pytest.raises(RestoreRefused) as caught:
            service.restore(str(backup.id), request)
        assert caught.value.message == (f"the dump's OpenWatch migration head 035_merge_alerts is unknown to the "
                                        f"installed OpenWatch ({backend}): it comes from a newer version; upgrade "
                                        "OpenWatch first or pass --allow-newer-migrations")
        assert not database_exists(lab.pg, target)
        assert_untouched(lab, at_backup)
        assert_refused_run(lab, caught.value.message)
    else:
        run = service.restore(str(backup.id), request)
        assert run.status == "succeeded"
        assert run.details["restore"]["compat_notes"] == []  # the gate ran (was not skipped)
        assert content(lab.pg.url_for(target)) == at_backup


# --- verification --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "into"])
def test_a_backup_that_fails_verification_is_refused_before_anything_changes(lab: Lab, make_database: DatabaseFactory,
                                                                            mode: str) -> None:
    # No compression: the flipped byte reads, only the checksum can tell (see the zstd case below).
    backup = lab.backup(compression=Compression.NONE)
    flip_byte(lab.artifact(backup))
    before = content(lab.url)
    target = make_database.track(make_database.new_name("into"))
    request = RestoreRequest(confirm=lab.name) if mode == "full" else RestoreRequest(into=target)

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), request)

    assert caught.value.message.startswith(f"backup {backup.id} failed verification (checksum): "
                                           f"{backup.details['artifact']} has sha256 ")
    assert caught.value.message.endswith(f", the manifest says {backup.sha256}")
    assert not database_exists(lab.pg, target)
    assert_untouched(lab, before)
    assert_refused_run(lab, caught.value.message, phase="verifying")


def test_a_corrupt_zstd_backup_is_refused_without_leaving_a_client_running(lab: Lab) -> None:
    backup = lab.backup(compression=Compression.ZSTD)
    flip_byte(lab.artifact(backup))
    before = content(lab.url)
    try:
        with pytest.raises(RestoreRefused) as refused:
            lab.service.restore(str(backup.id), RestoreRequest(confirm=lab.name))

        assert refused.value.message.startswith(f"backup {backup.id} failed verification (checksum): ")
        assert_untouched(lab, before)
        # A finished verify has waited for its client: none may be left, running or unreaped.
        assert children_named(os.getpid(), "pg_restore") == []
    finally:
        release_hung_children("pg_restore")


# --- --table with --into --------------------------------------------------------------------------------


def test_table_restore_refuses_into(lab: Lab, make_database: DatabaseFactory) -> None:
    """--table writes rows into the live database; with --into it would bypass the confirmation."""
    backup = lab.backup(BackupKind.FULL)
    with psycopg.connect(lab.url) as conn:
        conn.execute("DELETE FROM audit_logs")
    before = content(lab.url)
    target = make_database.track(make_database.new_name("into"))

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(tables=("audit_logs",), data_only=True, into=target))

    assert caught.value.message == ("--table restores rows into the live database; to inspect a table, restore "
                                    "the backup --into a new database instead")
    assert count(lab.url, "audit_logs") == 0
    assert not database_exists(lab.pg, target)
    assert_untouched(lab, before)
    assert_refused_run(lab, caught.value.message)


# --- CLI exit statuses ---------------------------------------------------------------------------------


def test_cli_refused_restore_exits_10(lab: Lab) -> None:
    backup = lab.backup()
    before = content(lab.url)

    done = run_cli("restore", str(backup.id), env=cli_env(lab.url, lab.backup_dir))

    message = f"this replaces database {lab.name}: type its name to confirm (--confirm {lab.name})"
    assert (done.returncode, done.stdout, done.stderr) == (10, "", f"error: {message}\n")
    assert_untouched(lab, before)
    assert_refused_run(lab, message)


def test_cli_failed_restore_exits_8(lab: Lab) -> None:
    backup = lab.backup()
    before = content(lab.url)

    # scan_findings still holds its rows: the data-only restore fails on the primary key.
    done = run_cli("restore", str(backup.id), "--table", "scan_findings", "--data-only", "--confirm", lab.name,
                   "--no-safety-backup", "--json", env=cli_env(lab.url, lab.backup_dir))

    assert done.returncode == 8, done.stderr
    run = lab.only_restore_run()
    assert (run.status, run.error_code) == ("failed", "restore_failed")
    assert run.error is not None
    assert run.error == ('psql exited with status 3: ERROR:  duplicate key value violates unique constraint '
                         '"scan_findings_pkey"; the restore was rolled back, nothing changed')
    assert done.stderr == f"error: {run.error}\n"
    printed = json.loads(done.stdout)
    assert (printed["id"], printed["status"], printed["error_code"], printed["error"]) == (
        str(run.id), "failed", "restore_failed", run.error)
    assert_untouched(lab, before)
