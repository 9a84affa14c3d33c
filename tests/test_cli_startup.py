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


def test_list_imports_what_reading_the_catalog_needs_and_no_operation(env: dict[str, str]) -> None:
    from openwatch_backup.service import BackupService
    from openwatch_backup.settings import load_settings

    with BackupService(load_settings(database_url=env["OPENWATCH_DATABASE_URL"])) as service:
        service.db_upgrade()  # the plugin's tables, so that list reads an empty catalog

    found = imported_by(["list", "--json"], env)

    # Settings (pydantic), the catalog (SQLAlchemy, psycopg); no celery, zstd, alembic or FastAPI, and no
    # operation beyond the few the service's own parts use (heartbeat, presence, sweep, context...).
    assert [m for m in found["heavy"] if m != "importlib.metadata"] == [  # pydantic looks up its plugins with it
        "psycopg", "pydantic", "pydantic_settings", "sqlalchemy"]
    for operation in ("backup", "verify", "restore", "drill", "checklist", "prune", "rebuild", "preflight"):
        assert f"openwatch_backup.operations.{operation}" not in found["operations"]
