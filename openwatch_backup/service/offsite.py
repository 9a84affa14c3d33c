"""Off-site copies: copy a backup to S3 and verify the copy, re-read a remote copy, test the connection."""

from __future__ import annotations

from openwatch_backup.service.recovery import RecoveryService

# Each operation is imported by the method that runs it (see service/recovery.py).


class OffsiteService(RecoveryService):
    pass
