"""The CLI refuses what it cannot honour, naming the option the operator typed (issue 9, failure 8), and a
PostgreSQL refusal met after connecting is one typed line (failure 6)."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from openwatch_backup.cli import app
from openwatch_backup.errors import DatabaseInUse
from openwatch_backup.foreign_errors import as_backup_error


@pytest.fixture
def env(backup_env: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    assert invoke("db", "upgrade").exit_code == 0
    return backup_env


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def run_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM backup_runs").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "tables", "--tables", "x;drop table hosts"],
     "--tables: 'x;drop table hosts' is not a table name (letters, digits, _ and one optional schema.) "
     "(got 'x;drop table hosts')"),
    (["--kind", "tables", "--tables", ","],
     "--tables: names no table; give at least one, e.g. hosts,scans,scan_findings (got ',')"),
    (["--kind", "tables", "--tables", ""],
     "--tables: names no table; give at least one, e.g. hosts,scans,scan_findings (got '')"),
    (["--kind", "full", "--tables", "hosts"],
     "--tables is only for --kind tables (this backup's kind is full); add --kind tables, or drop --tables"),
    (["--tables", "hosts"],  # OPENWATCH_BACKUP_KIND unset: full
     "--tables is only for --kind tables (this backup's kind is full); add --kind tables, or drop --tables"),
], ids=["not-a-name", "only-a-comma", "empty", "with-kind-full", "with-the-default-kind"])
def test_backup_refuses_bad_tables_before_recording_anything(env: Any, args: list[str], message: str) -> None:
    result = invoke("backup", *args)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {message}\n"
    assert "OPENWATCH_BACKUP_TABLES" not in result.stderr
    assert run_count(env.url) == 0


def test_tables_without_kind_follows_the_configured_kind(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWATCH_BACKUP_KIND", "tables")
    result = invoke("backup", "--tables", "hosts", "--json")
    assert result.exit_code == 0, result.output
    assert '"kind": "tables"' in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--status", "bogus"],
     "--status 'bogus' is not one of queued, running, succeeded, failed, cancelled, abandoned"),
    (["--kind", "fulll"],
     "--kind 'fulll' is not one of full, plain, schema, tables, config, volume, redis, verify, restore, drill, "
     "drill_volume, drill_host, prune, offsite, set, recover, adopt"),
])
def test_list_refuses_an_unknown_status_or_kind(env: Any, args: list[str], message: str) -> None:
    result = invoke("list", *args)

    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {message}\n")


def test_list_of_a_real_status_with_no_runs(env: Any) -> None:
    assert invoke("list").stdout.startswith("no runs yet")
    result = invoke("list", "--status", "abandoned", "--kind", "offsite")
    # Not "no runs yet": a catalog full of other runs gives the same answer to a filter.
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "no abandoned offsite runs: `openwatch-backup list` without --kind/--status shows " \
                            "every run\n"


def test_a_database_in_use_is_one_typed_line(make_database: Any, pg: Any) -> None:
    """What PostgreSQL really says when a rename meets a session (the swap's failure 6), translated."""
    url = make_database("inuse")
    name = url.rsplit("/", 1)[1]
    # The first connection holds a session on the database.
    with psycopg.connect(url), pg.connect() as admin, pytest.raises(psycopg.Error) as caught:
        admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_x"')
    ours = as_backup_error(caught.value, where="postgres@127.0.0.1:5432/postgres")

    assert isinstance(ours, DatabaseInUse)
    assert (ours.code, ours.exit_status) == ("database_in_use", 8)
    assert ours.message == (f'database "{name}" is being accessed by other users (There is 1 other session using '
                            "the database.): another session is using it; end that session (or wait for it), then "
                            "run the command again")
