"""The plugin's own migrations on a real PostgreSQL: its tables and version table, OpenWatch's left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
PLUGIN_TABLES = {"backup_runs", "backup_canary", "backup_settings", "backup_copies"}
VERSION_TABLE = "openwatch_backup_alembic_version"


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def versions(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(f"SELECT version_num FROM {table} ORDER BY 1")]


HEAD = "owb_0003"


def service(url: str, tmp_path: Path) -> BackupService:
    return BackupService(load_settings(database_url=url, dir=tmp_path))


@pytest.fixture
def url(make_database: Callable[..., str]) -> str:
    return make_database("mig")


def test_upgrade_creates_the_tables_and_its_own_version_table(url: str, tmp_path: Path) -> None:
    with service(url, tmp_path) as svc:
        assert svc.db_upgrade() == HEAD

    assert tables(url) == {*PLUGIN_TABLES, VERSION_TABLE}
    assert versions(url, VERSION_TABLE) == [HEAD]


def test_openwatch_alembic_version_is_untouched(url: str, tmp_path: Path) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('035_merge_alerts')")

    with service(url, tmp_path) as svc:
        svc.db_upgrade()
        assert versions(url, "alembic_version") == ["035_merge_alerts"]
        assert svc.db_downgrade() is None

    assert tables(url) == {"alembic_version", VERSION_TABLE}
    assert versions(url, "alembic_version") == ["035_merge_alerts"]
    assert versions(url, VERSION_TABLE) == []


def test_upgrade_twice_is_a_no_op(url: str, tmp_path: Path) -> None:
    with service(url, tmp_path) as svc:
        svc.db_upgrade()
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO backup_runs (kind, status, trigger) VALUES ('full', 'succeeded', 'cli')")

        assert svc.db_upgrade() == HEAD

    assert versions(url, VERSION_TABLE) == [HEAD]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT kind, status, trigger FROM backup_runs").fetchall() == [
            ("full", "succeeded", "cli")]


def test_upgrade_over_a_hand_made_backup_runs_keeps_it(url: str, tmp_path: Path) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE backup_runs (id uuid PRIMARY KEY, kind text NOT NULL)")
        conn.execute("INSERT INTO backup_runs VALUES ('00000000-0000-0000-0000-000000000001', 'full')")

    with service(url, tmp_path) as svc:
        assert svc.db_upgrade() == HEAD

    assert tables(url) == {*PLUGIN_TABLES, VERSION_TABLE}
    with psycopg.connect(url) as conn:
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'backup_runs' ORDER BY 1")]
        assert columns == ["id", "kind", "pinned", "pruned_at"]  # 0001 leaves the table alone; 0002 adds
        assert conn.execute("SELECT count(*) FROM backup_runs").fetchone() == (1,)


def test_downgrade_removes_both_tables(url: str, tmp_path: Path) -> None:
    with service(url, tmp_path) as svc:
        svc.db_upgrade()
        assert svc.db_downgrade() is None

    assert tables(url) == {VERSION_TABLE}


@pytest.mark.parametrize(("column", "constraint"), [("status", "ck_backup_runs_status"),
                                                    ("trigger", "ck_backup_runs_trigger")])
def test_check_constraints_reject_unknown_values(url: str, tmp_path: Path, column: str, constraint: str) -> None:
    with service(url, tmp_path) as svc:
        svc.db_upgrade()
    values = {"kind": "full", "status": "queued", "trigger": "cli", column: "bogus"}

    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute("INSERT INTO backup_runs (kind, status, trigger) VALUES (%(kind)s, %(status)s, %(trigger)s)",
                     values)

    assert info.value.diag.constraint_name == constraint


@pytest.mark.slow
def test_installed_wheel_migrates_up_and_down(url: str, tmp_path: Path) -> None:
    wheels = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels)], cwd=REPO, check=True,
                   capture_output=True, timeout=300)
    (wheel,) = wheels.glob("openwatch_backup-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"openwatch_backup/migrations/env.py", "openwatch_backup/migrations/script.py.mako",
            "openwatch_backup/migrations/versions/0001_backup_runs.py"} <= names
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "openwatch_backup").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert sorted(modules - names) == []

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PG", "PYTHON"))}
    env["OPENWATCH_DATABASE_URL"] = url

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "openwatch-backup"), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    up = cli("db", "upgrade")
    assert (up.returncode, up.stdout.strip(), up.stderr) == (0, f"plugin schema at revision {HEAD}", "")
    assert tables(url) == {*PLUGIN_TABLES, VERSION_TABLE}

    down = cli("db", "downgrade")
    assert (down.returncode, down.stdout.strip(), down.stderr) == (0, "plugin schema at revision base (no tables)", "")
    assert tables(url) == {VERSION_TABLE}


def test_upgrade_from_the_first_revision_keeps_runs_and_adds_pins(url: str, tmp_path: Path) -> None:
    with service(url, tmp_path) as svc:
        assert svc.db_upgrade("owb_0001") == "owb_0001"
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO backup_runs (kind, status, trigger) VALUES ('full', 'succeeded', 'cli')")
        assert svc.db_upgrade("owb_0002") == "owb_0002"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT kind, pinned FROM backup_runs").fetchall() == [("full", False)]
        assert svc.db_downgrade("owb_0001") == "owb_0001"
    assert tables(url) == {"backup_runs", "backup_canary", VERSION_TABLE}


def test_upgrade_to_copies_records_the_local_copy_of_every_backup(url: str, tmp_path: Path) -> None:
    """0003 gives the backups made before it their local copy: verified, pending or deleted as the runs say."""
    with service(url, tmp_path) as svc:
        assert svc.db_upgrade("owb_0002") == "owb_0002"
        with psycopg.connect(url) as conn:
            def backup(name: str, pruned: bool) -> str:
                row = conn.execute(
                    "INSERT INTO backup_runs (kind, status, trigger, artifact_location, size_bytes, sha256, details, "
                    "finished_at, pruned_at) VALUES ('full', 'succeeded', 'cli', %s, 10, %s, %s, now(), "
                    "CASE WHEN %s THEN now() END) RETURNING id",
                    (f"/b/postgres/{name}", "ab" * 32, json.dumps({"artifact": name}), pruned)).fetchone()
                assert row is not None
                return str(row[0])
            verified, pending, pruned = backup("v.dump", False), backup("p.dump", False), backup("x.dump", True)
            conn.execute("INSERT INTO backup_runs (kind, status, trigger, parent_id, finished_at) "
                         "VALUES ('verify', 'succeeded', 'cli', %s, now())", (verified,))
            conn.execute("INSERT INTO backup_runs (kind, status, trigger, parent_id, finished_at) "
                         "VALUES ('verify', 'failed', 'cli', %s, now())", (pending,))
            conn.execute("INSERT INTO backup_runs (kind, status, trigger) VALUES ('full', 'failed', 'cli')")
        assert svc.db_upgrade() == HEAD
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT run_id::text, storage, state, key, location, size_bytes, verified_at IS NOT NULL, "
                            "deleted_at IS NOT NULL FROM backup_copies ORDER BY key").fetchall()
    assert rows == [
        (pending, "local", "pending", "postgres/p.dump", "/b/postgres/p.dump", 10, False, False),
        (verified, "local", "verified", "postgres/v.dump", "/b/postgres/v.dump", 10, True, False),
        (pruned, "local", "deleted", "postgres/x.dump", "/b/postgres/x.dump", 10, False, True),
    ]
