"""The operator's CLI: thin over BackupService. Works when OpenWatch itself is down.

Every failure prints one line (`error: ...`) and exits non-zero with the error's status; `--json`
prints machine-readable results on stdout (a failed run still prints its run, then exits non-zero).
"""

from __future__ import annotations

import logging

from openwatch_backup.cli import adopt, backups, offsite, recover, recovery, retention, schedule, signals  # noqa: F401 - importing registers the commands
from openwatch_backup.cli.common import app, fail, is_cli_control
from openwatch_backup.foreign_errors import as_backup_error

__all__ = ["app", "main"]


def main() -> None:
    """The console script: signals cancel like Ctrl-C, and nothing but one `error:` line reaches the user."""
    logging.getLogger().addHandler(logging.NullHandler())  # library warnings stay off the terminal: the
    # error line says what went wrong, and each run's own log is in the catalog (`show RUN`)
    signals.install()
    try:
        app()
    except Exception as exc:  # a signal or error outside a command's service block (arguments, output)
        if is_cli_control(exc):
            raise
        raise SystemExit(fail(as_backup_error(exc)).exit_code) from None
