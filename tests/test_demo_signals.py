"""`openwatch-backup demo` (what scripts/demo execs) stops on SIGINT and SIGTERM alike, also when a
non-interactive shell started it in the background: bash then starts it with SIGINT ignored (issue 9, failure 9).
Everything it started (worker, beat, API) is gone afterwards."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openwatch_backup import devstack
from openwatch_backup.devstack import PostgresHandle
from tests.support.procs import command_lines

CLI = Path(sys.executable).with_name("openwatch-backup")
STOPPED = "stopped: worker, beat, API (and any server the demo started)\n"


def _descendants(root: int) -> list[int]:
    """Every process below root (the demo's worker, its pool children, beat and the API)."""
    parents: dict[int, int] = {}
    for pid in command_lines():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_demo_started_in_the_background_stops_on_the_signal(signum: signal.Signals, pg: PostgresHandle,
                                                            tmp_path: Path) -> None:
    database = devstack.scratch_database_name("demo")  # not openwatch_demo: a person's demo stays untouched
    log = tmp_path / "demo.log"
    log.touch()
    demo = shlex.join([str(CLI), "demo", "--var", str(tmp_path / "var"), "--port", "0", "--size-mib", "1",
                       "--database", database, "--redis-db", "13"])
    # `cmd &` in a non-interactive bash: the demo inherits SIGINT ignored, as under `scripts/demo &`.
    shell = subprocess.Popen(["bash", "-c", f"{demo} >{shlex.quote(str(log))} 2>&1 & echo $!; wait $!"],
                             stdout=subprocess.PIPE, text=True)
    pid = 0
    try:
        assert shell.stdout is not None
        pid = int(shell.stdout.readline())
        deadline = time.monotonic() + 180
        while "admin page" not in log.read_text() and time.monotonic() < deadline:
            assert shell.poll() is None, log.read_text()
            time.sleep(0.2)
        assert "admin page" in log.read_text(), log.read_text()
        started = _descendants(pid)
        assert len(started) >= 3, started  # worker (and its pool), beat, API

        os.kill(pid, signum)
        shell.wait(timeout=60)

        assert shell.returncode == 0, log.read_text()
        assert log.read_text().endswith(STOPPED)
        assert [p for p in started if _alive(p)] == []
    finally:
        if pid and _alive(pid):  # a failed assertion above: stop the demo (and what it started) by its pid
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        if shell.stdout is not None:
            shell.stdout.close()
        devstack.drop_database(pg, database)
    # The premise: bash starts a background command with SIGINT ignored (SigIgn bit 1), as the failure needs.
    status = subprocess.run(["bash", "-c", "grep SigIgn /proc/self/status & wait"], capture_output=True, text=True,
                            check=True).stdout
    assert int(status.split()[1], 16) & (1 << (signal.SIGINT - 1))
