"""The CLI's start-up stays lean (bench/bench_cli_start.py has the timings): what each command imports is
checked here, since wall times on a shared machine are too noisy for a test. A module imported at the top of a
command file again would fail these."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

PROBE = """
import json, sys
sys.argv = ["openwatch-backup", *json.loads(sys.argv[1])]
from openwatch_backup.cli import main
try:
    main()
except SystemExit:
    pass
heavy = ("sqlalchemy", "pydantic", "pydantic_settings", "psycopg", "rich", "celery", "kombu", "zstandard", "alembic",
         "fastapi", "importlib.metadata")
ours = [m for m in sys.modules if m.startswith("openwatch_backup.operations.")]
sys.stderr.write(json.dumps({"heavy": sorted(m for m in heavy if m in sys.modules), "operations": sorted(ours)}))
"""


def imported_by(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], env=env, capture_output=True, text=True,
                          timeout=120)
    return dict(json.loads(done.stderr.splitlines()[-1]))


@pytest.fixture
def env(backup_env: Any) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "OPENWATCH_"))}
    clean.update({"OPENWATCH_DATABASE_URL": backup_env.url, "OPENWATCH_BACKUP_DIR": str(backup_env.dir)})
    return clean


def test_help_imports_typer_and_nothing_heavy() -> None:
    found = imported_by(["--help"], dict(os.environ))
    assert found == {"heavy": [], "operations": []}


def catalog_with_a_run(env: dict[str, str]) -> None:
    """The plugin's tables and one succeeded backup run with a size (the table shows it through human_bytes)."""
    import psycopg

    from openwatch_backup.service import BackupService
    from openwatch_backup.settings import load_settings

    with BackupService(load_settings(database_url=env["OPENWATCH_DATABASE_URL"])) as service:
        service.db_upgrade()
    with psycopg.connect(env["OPENWATCH_DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO backup_runs (kind, status, trigger, size_bytes, pinned, details) "
                     "VALUES ('full', 'succeeded', 'cli', 123456789, true, '{\"artifact\": \"postgres/x\"}')")


def test_list_imports_psycopg_and_no_sqlalchemy_pydantic_or_operation(env: dict[str, str]) -> None:
    """`list` reads the catalog with psycopg alone (catalog/fast_list.py), its settings and options without
    pydantic (settings_env.py, cli/lean_params.py): SQLAlchemy's ORM and pydantic cost more than its 0.3 s."""
    catalog_with_a_run(env)  # OPENWATCH_BACKUP_DIR is set too (env): a plain path keeps list on the fast path

    as_json = imported_by(["list", "--json"], env)
    table = imported_by(["list", "--limit", "5", "--status", "succeeded"], env)

    # importlib.metadata: psycopg_binary reads its own version with it (psycopg_binary/version.py).
    assert as_json == {"heavy": ["importlib.metadata", "psycopg"], "operations": []}
    assert table == {"heavy": ["importlib.metadata", "psycopg", "rich"], "operations": []}  # rich draws the table;
    # a size shown needs no operation (core/units.py)


def test_list_with_a_setting_it_cannot_vouch_for_loads_the_full_settings(env: dict[str, str]) -> None:
    """The other side of the fast path: a plugin setting settings_env.py does not know is judged by
    load_settings() (pydantic), so its error, if any, is worded in one place; the catalog is still read without
    SQLAlchemy."""
    catalog_with_a_run(env)

    found = imported_by(["list", "--json"], {**env, "OPENWATCH_BACKUP_ZSTD_LEVEL": "5"})

    assert [m for m in found["heavy"] if m != "importlib.metadata"] == ["psycopg", "pydantic", "pydantic_settings"]
    assert found["operations"] == []
