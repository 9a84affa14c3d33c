"""The README stays true: its settings table is the one the code generates, its commands exist."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

from openwatch_backup.cli import app
from openwatch_backup.settings import settings_table_markdown
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    USER_IDS,
    AuditLog,
    Catalog,
    bearer,
    catalog_fixture,
    client_for,
    make_api_key,
    make_token,
    openwatch_modules,
)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_settings_table_matches_the_code() -> None:
    match = re.search(r"<!-- settings-table:[^>]*-->\n(.*?)\n<!-- /settings-table -->", README, re.DOTALL)
    assert match, "README lost its settings-table markers"
    assert match.group(1) == settings_table_markdown()


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[0] for line in first_block] == ["scripts/demo", "scripts/test"]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_every_cli_command_in_the_readme_exists() -> None:
    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    used = set(re.findall(r"^openwatch-backup (\w+)", README, re.MULTILINE))
    assert used
    assert used <= names


# --- "Install into OpenWatch": the lines work when pasted into OpenWatch ------------------------------------
INSTALL = README.split("## Install into OpenWatch", 1)[1].split("\n## ", 1)[0]


def _python_blocks() -> list[str]:
    import textwrap

    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", INSTALL, re.DOTALL)]


def _block(marker: str) -> str:
    [block] = [b for b in _python_blocks() if marker in b]
    return block


def test_install_lines_pass_openwatchs_flake8() -> None:
    """They go mid-file into OpenWatch's celery_app.py, main.py and routes/system/__init__.py: every import
    carries `# noqa: E402` (as OpenWatch's own such imports do), and lines keep its 120 columns."""
    blocks = _python_blocks()
    assert len(blocks) >= 4
    for block in blocks:
        for line in block.splitlines():
            if line.startswith(("from ", "import ")):
                assert line.endswith("# noqa: E402"), line
            assert len(line) <= 120, line


def test_the_task_list_is_every_registered_task() -> None:
    from celery import Celery

    from openwatch_backup.tasks import TASK_NAMES, install

    listed = re.search(r"`install` registers\s+the tasks \((.*?)\)", INSTALL, re.DOTALL)
    assert listed
    names = ["openwatch_backup." + n.strip("`.") if not n.startswith("`openwatch_backup.") else n.strip("`")
             for n in re.findall(r"`[^`]+`", listed.group(1))]
    app = Celery("openwatch")
    install(app)
    import openwatch_backup.tasks  # noqa: F401 - its shared tasks bind to every app

    registered = {name for name in app.tasks if name.startswith("openwatch_backup.")}
    assert sorted(names) == sorted(TASK_NAMES) == sorted(registered)
    assert "openwatch_backup.restore" in names
    app.close()


def test_the_celery_line() -> None:
    from celery import Celery

    from openwatch_backup.tasks import TASK_NAMES

    celery_app = Celery("openwatch")
    exec(_block("install_backup_tasks"), {"celery_app": celery_app})
    assert {"openwatch-backup-dispatch", "openwatch-backup-sweep"} <= set(celery_app.conf.beat_schedule)
    assert all(celery_app.conf.task_routes[name] == {"queue": "maintenance"} for name in TASK_NAMES)
    celery_app.close()


def test_the_metrics_line_registers_on_openwatchs_registry(monkeypatch) -> None:
    import types

    from prometheus_client import REGISTRY, CollectorRegistry

    prometheus = types.ModuleType("app.services.infrastructure.prometheus")
    prometheus.registry = CollectorRegistry()  # type: ignore[attr-defined]
    for name in ("app", "app.services", "app.services.infrastructure"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, prometheus.__name__, prometheus)
    exec(_block("register_backup_metrics"), {})
    collectors = list(prometheus.registry._collector_to_names)  # type: ignore[attr-defined]
    assert [type(c).__name__ for c in collectors] == ["CatalogCollector"]
    assert not [c for c in REGISTRY._collector_to_names if type(c).__name__ == "CatalogCollector"]


def test_the_csp_line_keeps_the_page_policy() -> None:
    from fastapi import FastAPI

    from openwatch_backup.api.csp import KeepPageCSP

    app = FastAPI()
    exec(_block("KeepPageCSP"), {"app": app})
    assert [m.cls for m in app.user_middleware] == [KeepPageCSP]


def test_the_api_lines_in_openwatch(monkeypatch, catalog: Catalog) -> None:
    """The README's router lines, run with OpenWatch's module names (stand-ins with OpenWatch's signatures):
    super_admin and an API key holding system:maintenance get in and leave real audit_logs rows; an auditor,
    a key without the permission and a role UserRole does not know get 403."""
    import json

    import psycopg
    from fastapi import APIRouter, FastAPI

    audit = AuditLog(catalog.url)
    for name, module in openwatch_modules(audit).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", catalog.url)
    monkeypatch.setenv("OPENWATCH_BACKUP_DIR", str(catalog.backup_dir))
    router = APIRouter()  # OpenWatch's routes/system/__init__.py
    exec(_block("OpenWatchAuth("), {"router": router})
    app = FastAPI()
    app.include_router(router, prefix="/api")
    key, key_id = make_api_key(["system:maintenance"])
    weak_key, _ = make_api_key({"system": ["logs"]})
    with client_for(app) as client:
        settings = f"{PREFIX}/settings"
        assert client.get(f"{PREFIX}/status", headers=bearer("super_admin")).status_code == 200
        assert client.put(settings, headers=bearer("super_admin"), json={"allow_restore": True}).status_code == 200
        assert client.put(settings, headers=bearer(key), json={"allow_restore": False}).status_code == 200
        for headers in (bearer("auditor"), bearer(weak_key), bearer(make_token("api_key"))):
            assert client.put(settings, headers=headers, json={"allow_restore": True}).status_code == 403
        assert client.get(f"{PREFIX}/status", headers=bearer(key)).json()["audit"]["last_error"] is None
    with psycopg.connect(catalog.url) as conn:
        rows = conn.execute("SELECT action, resource_type, user_id, details FROM audit_logs "
                            "WHERE resource_type = 'backup' ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("BACKUP_SETTINGS_CHANGED", "backup", USER_IDS["super_admin"]),
                                                  ("BACKUP_SETTINGS_CHANGED", "backup", None)]
    assert json.loads(rows[1][3]) == {"api.allow_restore": False, "api_key_id": key_id}
    assert catalog.service.settings_store.get("api.allow_restore") is False
