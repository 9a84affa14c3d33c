"""After a full restore: OpenWatch's migrations (the guide's step 4) and its health check (step 6)."""

from __future__ import annotations

import os
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from openwatch_backup.errors import RestoreFailed
from openwatch_backup.settings import Settings

_TIMEOUT = 600


def run_migrations(settings: Settings, redact: Callable[[str], str]) -> dict[str, Any]:
    """Run the migration command in OpenWatch's backend folder; its environment carries the database URL."""
    argv = shlex.split(settings.migrate_command)
    if not settings.openwatch_backend_dir.is_dir():
        raise RestoreFailed(f"the migration command cannot run: {settings.openwatch_backend_dir} does not exist "
                            "(set OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR)")
    env = {**os.environ, "OPENWATCH_DATABASE_URL": settings.database_url}
    try:
        done = subprocess.run(argv, cwd=settings.openwatch_backend_dir, env=env, capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RestoreFailed(f"the migration command `{settings.migrate_command}` could not run ({exc})") from None
    if done.returncode != 0:
        last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise RestoreFailed(redact(f"the migration command `{settings.migrate_command}` exited with status "
                                   f"{done.returncode}: {last[-1] if last else 'no output'}"))
    return {"command": settings.migrate_command, "status": 0}


def check_health(url: str) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise RestoreFailed(f"the health URL {url!r} is not http(s); set OPENWATCH_BACKUP_HEALTH_URL")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - scheme checked above
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise RestoreFailed(f"the health check {url} did not answer ({exc})") from None
    if status != 200:
        raise RestoreFailed(f"the health check {url} answered HTTP {status}")
    return {"url": url, "status": status}
