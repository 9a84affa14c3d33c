"""GET status's honest health (issue 14 item 3): the verdict in words with the checklist in it, the newest
database backups' size and duration (the last backup and the health chart), and the size budget in force."""

from __future__ import annotations

import typing

from sqlalchemy import Table, select

from openwatch_backup.api.schemas import BackupPointOut
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import catalog_errors
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.core.retention import GIB
from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.retention_policy import effective_values
from openwatch_backup.service import BackupService
from openwatch_backup.service.base import DATABASE_KIND_NAMES

RECENT_BACKUPS = 30  # the chart's span; the page reads it on every status poll, so it stays small
BUDGET_KEY = "retention.size_budget_gib"
_RUNS = typing.cast(Table, BackupRun.__table__)


def recent_backups(service: BackupService, limit: int = RECENT_BACKUPS) -> list[BackupPointOut]:
    """The newest succeeded database backups, newest first: one query for five columns (never the details,
    which carry logs and manifests), as the runs list orders them."""
    query = (select(_RUNS.c.id, _RUNS.c.kind, _RUNS.c.started_at, _RUNS.c.finished_at, _RUNS.c.size_bytes)
             .where(_RUNS.c.kind.in_(DATABASE_KIND_NAMES), _RUNS.c.status == RunStatus.SUCCEEDED.value)
             .order_by(_RUNS.c.created_at.desc(), _RUNS.c.id.desc()).limit(limit))
    with catalog_errors(service.target.describe()), service.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [BackupPointOut(id=str(row.id), kind=row.kind, finished_at=row.finished_at, size_bytes=row.size_bytes,
                           duration_seconds=round((row.finished_at - row.started_at).total_seconds(), 3)
                           if row.finished_at and row.started_at else None) for row in rows]


def size_budget_bytes(service: BackupService) -> int | None:
    """Retention's size budget in force, in bytes; None when there is none (0). A stored value the prune refuses
    counts as not stored here: the settings_valid check fails and says why, the environment's value is shown."""
    stored = service.settings_store.get(BUDGET_KEY)
    try:
        values, _ = effective_values(service.settings, {} if stored is None else {BUDGET_KEY: stored})
    except ConfigError:
        values, _ = effective_values(service.settings, {})
    budget = int(float(values["size_budget_gib"]) * GIB)
    return budget or None


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def verdict(age_hours: float | None, threshold_hours: float, failing: int, warnings: int) -> str:
    """One line that agrees with StatusOut.healthy: 'Healthy', 'Healthy (1 warning)', 'Unhealthy: 2 checks
    failing', 'Unhealthy: no verified backup in 26 h, 1 check failing'. The checklist's own freshness item may
    fail as well: both are said, they measure different things (a verify within the alert threshold, a backup
    within its maximum age)."""
    problems = []
    if age_hours is None:
        problems.append("no verified backup yet")
    elif age_hours > threshold_hours:
        problems.append(f"no verified backup in {threshold_hours:g} h")
    if failing:
        problems.append(_count(failing, "check failing", "checks failing"))
    warned = f" ({_count(warnings, 'warning', 'warnings')})" if warnings else ""
    if problems:
        return f"Unhealthy: {', '.join(problems)}{warned}"
    return f"Healthy{warned}"
