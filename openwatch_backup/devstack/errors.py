"""The one error the local stack raises."""

from __future__ import annotations

from openwatch_backup.errors import BackupError


class DevstackError(BackupError):
    """The local stack could not be found or started. The message names the cause and the fix."""

    code = "devstack"
