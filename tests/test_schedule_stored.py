"""A schedule that celery's crontab refuses, wherever it comes from (issue 9, failure 7, follow-ups):

- stored by hand in backup_settings (an SQL UPDATE, around the API's and the CLI's checks): beat's dispatcher
  logs one line per tick and goes on with the environment's schedule; `check`, the status and GET /settings say
  which key is wrong and how to fix it;
- set in OPENWATCH_BACKUP_SCHEDULE: judged where a schedule is used (dispatcher, `schedule`, `check`), with the
  variable's one line, so that every other CLI command starts without importing celery.

Real PostgreSQL, the real dispatcher function, the real API (TestClient) and the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openwatch_backup.errors import ConfigError
from openwatch_backup.scheduling import SEEN_KEYS, next_fire
from openwatch_backup.service import BackupService
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    Services,
    Submitted,
    audit_fixture,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    openwatch_auth,
)
from tests.celery_support import CLI, process_env
from tests.test_cli_startup import imported_by

NIGHTLY, WEEKLY = "0 2 * * *", "0 4 * * 0"
BAD = "61 * * * *"
STORED_LINE = ("backup_settings schedule.backup '61 * * * *' is not a valid cron expression (Invalid end range: "
               "61 > 59), e.g. '0 2 * * *'; the backup schedule uses OPENWATCH_BACKUP_SCHEDULE '0 2 * * *' until it "
               "is fixed: `openwatch-backup schedule --backup CRON` or the admin page's settings")
ENV_LINE = ("OPENWATCH_BACKUP_SCHEDULE: is not a valid cron expression (Invalid end range: 61 > 59), e.g. "
            "'0 2 * * *' (got '61 * * * *')")
ADMIN = bearer("super_admin")


def store_by_hand(url: str, key: str, value: Any) -> None:
    """What an operator's psql does: no check of ours runs."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO backup_settings (key, value, updated_by) VALUES (%s, %s::json, 'psql') "
                     "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, json.dumps(value)))


def _item(service: BackupService, key: str) -> Any:
    return next(item for item in service.checklist() if item.key == key)


# --- a bad value stored by hand ---------------------------------------------------------------------------------

def test_the_dispatcher_logs_a_bad_stored_schedule_and_uses_the_environments(
        openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService],
        caplog: pytest.LogCaptureFixture) -> None:
    service = make_service(openwatch_db, tmp_path / "backups", schedule=NIGHTLY, drill_schedule=WEEKLY)
    service.settings_store.set("schedule.backup", "30 3 * * *", updated_by="test")  # checked: a good one
    store_by_hand(openwatch_db, "schedule.backup", BAD)
    installed = datetime.now(UTC)
    nightly = next_fire(NIGHTLY, installed)

    with caplog.at_level(logging.ERROR, logger="openwatch_backup.service.scheduling"):
        assert service.dispatch_due(installed) == []  # the tick goes on: nothing due yet
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", STORED_LINE)]
    # The environment's schedule is the one in force: first seen now, next at its 02:00.
    assert service.settings_store.get(SEEN_KEYS["backup"]) == {"expression": NIGHTLY, "since": installed.isoformat()}
    assert service.next_scheduled(installed)["backup"] == nightly
    [(kind, run_id)] = service.dispatch_due(nightly + timedelta(seconds=5))
    assert (kind, service.get_run(str(run_id)).trigger) == ("set", "schedule")  # the nightly set (the default)

    item = _item(service, "settings_valid")
    assert (item.status.value, item.detail) == ("fail", STORED_LINE)
    assert item.fix == "fix schedule.backup (allowed: 5-field cron (celery's crontab), e.g. '0 2 * * *')"

    service.settings_store.set("schedule.backup", "30 3 * * *", updated_by="test")  # fixed: the item passes
    assert _item(service, "settings_valid").status.value == "ok"


def test_a_stored_schedule_that_is_not_a_string_is_reported_too(openwatch_db: str, tmp_path: Path,
                                                                make_service: Callable[..., BackupService]) -> None:
    service = make_service(openwatch_db, tmp_path / "backups", schedule=NIGHTLY, drill_schedule=WEEKLY)
    store_by_hand(openwatch_db, "schedule.drill", 5)
    assert service.dispatch_due(datetime.now(UTC)) == []
    item = _item(service, "settings_valid")
    assert item.detail == ("backup_settings schedule.drill 5 is not a cron expression (a JSON string such as "
                           "'0 2 * * *'); the drill schedule uses OPENWATCH_BACKUP_DRILL_SCHEDULE '0 4 * * 0' until "
                           "it is fixed: `openwatch-backup schedule --drill CRON` or the admin page's settings")


def test_status_and_settings_answer_with_the_problem(catalog: Catalog, audit: AuditLog) -> None:
    store_by_hand(catalog.url, "schedule.backup", BAD)
    services = Services(catalog.url, catalog.backup_dir)
    try:
        with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client:
            status = client.get(f"{PREFIX}/status", headers=ADMIN)
            settings = client.get(f"{PREFIX}/settings", headers=ADMIN)
    finally:
        services.close()
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["healthy"] is False
    assert "settings_valid" in body["failing_checks"]
    [item] = [i for i in body["checklist"] if i["key"] == "settings_valid"]
    assert (item["status"], item["detail"]) == ("fail", STORED_LINE)
    assert set(body["next_runs"]) == {"backup", "drill"}

    assert settings.status_code == 200, settings.text
    answer = settings.json()
    assert (answer["schedule"]["backup"], answer["schedule_source"]["backup"]) == (NIGHTLY, "environment")
    assert answer["problems"] == [{"key": "schedule.backup", "detail": STORED_LINE,
                                   "allowed": "5-field cron (celery's crontab), e.g. '0 2 * * *'"}]


# --- a bad value in the environment: judged where schedules are used -------------------------------------------

def test_a_bad_environment_schedule_stops_the_dispatcher_with_its_line(
        openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService]) -> None:
    service = make_service(openwatch_db, tmp_path / "backups", schedule=BAD, drill_schedule=WEEKLY)
    with pytest.raises(ConfigError) as info:
        service.dispatch_due(datetime.now(UTC))
    assert (info.value.message, info.value.exit_status) == (ENV_LINE, 2)
    assert service.recorder.list(limit=5) == []
    assert service.next_scheduled().keys() == {"drill"}  # no next backup for a schedule that cannot be evaluated
    assert _item(service, "settings_valid").detail == ENV_LINE

    # A good stored schedule over it is used; the variable stays reported until it is fixed.
    service.settings_store.set("schedule.backup", NIGHTLY, updated_by="test")
    assert service.dispatch_due(datetime.now(UTC)) == []
    assert _item(service, "settings_valid").detail == ENV_LINE


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cli_commands_start_without_celery_and_schedule_commands_judge_it(backup_env: Any) -> None:
    env = process_env(OPENWATCH_DATABASE_URL=backup_env.url, OPENWATCH_BACKUP_DIR=backup_env.dir,
                      OPENWATCH_BACKUP_SCHEDULE=BAD)
    assert _cli(env, "db", "upgrade").returncode == 0

    # `list` needs no schedule: it neither imports celery nor refuses the variable.
    found = imported_by(["list", "--json"], env)
    assert "celery" not in found["heavy"], found
    assert "kombu" not in found["heavy"], found
    listed = _cli(env, "list", "--json")
    assert (listed.returncode, listed.stderr) == (0, "")

    schedule = _cli(env, "schedule")
    assert (schedule.returncode, schedule.stdout, schedule.stderr) == (2, "", f"error: {ENV_LINE}\n")

    check = _cli(env, "check", "--json")
    assert check.returncode == 1, check.stderr
    [item] = [i for i in json.loads(check.stdout)["items"] if i["key"] == "settings_valid"]
    assert (item["status"], item["detail"]) == ("fail", ENV_LINE)


def test_the_shape_is_still_checked_when_the_settings_load(backup_env: Any) -> None:
    env = process_env(OPENWATCH_DATABASE_URL=backup_env.url, OPENWATCH_BACKUP_DIR=backup_env.dir,
                      OPENWATCH_BACKUP_SCHEDULE="0 2 * *")
    listed = _cli(env, "list", "--json")
    assert (listed.returncode, listed.stderr) == (2, "error: OPENWATCH_BACKUP_SCHEDULE: is not a 5-field cron "
                                                     "expression (minute hour day-of-month month day-of-week), e.g. "
                                                     "'0 2 * * *' (got '0 2 * *')\n")
