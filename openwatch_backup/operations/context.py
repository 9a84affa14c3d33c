"""What every operation needs, built once by the service from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openwatch_backup.catalog.copies import CopyStore
from openwatch_backup.catalog.recorder import RunRecorder
from openwatch_backup.core.dsn import DatabaseTarget
from openwatch_backup.core.redact import Redactor
from openwatch_backup.executors.base import Executor
from openwatch_backup.settings import Settings
from openwatch_backup.storage.base import Storage

if TYPE_CHECKING:
    from openwatch_backup.storage.s3 import S3Storage


@dataclass(frozen=True)
class OperationContext:
    settings: Settings
    target: DatabaseTarget
    storage: Storage
    executor: Executor  # where the PostgreSQL clients run (local or in the database container): not our concern
    recorder: RunRecorder
    redact: Redactor
    copies: CopyStore
    offsite: S3Storage | None = None  # set when OPENWATCH_BACKUP_S3_BUCKET is: off-site copies are on
