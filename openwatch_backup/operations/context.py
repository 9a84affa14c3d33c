"""What every operation needs, built once by the service from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from openwatch_backup.catalog.recorder import RunRecorder
from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.core.redact import Redactor
from openwatch_backup.executors.local import LocalExecutor
from openwatch_backup.settings import Settings
from openwatch_backup.storage.base import Storage


@dataclass(frozen=True)
class OperationContext:
    settings: Settings
    target: DatabaseTarget
    storage: Storage
    executor: LocalExecutor
    recorder: RunRecorder
    redact: Redactor
