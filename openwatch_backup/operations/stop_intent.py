"""Containers a volume snapshot stopped, recorded on local disk as well as on the run (decision 11).

The run's catalog row records them before they are stopped, and the sweeper starts them again when the run
died. But consistent mode may stop the database container itself, and the catalog lives in it: a worker that
dies in that window leaves a record nobody can read until the database runs again, which it never will. So the
intent is also a file under the backup folder (`DIR/.stopped/<run>.json`, 0600), written before the first stop,
touched every few seconds while the window is open, and removed once every container is running again.

The sweeper reads these files before it touches the catalog. It starts the containers of a file whose writer is
provably gone (same host and boot, the process no longer there) or that has not been touched for
stale_after_seconds (a worker in another container, killed or out of memory), then removes the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openwatch_backup.catalog.owner import is_gone, this_process

FOLDER = ".stopped"
TOUCH_SECONDS = 5.0


def intent_dir(backup_dir: Path) -> Path:
    return backup_dir / FOLDER


class StopIntent:
    """The file for one run's stopped containers, kept fresh by a thread while the window is open."""

    def __init__(self, backup_dir: Path, run_id: uuid.UUID, names: list[str]) -> None:
        self.path = intent_dir(backup_dir) / f"{run_id}.json"
        self._names = names
        self._run_id = run_id
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StopIntent:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {"run": str(self._run_id), "containers": self._names, "owner": this_process(),
                  "written_at": datetime.now(UTC).isoformat()}
        partial = self.path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, self.path)  # whole or absent: a sweeper never reads half a list
        self._thread = threading.Thread(target=self._touch, name="stop-intent", daemon=True)
        self._thread.start()
        return self

    def _touch(self) -> None:
        while not self._closed.wait(TOUCH_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def done(self) -> None:
        """Every container runs again: the intent is fulfilled."""
        self._stop_touching()
        self.path.unlink(missing_ok=True)

    def _stop_touching(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join()

    def __exit__(self, *exc: object) -> None:
        self._stop_touching()  # a restart that failed leaves the file: the sweeper tries again


def orphaned(backup_dir: Path, stale_after_seconds: float) -> list[tuple[Path, dict[str, Any]]]:
    """The intent files whose writer is gone or silent for stale_after_seconds; unreadable ones are skipped."""
    folder = intent_dir(backup_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            silent = time.time() - path.stat().st_mtime
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("containers"), list):
            continue
        if is_gone(record.get("owner")) or silent > stale_after_seconds:
            found.append((path, record))
    return found
