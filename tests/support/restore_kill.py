"""The real CLI as a process that stops at a named instant (operations/kill_points.py), to be SIGKILLed
there or let go on; and what is left afterwards, read straight from the server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.devstack import PostgresHandle
from tests.support.restore_helpers import CLI, process_gone


@dataclass
class PausedCli:
    proc: subprocess.Popen[str]
    marker: Path

    def wait_for(self, instant: str, timeout: float = 180) -> None:
        """Until the process sits at `instant`; fails if it ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.marker.exists() and self.marker.read_text() == instant:
                return
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                pytest.fail(f"the CLI ended (status {self.proc.returncode}) before {instant}: {err.strip()} {out}")
            time.sleep(0.02)
        pytest.fail(f"the CLI did not reach {instant} within {timeout} s")

    def resume(self) -> None:
        self.marker.unlink()

    def kill(self, *, may_have_exited: bool = False) -> None:
        """SIGKILL, and reap: nothing of the CLI runs after this (its clients see their input end).
        `may_have_exited`: a kill at a random instant may find the run already done and the process gone
        with status 0 (a quiet machine); that is allowed, and the caller checks the run's success instead."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        _, err = self.proc.communicate(timeout=60)
        if may_have_exited and self.proc.returncode == 0:
            return
        assert self.proc.returncode == -signal.SIGKILL, (self.proc.returncode, err)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def start_paused(args: list[str], env: dict[str, str], pause_at: list[str], marker: Path) -> PausedCli:
    marker.unlink(missing_ok=True)
    env = {**env, "OPENWATCH_BACKUP_TEST_PAUSE_AT": ",".join(pause_at), "OPENWATCH_BACKUP_TEST_PAUSE_FILE": str(marker)}
    proc = subprocess.Popen([str(CLI), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return PausedCli(proc, marker)


def wait_for_children_gone(pids: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(process_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(process_gone(pid) for pid in pids), pids


def allows_connections(pg: PostgresHandle, name: str) -> bool | None:
    with pg.connect() as conn:
        row = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return None if row is None else bool(row[0])


def run_row(url: str, run_id: str) -> tuple[str, str | None, dict[str, object]]:
    """(status, error_code, details) of a run, read from the live database's catalog."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status, error_code, details FROM backup_runs WHERE id = %s", (run_id,)).fetchone()
    assert row is not None, run_id
    return str(row[0]), row[1], dict(row[2])


def sweep_json(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([str(CLI), "sweep", "--json"], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))
