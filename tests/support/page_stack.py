"""The admin page tests' stack: an EmbeddedStack on a scratch database, far-off schedules, cleaned up after.

Each page test module starts one (module scope) with its own Redis database number, so two modules never share a
broker or a result backend, even run side by side. In use: 3 focus, 5 restore, 6 settings, 7 a11y, 8 checklist
links, 9 progress, 10 health, 11 admin page, 12 off-site, 13 config, 14 sets, 15 backups view (0 is the other
tests').
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openwatch_backup.devstack import drop_database, scratch_database_name
from openwatch_backup.devstack.stack import EmbeddedStack
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings


def far_schedules() -> dict[str, str]:
    """Schedules that fire twelve hours from now: no scheduled run lands among the runs a test starts and counts."""
    hour = (datetime.now(UTC).hour + 12) % 24
    return {"OPENWATCH_BACKUP_SCHEDULE": f"0 {hour} * * *", "OPENWATCH_BACKUP_DRILL_SCHEDULE": f"30 {hour} * * *",
            "OWB_TEST_DISPATCH_SECONDS": "5"}


@contextmanager
def page_stack(var: Path, *, redis_db: int, beat: bool, extra_env: dict[str, str] | None = None,
               size_mib: int = 5) -> Iterator[EmbeddedStack]:
    """The stack serving the page, on owb_page_<pid>_<hex> (a killed run's leftover is dropped later); its worker,
    beat and API are stopped by PID, servers only if it started them, and the database dropped."""
    database = scratch_database_name("page")
    embedded = EmbeddedStack(var, database=database, size_mib=size_mib, port=0, redis_db=redis_db, beat=beat,
                             extra_env={**far_schedules(), **(extra_env or {})})
    embedded.start()
    try:
        yield embedded
    finally:
        pg = embedded.pg
        embedded.stop()
        if pg is not None and not pg.owned:
            drop_database(pg, database)


def service_of(stack: EmbeddedStack, **overrides: Any) -> BackupService:
    """A BackupService on the stack's catalog and backup folder, for a test to take real runs with."""
    return BackupService(load_settings(database_url=stack.env["OPENWATCH_DATABASE_URL"],
                                       dir=stack.env["OPENWATCH_BACKUP_DIR"], **overrides))
