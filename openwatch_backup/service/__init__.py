"""Composition root: settings -> adapters -> operations. Entry layers (CLI, tasks, API) call only this.

The service is built in layers, one concept a file, each using only the ones below it:
base (adapters, the operation guard) -> backups -> recovery -> offsite -> retention -> scheduling
(= BackupService).
"""

from openwatch_backup.service.base import BACKUP_KINDS
from openwatch_backup.service.scheduling import BackupService

__all__ = ["BACKUP_KINDS", "BackupService"]
