"""The passphrase and the master key never leak (issue 11, DESIGN decision 7): not in any process's argv during a
config backup, not in the CLI's output, not in a catalog row (each run's own log is its details.log there; the
config paths emit no Python log records), not in the clear in any file of the backup folder (the manifest
included). Each check first proves it would see the secret where it is meant to be."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from openwatch_backup.operations import kill_points
from tests.support.config_bundle import CLI, Bench, bench

__all__ = ["bench"]  # the fixture


def _secrets(bench: Bench) -> list[str]:
    return [bench.passphrase, bench.master_key]


def _all_argv() -> str:
    """Every process's full command line, as `ps` shows it to any user."""
    return subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True).stdout


def test_no_secret_in_any_process_argv_during_a_config_backup(bench: Bench, tmp_path: Path) -> None:
    pause = tmp_path / "pause"
    env = {**os.environ, kill_points.AT: "config_packed", kill_points.FILE: str(pause)}
    process = subprocess.Popen([str(CLI), "backup", "--kind", "config", "--json"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not (pause.exists() and pause.read_text() == "config_packed"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            seen.append(_all_argv())  # polled from the start: preflight, packing
        seen.append(_all_argv())  # paused with the bundle packed, the passphrase in memory
        assert str(process.pid) in seen[-1]
        pause.unlink()
        while process.poll() is None:
            seen.append(_all_argv())
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.communicate()

    assert process.returncode == 0, err
    for snapshot in seen:
        for secret in _secrets(bench):
            assert secret not in snapshot
    for secret in _secrets(bench):
        assert secret not in out + err


def test_no_secret_in_output_rows_manifest_or_backup_folder(bench: Bench, tmp_path: Path) -> None:
    run = bench.backup()
    restored = tmp_path / "restored"
    wrong = tmp_path / "wrong"
    wrong.write_text("another passphrase entirely\n")
    wrong.chmod(0o600)
    outputs = [bench.cli("backup", "--kind", "config"), bench.cli("verify", run["id"], "--deep", "--json"),
               bench.cli("restore", run["id"], "--list"), bench.cli("restore", run["id"], "--list", "--json"),
               bench.cli("restore", run["id"], "--to", str(restored), "--json"),
               bench.cli("show", run["id"], "--json"), bench.cli("list", "--json"), bench.cli("check", "--json"),
               bench.cli("verify", run["id"], env={"OPENWATCH_BACKUP_PASSPHRASE_FILE": str(wrong)}),
               bench.cli("restore", run["id"], "--to", str(tmp_path / "r2"),
                         env={"OPENWATCH_BACKUP_PASSPHRASE_FILE": "", "OPENWATCH_BACKUP_PASSPHRASE": "x" * 40})]
    with psycopg.connect(bench.url) as conn:
        rows = [str(r[0]) for r in conn.execute("SELECT t::text FROM backup_runs t")]
        rows += [str(r[0]) for r in conn.execute("SELECT t::text FROM backup_copies t")]
        logged = conn.execute("SELECT count(*) FROM backup_runs WHERE jsonb_array_length(details->'log') > 1")
        with_log = logged.fetchone()
    files = [p for p in bench.backup_dir.rglob("*") if p.is_file()]

    # the checks see what they look for: the restored bundle holds the master key, the rows are there
    assert bench.master_key.encode() in (restored / "openwatch.env").read_bytes()
    assert len(rows) >= 6 + 2  # 6 runs, 2 copies
    assert with_log is not None
    assert with_log[0] >= 6  # each run's own log (what `show RUN` prints) is in its row
    assert any(p.name.endswith(".manifest.json") for p in files)
    assert len(files) == 4  # two bundles, two manifests
    for secret in _secrets(bench):
        for done in outputs:
            assert secret not in done.stdout + done.stderr, done.args
        for row in rows:
            assert secret not in row
        for path in files:
            assert secret.encode() not in path.read_bytes(), path

