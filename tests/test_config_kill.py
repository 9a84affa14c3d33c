"""Kill-anywhere for the config backup (decision 11): `backup --kind config` as a real CLI process, stopped at each
of its instants (packed but not committed, committed with its manifest but not recorded) by SIGKILL or SIGTERM.

After a SIGKILL, `sweep` marks the run abandoned and removes its `.partial` file; `prune --apply` removes the files
of a run that wrote its manifest but never succeeded. After a SIGTERM the command itself cleans up and exits 130.
Either way, the next config backup succeeds and verifies, and its two files are all that is left in config/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.operations import kill_points

CLI = Path(sys.executable).with_name("openwatch-backup")
WAIT = 60.0


@pytest.fixture
def config_env(backup_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsample\n-----END OPENSSH PRIVATE KEY-----\n")
    passfile = tmp_path / "passphrase"
    passfile.write_text("a long sample passphrase for the kill test\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("OPENWATCH_BACKUP_CONFIG_PATHS", str(keys))
    monkeypatch.setenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", str(passfile))
    monkeypatch.setenv("OPENWATCH_BACKUP_VERIFIED_FLOOR", "1")
    cli("db", "upgrade")
    return Path(backup_env.dir)


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def stopped_at(point: str, pause_file: Path, sig: signal.Signals) -> subprocess.CompletedProcess[str]:
    """Run `backup --kind config` until it reaches `point`, then send `sig`; the finished process."""
    pause_file.unlink(missing_ok=True)
    env = {**os.environ, kill_points.AT: point, kill_points.FILE: str(pause_file)}
    process = subprocess.Popen([str(CLI), "backup", "--kind", "config"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while not (pause_file.exists() and pause_file.read_text() == point):
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the backup ended (exit {process.returncode}) before {point}: {out} {err}")
            assert time.monotonic() < deadline, f"the backup did not reach {point} in {WAIT} s"
            time.sleep(0.02)
        os.kill(process.pid, sig)
        if sig is signal.SIGTERM:
            pause_file.unlink()  # the handler runs once the paused step carries on
        out, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def config_runs() -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(cli("list", "--kind", "config", "--json").stdout)
    return runs


def files(backup_dir: Path) -> list[str]:
    folder = backup_dir / "config"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("point", ["config_packed", "config_manifest_written"])
def test_sigkill_then_sweep_and_prune_leave_only_whole_bundles(config_env: Path, tmp_path: Path, point: str) -> None:
    killed = stopped_at(point, tmp_path / "pause", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert any(name.endswith(".partial") for name in files(config_env)) == (point == "config_packed")

    swept = cli("sweep", "--json")
    assert json.loads(swept.stdout)["abandoned"], swept.stdout
    [run] = config_runs()
    assert run["status"] == "abandoned"
    assert not any(name.endswith(".partial") for name in files(config_env))

    cli("prune", "--apply")  # the files of a run that never succeeded: a leftover, deleted
    assert files(config_env) == []

    cli("backup", "--kind", "config")
    newest = config_runs()[0]
    assert newest["status"] == "succeeded"
    cli("verify", newest["id"])
    artifact = newest["details"]["artifact"]
    assert files(config_env) == sorted([artifact, artifact + ".manifest.json"])


def test_sigterm_cancels_and_removes_the_partial_file(config_env: Path, tmp_path: Path) -> None:
    stopped = stopped_at("config_packed", tmp_path / "pause", signal.SIGTERM)

    assert stopped.returncode == 130, stopped.stderr
    assert stopped.stderr.count("\n") == 1
    assert "Traceback" not in stopped.stderr
    [run] = config_runs()
    assert run["status"] == "cancelled"
    assert files(config_env) == []
