"""A CLI run stopped from outside, as a real process: SIGTERM (kill, `timeout`, `docker stop`, systemd) and
SIGINT end it like Ctrl-C (exit 130, run `cancelled`, no `.partial`, pg_dump gone); after a SIGKILL, the CLI's
`sweep` marks the run abandoned and removes its leftovers; PostgreSQL crashing mid-backup gives one line and
the documented exit status, and the run is left for the sweeper."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openwatch_backup import devstack
from openwatch_backup.operations.lifecycle import UNRECORDED
from openwatch_backup.source.scratch import scratch_name
from tests.support.procs import children_named

CLI = Path(sys.executable).with_name("openwatch-backup")


def cli_env(url: str, backup_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "OPENWATCH_"))}
    env.update({"OPENWATCH_DATABASE_URL": url, "OPENWATCH_BACKUP_DIR": str(backup_dir)})
    env.update({f"OPENWATCH_BACKUP_{k.upper()}": v for k, v in settings.items()})
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def runs(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id::text, kind, status, phase, error_code, error FROM backup_runs "
                            "ORDER BY created_at").fetchall()
    return [dict(zip(("id", "kind", "status", "phase", "error_code", "error"), row, strict=True)) for row in rows]


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.fixture
def dumping() -> Iterator[Callable[..., tuple[subprocess.Popen[str], Path, list[int]]]]:
    """`dumping(env, backup_dir, *args, preexec=None)`: a CLI backup started and caught mid-dump (its `.partial`
    exists and has grown, its pg_dump runs). Returns the process, the partial file and pg_dump's pids."""
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], backup_dir: Path, *args: str,
              preexec: Callable[[], None] | None = None) -> tuple[subprocess.Popen[str], Path, list[int]]:
        proc = subprocess.Popen([str(CLI), "backup", *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
        started.append(proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the backup ended before it could be stopped: {proc.communicate()}"
            partials = list((backup_dir / "postgres").glob("*.partial")) if (backup_dir / "postgres").exists() \
                else []
            dumps = children_named(proc.pid, "pg_dump")
            if partials and dumps and partials[0].stat().st_size > 0:
                return proc, partials[0], dumps
            time.sleep(0.02)
        raise AssertionError("the backup never started dumping")

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _ignore_sigint() -> None:
    # What bash does to a command it starts in the background (`cmd &` in a script): SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(("signum", "preexec", "why"), [
    (signal.SIGTERM, None, "SIGTERM (kill, timeout, docker stop or systemd)"),
    (signal.SIGINT, None, "SIGINT (Ctrl-C)"),
    (signal.SIGINT, _ignore_sigint, "SIGINT (Ctrl-C)"),
], ids=["sigterm", "sigint", "sigint-started-in-background"])
def test_signal_mid_dump_cancels_the_run(signum: signal.Signals, preexec: Callable[[], None] | None, why: str,
                                         bulky_db: str, tmp_path: Path, make_service, dumping) -> None:
    backup_dir = tmp_path / "b"
    make_service(bulky_db, backup_dir)  # the plugin's tables
    proc, partial, dumps = dumping(cli_env(bulky_db, backup_dir), backup_dir, preexec=preexec)

    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)

    assert (proc.returncode, stdout, stderr) == (130, "", f"error: cancelled by {why}\n")
    [run] = runs(bulky_db)
    assert (run["kind"], run["status"], run["phase"], run["error_code"], run["error"]) == (
        "full", "cancelled", "dumping", "cancelled", f"cancelled by {why}")
    assert not partial.exists()
    assert files(backup_dir) == []
    assert all(gone(pid) for pid in dumps)


def test_sweep_after_a_killed_cli_marks_the_run_abandoned_and_removes_its_partial(
        bulky_db: str, tmp_path: Path, make_service, dumping) -> None:
    backup_dir = tmp_path / "b"
    make_service(bulky_db, backup_dir)
    env = cli_env(bulky_db, backup_dir)
    proc, partial, dumps = dumping(env, backup_dir)

    # While it runs, the sweep leaves it and its partial file alone (pg_dump paused, so it cannot finish first).
    for pid in dumps:
        os.kill(pid, signal.SIGSTOP)
    swept = run_cli(env, "sweep", "--json")
    assert (swept.returncode, swept.stderr) == (0, "")
    assert json.loads(swept.stdout) == {"abandoned": [], "databases": [], "partial_files": [], "kept_databases": []}
    assert partial.exists()

    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    for pid in dumps:
        os.kill(pid, signal.SIGCONT)
    assert proc.returncode == -signal.SIGKILL
    [run] = runs(bulky_db)
    assert run["status"] == "running"  # nothing could record it
    assert partial.exists()

    swept = run_cli(env, "sweep", "--json")

    assert (swept.returncode, swept.stderr) == (0, "")
    assert json.loads(swept.stdout) == {"abandoned": [run["id"]], "databases": [],
                                        "partial_files": [f"postgres/{partial.name}"], "kept_databases": []}
    [run] = runs(bulky_db)
    assert (run["status"], run["phase"], run["error_code"]) == ("abandoned", "dumping", "abandoned")
    assert run["error"] == (f"its process (pid {proc.pid} on {os.uname().nodename}) ended without finishing the "
                            "run (killed); its leftovers were removed")
    assert files(backup_dir) == []
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in dumps) and time.monotonic() < deadline:
        time.sleep(0.05)  # the orphaned pg_dump dies of its broken pipe
    assert all(gone(pid) for pid in dumps)


@pytest.mark.parametrize(("args", "kind", "purpose"), [(["verify", "--deep"], "verify", "verify"),
                                                    (["drill"], "drill", "drill")], ids=["verify-deep", "drill"])
def test_sigterm_mid_restore_into_scratch_cancels_and_drops_it(args: list[str], kind: str, purpose: str,
                                                               bulky_db: str, tmp_path: Path, make_service,
                                                               pg: devstack.PostgresHandle) -> None:
    backup_dir = tmp_path / "b"
    service = make_service(bulky_db, backup_dir)
    backup = service.backup(service.build_request())
    argv = [str(CLI), args[0], *([str(backup.id)] if args[0] == "verify" else []), *args[1:]]
    proc = subprocess.Popen(argv, env=cli_env(bulky_db, backup_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        restorers: list[int] = []
        scratch = ""
        while not restorers and time.monotonic() < deadline:  # restoring into the scratch database (not --list)
            assert proc.poll() is None, proc.communicate()
            found = [r for r in runs(bulky_db) if r["kind"] == kind]
            if found:
                scratch = scratch_name(purpose, uuid.UUID(found[0]["id"]))
                if devstack.database_exists(pg, scratch):
                    restorers = children_named(proc.pid, "pg_restore")
            time.sleep(0.02)
        assert restorers, "pg_restore never started restoring into the scratch database"

        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        assert stdout == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert (proc.returncode, stderr) == (130, "error: cancelled by SIGTERM (kill, timeout, docker stop or systemd)\n")
    [run] = [r for r in runs(bulky_db) if r["kind"] == kind]
    assert (run["status"], run["error_code"]) == ("cancelled", "cancelled")
    assert not devstack.database_exists(pg, scratch)
    assert all(gone(pid) for pid in restorers)
    assert service.get_run(str(backup.id)).status == "succeeded"


# --------------------------------------------------------------------------- PostgreSQL crashing mid-backup


@pytest.fixture(scope="module")
def crashable_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.PostgresHandle]:
    """A throwaway server of this module only: it is crashed on purpose."""
    handle = devstack.ensure_postgres(tmp_path_factory.mktemp("pg"), reuse=False)
    try:
        yield handle
    finally:
        handle.stop()


def test_postgres_stopping_mid_backup_gives_one_line_and_leaves_the_run_to_the_sweeper(
        crashable_pg: devstack.PostgresHandle, tmp_path: Path, dumping) -> None:
    name = devstack.scratch_database_name("crash")
    devstack.create_database(crashable_pg, name)
    url = crashable_pg.url_for(name)
    with psycopg.connect(url, autocommit=True) as conn:
        # The throwaway server runs synchronous_commit=off: its crash could lose the run's own row (seen in CI).
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE filler (id int PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO filler SELECT g, string_agg(md5(g::text || ':' || i::text), '') "
                     "FROM generate_series(1, 40960) g, generate_series(1, 32) i GROUP BY g")
    backup_dir = tmp_path / "b"
    # Progress is written every 60 s only: the failure the CLI meets is pg_dump's, not a progress write's.
    env = cli_env(url, backup_dir, heartbeat_seconds="60")
    assert run_cli(env, "db", "upgrade").returncode == 0
    # pg_dump's own gzip keeps the dump going for seconds: time to crash the server in the middle.
    proc, partial, dumps = dumping(env, backup_dir, "--compression", "pg")

    crashable_pg.crash()
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 5, stderr  # dump_failed
    assert stdout == ""
    assert stderr.startswith("error: pg_dump exited with status 1: ")
    assert stderr.endswith(UNRECORDED + "\n")
    assert stderr.count("\n") == 1  # one line: no traceback, no log lines
    assert not partial.exists()
    assert all(gone(pid) for pid in dumps)

    crashable_pg.start_again()
    [run] = runs(url)
    # It could not be recorded. The throwaway server runs with synchronous_commit=off, so its crash may also lose
    # the last committed phase change (seen in CI under load): the run is running, in a phase before the failure.
    assert (run["status"], run["phase"] in ("canary", "dumping")) == ("running", True), run
    swept = run_cli(env, "sweep", "--json")
    assert (swept.returncode, swept.stderr) == (0, "")
    assert json.loads(swept.stdout)["abandoned"] == [run["id"]]
    [run] = runs(url)
    assert (run["status"], run["error_code"]) == ("abandoned", "abandoned")
    assert files(backup_dir) == []
