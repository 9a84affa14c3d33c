"""Settings in force that cannot be used as they are: a schedule celery's crontab refuses (stored or from the
environment), a stored retention value out of its bounds. Values written around the API (psql, an older
version) are not checked before they are stored, so they are judged when read, and reported rather than
crashing the reader: GET /settings lists them, `check` and the status fail on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openwatch_backup.catalog.settings_store import SettingsStore
    from openwatch_backup.settings import Settings


@dataclass(frozen=True)
class SettingProblem:
    """A setting's key (backup_settings key or environment variable), one line saying what is wrong, what is used
    instead and how to fix it, and the values it allows."""

    key: str
    detail: str
    allowed: str = ""


def settings_problems(settings: Settings, store: SettingsStore) -> list[SettingProblem]:
    from openwatch_backup.operations.retention_policy import override_problems
    from openwatch_backup.scheduling import current_schedules  # imports celery: only where schedules are judged

    problems = list(current_schedules(settings, store).problems)
    retention = override_problems(store.all("retention."))
    problems += [SettingProblem(key, line, allowed) for key, line, allowed in retention]
    return problems
