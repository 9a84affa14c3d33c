"""The embedded default (README's first command): everything local, nothing to configure.

Reuses the PostgreSQL on 127.0.0.1:5432 or starts a throwaway one under VAR, creates and seeds the
`openwatch_demo` database once, applies the plugin's migration, takes a full backup into VAR/backups
and returns the catalog. A throwaway server is stopped again at the end; the backups stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openwatch_backup import devstack
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import Trigger
from openwatch_backup.operations.backup import Observer
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

DEMO_DATABASE = "openwatch_demo"


@dataclass
class DemoResult:
    database: str
    server: str
    server_was_started: bool
    backup: BackupRun
    runs: list[BackupRun]


def run_demo(var: Path, size_mib: float, observer: Observer | None = None) -> DemoResult:
    var.mkdir(parents=True, exist_ok=True)
    pg = devstack.ensure_postgres(var)
    try:
        url = devstack.ensure_demo_database(pg, DEMO_DATABASE, target_mib=size_mib)
        with BackupService(load_settings(database_url=url, dir=var / "backups")) as service:
            service.db_upgrade()
            run = service.backup(service.build_request(), trigger=Trigger.CLI, requested_by="demo",
                                 observer=observer)
            runs = service.list_runs(limit=20)
        return DemoResult(database=DEMO_DATABASE, server=f"{pg.host}:{pg.port}", server_was_started=pg.owned,
                          backup=run, runs=runs)
    finally:
        pg.stop()  # only stops a server this call started
