"""The operator's CLI against a real PostgreSQL: JSON output, exit statuses, and catalog rebuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from openwatch_backup import devstack
from openwatch_backup.cli import app

CLI = Path(sys.executable).with_name("openwatch-backup")
FRESH_ID = "00000000-0000-4000-8000-000000000000"


class Env:
    def __init__(self, url: str, backup_dir: Path) -> None:
        self.url, self.dir = url, backup_dir

    @property
    def postgres_dir(self) -> Path:
        return self.dir / "postgres"


@pytest.fixture
def env(backup_env: Any, monkeypatch: pytest.MonkeyPatch) -> Env:
    """backup_env (a fresh sample database, an empty backup folder) with the plugin's tables and no other
    OPENWATCH_* or PG* variable from the outer environment."""
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    result = invoke("db", "upgrade")
    assert (result.exit_code, result.stdout) == (0, "plugin schema at revision owb_0003\n")
    return Env(backup_env.url, backup_env.dir)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def run_json(*args: str, exit_code: int = 0) -> Any:
    result = invoke(*args)
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def backup(*args: str) -> dict[str, Any]:
    run: dict[str, Any] = run_json("backup", "--json", *args)
    assert run["status"] == "succeeded"
    return run


def test_backup_json_as_a_real_process(env: Env) -> None:
    done = subprocess.run([str(CLI), "backup", "--json"], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())

    assert (done.returncode, done.stderr) == (0, "")
    run = json.loads(done.stdout)
    artifact = Path(run["artifact_location"])
    assert (run["status"], run["kind"], run["trigger"], run["error_code"], run["error"]) == (
        "succeeded", "full", "cli", None, None)
    assert artifact.parent == env.postgres_dir
    assert sorted(p.name for p in env.postgres_dir.iterdir()) == [artifact.name, artifact.name + ".manifest.json"]
    assert run["size_bytes"] == artifact.stat().st_size
    assert run["details"]["peak_rss_bytes"] > 0


def test_list_is_newest_first(env: Env) -> None:
    first, second = backup(), backup("--kind", "schema")

    runs = run_json("list", "--json")

    assert [r["id"] for r in runs] == [second["id"], first["id"]]
    assert [r["kind"] for r in runs] == ["schema", "full"]


def test_show_by_prefix_includes_the_manifest(env: Env) -> None:
    run = backup()

    shown = run_json("show", run["id"][:8], "--json")

    manifest_file = Path(run["artifact_location"] + ".manifest.json")
    assert shown["id"] == run["id"]
    assert shown["manifest"] == json.loads(manifest_file.read_bytes())
    assert (shown["manifest"]["run_id"], shown["manifest"]["sha256"], shown["manifest"]["size_bytes"]) == (
        run["id"], run["sha256"], run["size_bytes"])


def test_show_of_something_that_is_not_an_id(env: Env) -> None:
    result = invoke("show", "zzz")

    assert result.exit_code == 6
    assert result.stderr == "error: 'zzz' is not a run id; use an id (or its first characters) from " \
                            "`openwatch-backup list`\n"


def test_show_of_an_unknown_id(env: Env) -> None:
    result = invoke("show", FRESH_ID)

    assert result.exit_code == 6
    assert result.stderr == f"error: no run '{FRESH_ID}' in the catalog; `openwatch-backup list` shows the runs\n"


def test_tables_backup_of_a_missing_table_fails_with_5(env: Env) -> None:
    run = run_json("backup", "--kind", "tables", "--tables", "nosuchtable", "--json", exit_code=5)

    assert (run["status"], run["kind"], run["error_code"], run["artifact_location"]) == (
        "failed", "tables", "dump_failed", None)
    database = env.url.rsplit("/", 1)[1]
    assert run["error"] == (f"no table nosuchtable in database {database}; the tables kind backs up tables named "
                            "by --tables or OPENWATCH_BACKUP_TABLES, and each must exist")
    assert sorted(p.name for p in env.postgres_dir.glob("*")) == []  # refused before any file was opened


def test_backup_without_a_database_url_exits_2(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENWATCH_DATABASE_URL")

    done = subprocess.run([str(CLI), "backup"], capture_output=True, text=True, timeout=60, env=os.environ.copy())

    assert done.returncode == 2
    assert done.stderr.startswith("error: OPENWATCH_DATABASE_URL is not set")


def test_backup_against_a_closed_port_exits_3(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    port = devstack.pick_free_port()
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", f"postgresql://postgres:Cl0sed-pw@127.0.0.1:{port}/nowhere")

    result = invoke("backup", "--json")

    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: cannot reach the catalog database postgres@127.0.0.1:{port}/nowhere (")
    assert result.stderr.endswith("); check OPENWATCH_DATABASE_URL and that PostgreSQL is running\n")
    assert "Cl0sed-pw" not in result.output


def catalog_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id::text, kind, status, artifact_location, size_bytes, sha256 FROM backup_runs "
                            "ORDER BY id").fetchall()


class Lost:
    """Three successful backups, one failed; the third's artifact deleted, then every catalog row deleted."""

    def __init__(self, env: Env) -> None:
        self.kept_ids = sorted([backup()["id"], backup("--kind", "plain", "--compression", "pg")["id"]])
        lost = Path(backup("--kind", "schema")["artifact_location"])
        run_json("backup", "--kind", "tables", "--tables", "nosuchtable", "--json", exit_code=5)
        lost.unlink()
        self.rows = [row for row in catalog_rows(env.url) if row[0] in self.kept_ids]
        self.skipped = {f"postgres/{lost.name}.manifest.json": f"its artifact {lost.name} is missing"}
        with psycopg.connect(env.url) as conn:
            conn.execute("DELETE FROM backup_runs")


def test_catalog_rebuild_recreates_the_deleted_successful_runs(env: Env) -> None:
    lost = Lost(env)

    first = run_json("catalog", "rebuild", "--json", exit_code=7)  # 7: a manifest was skipped
    assert catalog_rows(env.url) == lost.rows
    second = run_json("catalog", "rebuild", "--json", exit_code=7)

    assert catalog_rows(env.url) == lost.rows
    for report in (first, second):
        assert sorted(report["inserted"] + report["already_present"]) == lost.kept_ids
        assert report["skipped"] == lost.skipped


def test_catalog_rebuild_reports_inserted_then_already_present(env: Env) -> None:
    lost = Lost(env)

    first = run_json("catalog", "rebuild", "--json", exit_code=7)
    second = run_json("catalog", "rebuild", "--json", exit_code=7)

    assert (sorted(first["inserted"]), first["already_present"]) == (lost.kept_ids, [])
    assert (second["inserted"], sorted(second["already_present"])) == ([], lost.kept_ids)
