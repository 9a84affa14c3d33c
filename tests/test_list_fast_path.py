"""`list` reads the catalog with psycopg alone (catalog/fast_list.py), the environment without pydantic
(settings_env.py) and its options without pydantic (cli/lean_params.py), for a 0.3 s start-up. Held here to the
ORM path it replaced: the same JSON and table for the same runs and filters, the same one-line errors and exit
statuses, typer's own usage errors, and a fall-back to load_settings() for anything it cannot vouch for."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import psycopg
import pytest
import typer
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from openwatch_backup.errors import BackupError, ConfigError

CLI = Path(sys.executable).with_name("openwatch-backup")
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def clean_env(url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "OPENWATCH_")) and k.lower() not in (
        "database_url", "database_ssl_mode")}
    if url is not None:
        env["OPENWATCH_DATABASE_URL"] = url
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def catalog(make_database: Any) -> str:
    """A database with the plugin's tables and eight runs of every shape run_to_dict shows."""
    from openwatch_backup.service import BackupService
    from openwatch_backup.settings import load_settings

    url = make_database("fastlist")
    with BackupService(load_settings(database_url=url)) as service:
        service.db_upgrade()
    full, verify_id = uuid.uuid4(), uuid.uuid4()
    rows = [  # id, kind, status, trigger, requested_by, parent_id, created, started, finished, size, details,
        # error_code, error, pinned, pruned_at
        (full, "full", "succeeded", "cli", "alice", None, T0, T0 + timedelta(seconds=1),
         T0 + timedelta(seconds=73, microseconds=123456), 104857600, {"artifact": "postgres/a.dump.zst",
                                                                       "log": ["02:00:01 dumping"]}, None, None,
         True, None),
        (verify_id, "verify", "failed", "schedule", None, full, T0 + timedelta(minutes=5), T0 + timedelta(minutes=5),
         T0 + timedelta(minutes=6), None, {}, "artifact_unreadable", "a stored stream does not decompress", False,
         None),
        (uuid.uuid4(), "plain", "succeeded", "api", "bob", None, T0 + timedelta(days=1), T0 + timedelta(days=1),
         T0 + timedelta(days=1, seconds=5), 2048, {"artifact": "postgres/b.sql.gz"}, None, None, False,
         T0 + timedelta(days=40)),
        (uuid.uuid4(), "full", "failed", "schedule", None, None, T0 + timedelta(days=2), T0 + timedelta(days=2),
         T0 + timedelta(days=2, seconds=2), None, {"nested": {"a": [1, 2.5, None, "é"]}}, "dump_failed",
         "pg_dump exited 1: out of memory", False, None),
        (uuid.uuid4(), "tables", "running", "cli", "carol", None, T0 + timedelta(days=3), T0 + timedelta(days=3),
         None, None, {}, None, None, False, None),
        (uuid.uuid4(), "prune", "queued", "api", None, None, T0 + timedelta(days=4), None, None, None, {}, None, None,
         False, None),
        (uuid.uuid4(), "schema", "abandoned", "cli", None, None, T0 + timedelta(days=4), T0 + timedelta(days=4),
         T0 + timedelta(days=4, hours=1), 500, {}, "abandoned", "the worker died", True, None),
        (uuid.uuid4(), "drill", "cancelled", "cli", None, None, T0 + timedelta(days=5), T0 + timedelta(days=5),
         T0 + timedelta(days=5, seconds=9), None, {"artifact": None}, "cancelled", "cancelled by signal", False,
         None),
    ]
    with psycopg.connect(url) as conn:
        for row in rows:
            conn.execute(
                "INSERT INTO backup_runs (id, kind, status, trigger, requested_by, parent_id, created_at, started_at, "
                "finished_at, heartbeat_at, bytes_done, artifact_location, size_bytes, sha256, details, error_code, "
                "error, pinned, pruned_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s)",
                (*row[:9], row[8] or row[7], row[9] or 0, f"/backups/{row[0]}" if row[9] else None, row[9],
                 "ab" * 32 if row[9] else None, Jsonb(row[10]), *row[11:]))
    return url


def orm_list(url: str, **filters: Any) -> list[Any]:
    from openwatch_backup.service import BackupService
    from openwatch_backup.settings import load_settings

    with BackupService(load_settings(database_url=url)) as service:
        return service.list_runs(**filters)


def test_fast_rows_have_the_models_columns() -> None:
    from openwatch_backup.catalog.fast_list import COLUMNS
    from openwatch_backup.catalog.models import BackupRun

    assert tuple(column.name for column in BackupRun.__table__.columns) == COLUMNS


@pytest.mark.parametrize(("args", "filters"), [
    ([], {}),
    (["--limit", "3"], {"limit": 3}),
    (["--status", "succeeded"], {"status": "succeeded"}),
    (["--kind", "full"], {"kind": "full"}),
    (["--kind", "full", "--status", "failed"], {"kind": "full", "status": "failed"}),
    (["--kind", "drill", "--status", "succeeded"], {"kind": "drill", "status": "succeeded"}),
])
def test_list_json_equals_the_orm_serialisation(catalog: str, args: list[str], filters: dict[str, Any]) -> None:
    from openwatch_backup.catalog.serialize import run_to_dict

    done = cli("list", "--json", *args, env=clean_env(catalog))

    expected = json.loads(json.dumps([run_to_dict(r, []) for r in orm_list(catalog, **filters)], default=str))
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == expected
    if not filters:  # the fixture's every shape is in it: pinned, pruned, a parent, a failure, nested details
        assert len(expected) == 8
        assert {r["pinned"] for r in expected} == {True, False}
        assert any(r["pruned_at"] for r in expected)
        assert any(r["parent_id"] for r in expected)


def test_list_table_equals_the_orm_rows_table(catalog: str) -> None:
    from rich.console import Console

    from openwatch_backup.cli.common import runs_table

    done = cli("list", "--limit", "6", env=clean_env(catalog))

    console = Console(file=io.StringIO(), width=160)  # what the CLI prints to a pipe
    console.print(runs_table(orm_list(catalog, limit=6), {}))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == console.file.getvalue()  # type: ignore[attr-defined]
    assert "pinned: postgres/a.dump.zst" not in done.stdout  # limit 6 leaves out the oldest two
    assert "pruned 2026-04-10: postgres/b.sql.gz" in done.stdout
    assert "100.0 MiB" not in done.stdout


def orm_error(url: str, **settings: Any) -> BackupError:
    from openwatch_backup.foreign_errors import as_backup_error

    try:
        orm_list(url, **settings)
    except Exception as exc:  # the ORM path's own translation is what is compared
        return as_backup_error(exc)
    raise AssertionError("the ORM path did not fail")


def test_a_missing_catalog_table_is_the_same_line_and_status(make_database: Any) -> None:
    url = make_database("nocatalog")

    done = cli("list", env=clean_env(url))

    expected = orm_error(url)
    assert (done.returncode, done.stdout, done.stderr) == (3, "", f"error: {expected.message}\n")
    assert expected.message.startswith("the backup_runs table does not exist in postgres@")


def test_an_unreachable_database_is_the_same_line_and_status() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://postgres:Cl0sed-pw@127.0.0.1:{port}/nowhere"

    done = cli("list", "--json", env=clean_env(url))

    expected = orm_error(url)
    assert (done.returncode, done.stdout, done.stderr) == (3, "", f"error: {expected.message}\n")
    assert done.stderr.startswith(f"error: cannot reach the catalog database postgres@127.0.0.1:{port}/nowhere (")
    assert "Cl0sed-pw" not in done.stderr


@pytest.mark.parametrize(("url", "extra"), [
    ("mysql://u:pw@h/db", {}),  # a bad URL: settings.py words it
    ("postgresql://u@127.0.0.1/db?sslmode=sometimes", {}),
    (None, {}),  # no URL at all
    ("postgresql://postgres@127.0.0.1:5432/x", {"OPENWATCH_DATABASE_SSL_MODE": "bogus"}),
    ("postgresql://postgres@127.0.0.1:5432/x", {"OPENWATCH_BACKUP_ZSTD_LEVEL": "99"}),  # not list's, still refused
    ("postgresql://postgres@127.0.0.1:5432/x", {"openwatch_backup_heartbeat_seconds": "-1"}),  # any case
])
def test_a_bad_setting_is_load_settings_own_line(url: str | None, extra: dict[str, str]) -> None:
    from openwatch_backup.settings import load_settings

    env = clean_env(url, **extra)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with pytest.raises(ConfigError) as caught:
            load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)

    done = cli("list", env=env)

    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {caught.value.message}\n")


def test_the_fast_environment_reads_what_load_settings_reads() -> None:
    from openwatch_backup.settings import load_settings
    from openwatch_backup.settings_env import catalog_env

    cases = [
        {"OPENWATCH_DATABASE_URL": "postgresql://u:p%40ss@db.example:6432/ow?connect_timeout=3"},
        {"DATABASE_URL": "postgres://u@h/d"},  # pydantic-settings' second alias
        {"openwatch_database_url": "postgresql://u@h/d", "DATABASE_URL": "postgresql://other@h/d",
         "database_ssl_mode": "require"},
        {"OPENWATCH_DATABASE_URL": "postgresql://u@h/d", "OPENWATCH_DATABASE_SSL_MODE": "",
         "OPENWATCH_BACKUP_DIR": "", "OPENWATCH_BACKUP_QUEUE": "q", "OPENWATCH_BACKUP_HEALTH_URL": "not a url",
         "OPENWATCH_BACKUP_MIGRATE_COMMAND": "x", "OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR": "\x01"},
    ]
    for environ in cases:
        found = catalog_env(environ)
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environ)
        try:
            settings = load_settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert found is not None, environ
        assert found.target == settings.target
        assert found.secrets == (settings.target.password, settings.database_url, settings.webhook_url)
    # What it cannot vouch for goes to load_settings(): any other plugin variable, a bad URL or SSL mode.
    for environ in ({"OPENWATCH_DATABASE_URL": "postgresql://u@h/d", "OPENWATCH_BACKUP_WEBHOOK_URL": "https://x"},
                    {"OPENWATCH_DATABASE_URL": "postgresql://u@h/d", "OPENWATCH_BACKUP_DATABASE_URL": "x"},
                    {"OPENWATCH_DATABASE_URL": "postgresql://u@h/d", "OPENWATCH_DATABASE_SSL_MODE": "no"},
                    {"OPENWATCH_DATABASE_URL": "postgresql://u@h"}, {}):
        assert catalog_env(environ) is None, environ


def test_the_always_valid_settings_are_plain_strings_or_paths_without_a_validator() -> None:
    from openwatch_backup.settings import Settings
    from openwatch_backup.settings_env import ALWAYS_VALID

    validated = {name for decorator in Settings.__pydantic_decorators__.field_validators.values()
                 for name in decorator.info.fields}
    for name in ALWAYS_VALID:
        field = Settings.model_fields[name]
        assert field.annotation in (str, Path), name
        assert not field.metadata, name
        assert name not in validated, name


def typer_own(args: list[str]) -> tuple[int, str]:
    """The same options on a plain typer command: typer's (pydantic) coercion and its messages."""
    plain = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)  # as cli/common.py makes `app`

    @plain.command()
    def list_runs(limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
                  kind: Annotated[str | None, typer.Option()] = None,
                  status: Annotated[str | None, typer.Option()] = None,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        print(repr((limit, kind, status, as_json)))

    @plain.command()
    def other() -> None:  # two commands, so that `list-runs` is a subcommand as `list` is
        pass

    result = CliRunner().invoke(plain, ["list-runs", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "10001"], ["--limit", "abc"], ["--limit", " 7"],
                                  ["--limit", "+7"], ["--limit", "007"], ["--limit", "1_0"], ["--limit", "٣"],
                                  ["--limit", "-1"], ["--limit"], ["--kind"], ["--json", "--limit", "2"]])
def test_list_options_read_as_typers_own(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The lean options pass plain values as typer would coerce them, and leave every other value to typer."""
    from openwatch_backup.cli import app

    seen: list[tuple[Any, ...]] = []

    def record(target: Any, *, limit: int, kind: str | None, status: str | None) -> list[Any]:
        seen.append((limit, kind, status))
        return []

    monkeypatch.setenv("OPENWATCH_DATABASE_URL", "postgresql://u@127.0.0.1:1/d")
    monkeypatch.setattr("openwatch_backup.catalog.fast_list.list_runs", record)
    ours = CliRunner().invoke(app, ["list", *args])
    code, output = typer_own(args)

    assert ours.exit_code == code
    if code == 0:
        assert len(seen) == 1
        assert repr((*seen[0], "--json" in args)) + "\n" == output
    else:
        assert ours.output.replace("openwatch-backup list", "X").replace("root list", "X") == \
            output.replace("root list-runs", "X"), (ours.output, output)
