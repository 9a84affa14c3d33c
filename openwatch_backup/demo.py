"""The embedded default (README's first command): everything local, nothing to configure.

Reuses the PostgreSQL on 127.0.0.1:5432 or starts a throwaway one under VAR, creates and seeds the
`openwatch_demo` database once, applies the plugin's migration, takes a full backup into VAR/backups, then a
config bundle of the demo's configuration (VAR/openwatch-config: an SSH key, a certificate and a .env holding the
sample master key the sample credentials are encrypted under; devstack/demo_config.py), and returns the catalog.
A throwaway server is stopped again at the end; the backups stay.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openwatch_backup import devstack
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, Trigger
from openwatch_backup.devstack.demo_config import prepare_demo_config
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
    config: BackupRun | None = None  # the config bundle taken with the backup


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The worker's settings snapshot (openwatch.env) reads the process environment: the demo's master key is
    put there while the bundle is taken, and the caller's environment is given back afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(var: Path, size_mib: float, observer: Observer | None = None) -> DemoResult:
    var.mkdir(parents=True, exist_ok=True)
    config = prepare_demo_config(var)
    pg = devstack.ensure_postgres(var)
    try:
        url = devstack.ensure_demo_database(pg, DEMO_DATABASE, target_mib=size_mib)
        settings = load_settings(database_url=url, dir=var / "backups", **config.settings())
        with BackupService(settings) as service:
            service.db_upgrade()
            run = service.backup(service.build_request(), trigger=Trigger.CLI, requested_by="demo",
                                 observer=observer)
            with _environment({"OPENWATCH_MASTER_KEY": config.environment()["OPENWATCH_MASTER_KEY"]}):
                bundle = service.backup(service.build_request(BackupKind.CONFIG), trigger=Trigger.CLI,
                                        requested_by="demo")
            runs = service.list_runs(limit=20)
        return DemoResult(database=DEMO_DATABASE, server=f"{pg.host}:{pg.port}", server_was_started=pg.owned,
                          backup=run, runs=runs, config=bundle)
    finally:
        pg.stop()  # only stops a server this call started
