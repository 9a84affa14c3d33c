"""Restore on a real PostgreSQL: the swap brings back exactly the backup and keeps the old database,
--into builds a new one, --table restores rows in one transaction, a killed restore leaves the live
database alone, and the steps after a restore (migrations, health check) decide the run's outcome."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.devstack import PostgresHandle
from openwatch_backup.errors import RestoreFailed, RestoreRefused
from openwatch_backup.operations.restore import RestoreRequest
from openwatch_backup.source.scratch import scratch_name
from tests.support.dbcompare import reference_schema, schema_dump, table_fingerprints
from tests.support.procs import children_named
from tests.support.restore_helpers import (
    CANARY,
    CATALOG,
    CLI,
    COPIES,
    SAFETY_PREFIX,
    DatabaseFactory,
    Lab,
    ServiceFactory,
    canary_nonces,
    catalog_rows,
    cli_env,
    content,
    count,
    database_exists,
    databases_named_after,
    dbname_of,
    health_server,
    modify,
    open_lab,
    process_gone,
    run_cli,
    scratch_databases_of,
    track_leftovers,
)

# `lab` (tests/conftest.py) is the restore tests' shared fixture; each test starts from a clean environment.
pytestmark = pytest.mark.usefixtures("restore_env")


def _kept_time(kept: str, live: str) -> datetime:
    match = re.fullmatch(rf"{re.escape(live)}_pre_restore_(\d{{8}}_\d{{6}})", kept)
    assert match, kept
    return datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)


# --- full restore (swap) ------------------------------------------------------------------------------

FULL_CASES = [
    pytest.param(BackupKind.FULL, Compression.ZSTD, True, id="full-zstd"),
    pytest.param(BackupKind.FULL, Compression.PG, True, id="full-pg"),
    pytest.param(BackupKind.FULL, Compression.NONE, True, id="full-none"),
    pytest.param(BackupKind.PLAIN, Compression.ZSTD, True, id="plain-zstd"),
    pytest.param(BackupKind.PLAIN, Compression.PG, True, id="plain-pg"),
    pytest.param(BackupKind.PLAIN, Compression.NONE, True, id="plain-none"),
    pytest.param(BackupKind.FULL, Compression.ZSTD, False, id="full-zstd-no-safety-backup"),
]


@pytest.mark.parametrize(("kind", "compression", "safety"), FULL_CASES)
def test_full_restore_swaps_in_the_backup_and_keeps_the_old_database(
        lab: Lab, make_database: DatabaseFactory, kind: BackupKind, compression: Compression, safety: bool) -> None:
    backup = lab.backup(kind, compression)
    at_backup = content(lab.url)
    reference = reference_schema(lab.url, make_database("ref"))
    modify(lab.url)
    modified = content(lab.url, skip=(CATALOG, CANARY))
    assert content(lab.url).tables != at_backup.tables
    assert content(lab.url).sequences != at_backup.sequences  # the restore has sequences to bring back

    started = datetime.now(UTC).replace(microsecond=0)
    run = lab.service.restore(str(backup.id), RestoreRequest(confirm=lab.name, safety_backup=safety))
    finished = datetime.now(UTC)
    kept_names = [n for n in databases_named_after(lab.pg, lab.name) if n != lab.name]
    for name in kept_names:
        make_database.track(name)

    # The live name now holds exactly the backup's content and schema.
    assert content(lab.url) == at_backup
    assert schema_dump(lab.url) == reference

    # The old database is kept under a dated name, reported, and holds the modified data.
    info = run.details["restore"]
    kept = info["kept_database"]
    assert kept_names == [kept]
    assert started <= _kept_time(kept, lab.name) <= finished
    assert databases_named_after(lab.pg, lab.name) == sorted([lab.name, kept])
    kept_url = lab.pg.url_for(kept)
    assert content(kept_url, skip=(CATALOG, CANARY)) == modified

    # The run, its details and the catalog history inside the restored database.
    assert (run.status, run.kind, run.parent_id, run.error) == ("succeeded", "restore", backup.id, None)
    assert (info["mode"], info["database"]) == ("full", lab.name)
    expected = {(str(backup.id), kind.value, "succeeded"), (str(run.id), "restore", "succeeded")}
    safety_runs = lab.safety_runs()
    if safety:
        assert len(safety_runs) == 1
        safety_run = safety_runs[0]
        assert (safety_run.kind, safety_run.status) == ("full", "succeeded")
        assert safety_run.requested_by == f"{SAFETY_PREFIX} {str(run.id)[:8]}"
        assert info["safety_backup_run"] == str(safety_run.id)
        expected.add((str(safety_run.id), "full", "succeeded"))
        # The safety backup is of the old database: its canary is the one the kept database holds.
        assert canary_nonces(kept_url) == [lab.manifest(safety_run).canary_nonce]
    else:
        assert safety_runs == []
        assert info["safety_backup_run"] is None
        assert canary_nonces(kept_url) == [lab.manifest(backup).canary_nonce]
    assert catalog_rows(lab.url) == expected
    assert canary_nonces(lab.url) == [lab.manifest(backup).canary_nonce]
    assert lab.leftovers() == []


# --- --into -----------------------------------------------------------------------------------------


def test_into_restores_a_new_database_and_leaves_the_live_one_alone(lab: Lab, make_database: DatabaseFactory) -> None:
    backup = lab.backup()
    at_backup = content(lab.url)
    reference = reference_schema(lab.url, make_database("ref"))
    modify(lab.url)
    live_before = content(lab.url)
    live_schema = schema_dump(lab.url)
    target = make_database.track(make_database.new_name("into"))

    run = lab.service.restore(str(backup.id), RestoreRequest(into=target))

    target_url = lab.pg.url_for(target)
    assert content(target_url) == at_backup
    assert schema_dump(target_url) == reference
    assert count(target_url, "backup_runs") == 0  # dumps carry no catalog rows; --into copies none
    assert content(lab.url) == live_before
    assert schema_dump(lab.url) == live_schema
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert run.status == "succeeded"
    info = run.details["restore"]
    assert (info["mode"], info["database"], info["kept_database"], info["safety_backup_run"]) == (
        "into", target, None, None)
    assert catalog_rows(lab.url) == {(str(backup.id), "full", "succeeded"), (str(run.id), "restore", "succeeded")}
    assert lab.leftovers() == []


def test_into_restores_a_schema_backup(lab: Lab, make_database: DatabaseFactory) -> None:
    backup = lab.backup(BackupKind.SCHEMA)
    reference = reference_schema(lab.url, make_database("ref"))
    target = make_database.track(make_database.new_name("into"))

    run = lab.service.restore(str(backup.id), RestoreRequest(into=target))

    assert run.status == "succeeded"
    assert schema_dump(lab.pg.url_for(target)) == reference
    assert {n for n, _ in table_fingerprints(lab.pg.url_for(target)).values()} == {0}


def test_into_restores_a_tables_backup(lab: Lab, make_database: DatabaseFactory) -> None:
    backup = lab.backup(BackupKind.TABLES)
    source = content(lab.url)
    target = make_database.track(make_database.new_name("into"))

    run = lab.service.restore(str(backup.id), RestoreRequest(into=target))

    assert run.status == "succeeded"
    manifest = lab.manifest(backup)
    assert (manifest.tables, manifest.canary_included) == (["hosts", "scans", "scan_findings"], True)
    restored = table_fingerprints(lab.pg.url_for(target))
    held = ("public.hosts", "public.scans", "public.scan_findings", CANARY)
    assert {t: restored[t] for t in held} == {t: source.tables[t] for t in held}
    # The whole schema comes along (enum types, extensions, sequences the tables need), without other rows.
    assert set(restored) == {*source.tables, CATALOG, COPIES}
    assert {t: n for t, (n, _) in restored.items() if t not in held} == {t: 0 for t in restored if t not in held}


@pytest.mark.parametrize("which", ["existing", "live", "not-a-name"])
def test_into_refuses_an_existing_or_bad_name(lab: Lab, make_database: DatabaseFactory, which: str) -> None:
    backup = lab.backup()
    existing_url = make_database("exists")
    with psycopg.connect(existing_url) as conn:
        conn.execute("CREATE TABLE precious (id int PRIMARY KEY)")
        conn.execute("INSERT INTO precious VALUES (1), (2)")
    existing_before = table_fingerprints(existing_url)
    live_before = content(lab.url)
    into = {"existing": dbname_of(existing_url), "live": lab.name, "not-a-name": "bad-name; DROP"}[which]

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(into=into))

    if which == "existing":
        assert caught.value.message == (f"database {into} already exists; --into restores only into a new "
                                        "database (drop it or choose another name)")
    else:
        assert caught.value.message == (f"--into needs a new database name other than {lab.name} "
                                        "(letters, digits, _)")
    assert table_fingerprints(existing_url) == existing_before
    assert content(lab.url) == live_before
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert not database_exists(lab.pg, "bad-name; DROP")
    run = lab.only_restore_run()
    assert (run.status, run.error_code, run.phase, run.error) == ("failed", "restore_refused", "guards",
                                                                  caught.value.message)
    assert lab.leftovers() == []


@pytest.mark.parametrize("kind", [BackupKind.SCHEMA, BackupKind.TABLES])
def test_full_restore_refuses_a_partial_backup(lab: Lab, kind: BackupKind) -> None:
    backup = lab.backup(kind)
    before = content(lab.url)

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(confirm=lab.name))

    assert caught.value.message.startswith(f"backup {backup.id} is of kind {kind.value}: it does not hold the "
                                           "whole database; restore it --into a new database")
    assert content(lab.url) == before
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert lab.safety_runs() == []
    assert lab.only_restore_run().error_code == "restore_refused"
    assert lab.leftovers() == []


# --- --table -------------------------------------------------------------------------------------------


def test_table_data_only_brings_deleted_rows_back(lab: Lab) -> None:
    backup = lab.backup()
    source = content(lab.url)
    with psycopg.connect(lab.url) as conn:
        conn.execute("DELETE FROM scan_findings")  # a leaf table: nothing references it
    assert count(lab.url, "scan_findings") == 0

    run = lab.service.restore(str(backup.id), RestoreRequest(tables=("scan_findings",), data_only=True,
                                                             confirm=lab.name, safety_backup=False))

    assert content(lab.url) == source
    info = run.details["restore"]
    assert run.status == "succeeded"
    assert (info["mode"], info["database"], info["kept_database"]) == ("table", lab.name, None)
    assert info["row_counts_after"] == {"scan_findings": source.tables["public.scan_findings"][0]}
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert lab.leftovers() == []


def _data_order(archive: Path) -> list[str]:
    listing = subprocess.run(["pg_restore", "--list", str(archive)], capture_output=True, text=True,
                             check=True).stdout
    return [line.split()[-2] for line in listing.splitlines() if " TABLE DATA public " in line]


def test_table_restore_into_rows_that_exist_fails_and_changes_nothing(lab: Lab) -> None:
    """One transaction: audit_logs (emptied) loads first, scan_findings (still full) then fails on its
    primary key; neither table changes."""
    backup = lab.backup(compression=Compression.NONE)  # a plain archive file, so pg_restore --list reads it
    order = _data_order(lab.artifact(backup))
    assert order.index("audit_logs") < order.index("scan_findings")  # the first table would have loaded
    with psycopg.connect(lab.url) as conn:
        conn.execute("DELETE FROM audit_logs")
    before = content(lab.url, skip=(CATALOG, CANARY))

    with pytest.raises(RestoreFailed) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(tables=("audit_logs", "scan_findings"),
                                                           data_only=True, confirm=lab.name))

    assert caught.value.message == ('psql exited with status 3: ERROR:  duplicate key value violates unique '
                                    'constraint "scan_findings_pkey"; the restore was rolled back, nothing changed')
    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert count(lab.url, "audit_logs") == 0
    run = lab.only_restore_run()
    assert (run.status, run.error_code, run.phase, run.error) == ("failed", "restore_failed", "restoring",
                                                                  caught.value.message)
    safety = lab.safety_runs()
    assert [(r.kind, r.status) for r in safety] == [("full", "succeeded")]
    assert canary_nonces(lab.url) == [lab.manifest(safety[0]).canary_nonce]


def test_table_restore_refuses_a_plain_backup(lab: Lab) -> None:
    backup = lab.backup(BackupKind.PLAIN)
    with psycopg.connect(lab.url) as conn:
        conn.execute("DELETE FROM scan_findings")
    before = content(lab.url)

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(tables=("scan_findings",), data_only=True,
                                                           confirm=lab.name))

    assert caught.value.message == ("a plain-SQL backup restores whole; --table needs a backup of kind full or "
                                    "tables")
    assert content(lab.url) == before
    assert lab.safety_runs() == []
    assert lab.only_restore_run().error_code == "restore_refused"


def test_restore_closes_its_client_pipes(lab: Lab, make_database: DatabaseFactory) -> None:
    backup = lab.backup()
    target = make_database.track(make_database.new_name("into"))
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        run = lab.service.restore(str(backup.id), RestoreRequest(into=target))
        gc.collect()
    assert run.status == "succeeded"
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# --- killed half way ---------------------------------------------------------------------------------


def _wait_until_streaming(lab: Lab, proc: subprocess.Popen[str], timeout: float = 120) -> BackupRun:
    """The restore run once it has created its scratch database and fed pg_restore some bytes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the restore ended (status {proc.returncode}) before it could be killed: {err}")
        restores = lab.service.list_runs(kind="restore")
        if restores:
            run = restores[0]
            if (run.phase == "restoring" and run.bytes_done > 0
                    and database_exists(lab.pg, scratch_name("restore", run.id))):
                return run
        time.sleep(0.01)
    pytest.fail("the restore did not start streaming in time")


def test_restore_killed_half_way_leaves_the_live_database_and_sweep_cleans_up(
        pg: PostgresHandle, bulky_db: str, make_database: DatabaseFactory, make_service: ServiceFactory,
        tmp_path: Path) -> None:
    lab = open_lab(pg, bulky_db, tmp_path / "backups", make_service)
    try:
        backup = lab.backup()
        before = content(lab.url)
        env = cli_env(lab.url, lab.backup_dir, OPENWATCH_BACKUP_HEARTBEAT_SECONDS="0.05")
        proc = subprocess.Popen([str(CLI), "restore", str(backup.id), "--confirm", lab.name, "--no-safety-backup"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_until_streaming(lab, proc)
            restorers = children_named(proc.pid, "pg_restore")
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 60
        while not all(process_gone(pid) for pid in restorers) and time.monotonic() < deadline:
            time.sleep(0.05)  # pg_restore reads EOF on its stdin and exits
        assert all(process_gone(pid) for pid in restorers)

        run = lab.only_restore_run()
        scratch = scratch_name("restore", run.id)
        assert (run.status, run.phase) == ("running", "restoring")
        assert 0 < run.bytes_done < (backup.size_bytes or 0)  # killed half way, not before or after
        assert content(lab.url) == before
        assert databases_named_after(pg, lab.name) == [lab.name]
        assert scratch_databases_of(pg, [run.id]) == [scratch]

        # The CLI's sweep sees that the run's process is gone: abandoned, and its scratch database dropped.
        swept = run_cli("sweep", "--json", env=env)
        assert swept.returncode == 0, swept.stderr
        report = json.loads(swept.stdout)
        assert (report["abandoned"], report["databases"]) == ([str(run.id)], [scratch])
        assert lab.service.get_run(str(run.id)).status == "abandoned"
        assert lab.leftovers() == []
        assert content(lab.url) == before
    finally:
        track_leftovers(lab, make_database)


def test_sweep_leaves_scratch_databases_of_another_catalog_alone(
        lab: Lab, openwatch_template: str, make_database: DatabaseFactory, make_service: ServiceFactory,
        tmp_path: Path) -> None:
    other = open_lab(lab.pg, make_database("other", template=openwatch_template), tmp_path / "other",
                     make_service)
    busy = lab.service.recorder.create("restore", "cli")
    assert lab.service.recorder.claim(busy)  # a restore running against the first database
    scratch = make_database.track(scratch_name("restore", busy))
    with lab.pg.connect() as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')

    report = other.service.sweep()

    assert scratch not in report.databases
    assert database_exists(lab.pg, scratch)


# --- after the restore: migrations and health check ----------------------------------------------------

MARKER_SCRIPT = """\
import json, os, sys
import psycopg
with psycopg.connect(os.environ["OPENWATCH_DATABASE_URL"]) as conn:
    database, findings = conn.execute(
        "SELECT current_database(), (SELECT count(*) FROM scan_findings)").fetchone()
with open(sys.argv[1], "w") as out:
    json.dump({"cwd": os.getcwd(), "database": database, "scan_findings": findings}, out)
"""


def test_migrate_runs_in_the_backend_folder_against_the_restored_database(
        lab: Lab, make_service: ServiceFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = tmp_path / "backend"
    backend.mkdir()
    script = tmp_path / "migrate.py"
    script.write_text(MARKER_SCRIPT)
    command = f"{sys.executable} {script} marker.json"
    monkeypatch.setenv("OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR", str(backend))
    monkeypatch.setenv("OPENWATCH_BACKUP_MIGRATE_COMMAND", command)
    service = make_service(lab.url, lab.backup_dir)
    backup = lab.backup()
    findings_at_backup = count(lab.url, "scan_findings")
    modify(lab.url)
    assert count(lab.url, "scan_findings") != findings_at_backup

    run = service.restore(str(backup.id), RestoreRequest(confirm=lab.name, safety_backup=False), migrate=True)

    assert run.status == "succeeded"
    assert run.details["restore"]["post_restore"] == {"migrate": {"command": command, "status": 0}}
    marker = json.loads((backend / "marker.json").read_text())
    assert marker == {"cwd": str(backend), "database": lab.name, "scan_findings": findings_at_backup}


def test_failed_migration_fails_the_run_and_says_the_restore_happened(
        lab: Lab, make_service: ServiceFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = tmp_path / "backend"
    backend.mkdir()
    command = f"{sys.executable} -c \"import sys; print('unknown revision 036_future', file=sys.stderr); sys.exit(3)\""
    monkeypatch.setenv("OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR", str(backend))
    monkeypatch.setenv("OPENWATCH_BACKUP_MIGRATE_COMMAND", command)
    service = make_service(lab.url, lab.backup_dir)
    backup = lab.backup()
    at_backup = content(lab.url)
    modify(lab.url)

    with pytest.raises(RestoreFailed) as caught:
        service.restore(str(backup.id), RestoreRequest(confirm=lab.name, safety_backup=False), migrate=True)

    kept = [n for n in databases_named_after(lab.pg, lab.name) if n != lab.name]
    assert len(kept) == 1
    assert caught.value.message == (f"restored {lab.name} from {backup.id}; the old database is kept as {kept[0]}, "
                                    f"but the migration command `{command}` exited with status 3: unknown "
                                    "revision 036_future")
    assert content(lab.url) == at_backup  # the restore itself happened
    run = lab.only_restore_run()
    assert (run.status, run.error_code, run.phase, run.error) == ("failed", "restore_failed", "post_restore",
                                                                  caught.value.message)


@pytest.mark.parametrize("status", [200, 503])
def test_health_check_after_restore(lab: Lab, make_service: ServiceFactory, status: int) -> None:
    backup = lab.backup()
    at_backup = content(lab.url)
    with health_server(status) as server:
        service = make_service(lab.url, lab.backup_dir, health_url=server.url,
                               openwatch_backend_dir=lab.backup_dir.parent / "no-backend")
        request = RestoreRequest(confirm=lab.name, safety_backup=False)
        if status == 200:
            run = service.restore(str(backup.id), request, health_check=True)
        else:
            with pytest.raises(RestoreFailed) as caught:
                service.restore(str(backup.id), request, health_check=True)
            run = lab.only_restore_run()
        asked = list(server.paths)

    assert asked == ["/health"]
    assert content(lab.url) == at_backup
    kept = [n for n in databases_named_after(lab.pg, lab.name) if n != lab.name]
    assert len(kept) == 1
    if status == 200:
        assert run.status == "succeeded"
        assert run.details["restore"]["post_restore"] == {"health": {"url": server.url, "status": 200}}
    else:
        assert caught.value.message == (f"restored {lab.name} from {backup.id}; the old database is kept as "
                                        f"{kept[0]}, but the health check {server.url} answered HTTP 503")
        assert (run.status, run.error_code, run.error) == ("failed", "restore_failed", caught.value.message)
