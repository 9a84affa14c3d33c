"""The operator's CLI: thin over BackupService. Works when OpenWatch itself is down.

Every failure prints one line (`error: ...`) and exits non-zero with the error's status; `--json`
prints machine-readable results on stdout (a failed run still prints its run, then exits non-zero).
"""

from __future__ import annotations

from openwatch_backup.cli import backups, recovery, retention, schedule  # noqa: F401 - importing registers the commands
from openwatch_backup.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app()
