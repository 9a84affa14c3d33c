"""Beat ticks before `openwatch-backup db upgrade` (issue 9, failure 11, seen in OpenWatch's real backend).

Installed as the README says, the rebuilt worker and beat run the plugin's tasks before the migration has run:
`docker exec openwatch-worker openwatch-backup db upgrade` needs the worker up. Until then each dispatcher tick
(every minute) and sweeper tick printed a 20-line CatalogMissing traceback into OpenWatch's worker log. A tick
now logs the error's one line, answers {"success": False, ...} as OpenWatch's own tasks do, and the first tick
after the migration queues nothing (the schedule waits for its first fire time).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from celery import Celery

from openwatch_backup.tasks import DISPATCH, SWEEP
from tests.celery_support import (  # noqa: F401 - fixtures
    CLI,
    Processes,
    broker_url_fixture,
    client_app_fixture,
    module_redis_fixture,
    plugin_env,
    processes_fixture,
)

MISSING = "the backup_runs table does not exist in "


def test_ticks_before_the_migration_say_one_line(make_database, tmp_path: Path, broker_url: str, client_app: Celery,
                                                 processes: Processes) -> None:
    url = make_database("premig")  # OpenWatch's database before `db upgrade`: no plugin tables
    env = plugin_env(url, tmp_path / "backups", broker_url)
    worker = processes.worker(env, concurrency=1)

    for task in (DISPATCH, SWEEP):
        outcome = client_app.send_task(task).get(timeout=60)
        assert outcome["success"] is False, outcome
        assert outcome["error_code"] == "catalog_missing", outcome
        assert outcome["error"].startswith(MISSING), outcome
        assert outcome["error"].endswith("; run `openwatch-backup db upgrade` first"), outcome
    log = worker.log()
    assert "Traceback" not in log, worker.tail(60)
    assert "raised unexpected" not in log, worker.tail(60)
    for task in (DISPATCH, SWEEP):  # one ERROR line each, naming the task, the problem and the fix
        lines = [line for line in log.splitlines() if re.search(rf"ERROR/.*\b{re.escape(task)}: {MISSING}", line)]
        assert len(lines) == 1, worker.tail(60)
        assert lines[0].endswith("run `openwatch-backup db upgrade` first"), lines[0]

    upgraded = subprocess.run([str(CLI), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120,
                              check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    # The same worker, no restart: the first tick after the migration sees the schedule and queues nothing.
    assert client_app.send_task(DISPATCH).get(timeout=60) == {"success": True, "queued": []}
