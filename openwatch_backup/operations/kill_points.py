"""Named instants where the kill-anywhere tests stop a run, to SIGKILL it exactly there.

Inert unless the test sets OPENWATCH_BACKUP_TEST_PAUSE_AT (a comma-separated list of instant names) and
OPENWATCH_BACKUP_TEST_PAUSE_FILE: at a listed instant the process writes the name to that file and waits
there until it is killed, or until the test deletes the file (then it carries on). Nothing else reads
these variables; production never sets them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

AT = "OPENWATCH_BACKUP_TEST_PAUSE_AT"
FILE = "OPENWATCH_BACKUP_TEST_PAUSE_FILE"
_LONGEST = 600.0  # never hang forever if a test forgot its process: carry on after this


def kill_point(name: str) -> None:
    wanted = os.environ.get(AT)
    if not wanted or name not in wanted.split(","):
        return
    marker = os.environ.get(FILE)
    if not marker:
        return
    path = Path(marker)
    path.write_text(name)
    deadline = time.monotonic() + _LONGEST
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
