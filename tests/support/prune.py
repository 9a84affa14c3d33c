"""Shared by the prune tests: a service over a fresh sample database, backups aged by editing the catalog's
recorded times, and the exact listing of the backup directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.operations import kill_points
from openwatch_backup.service import BackupService


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def sql(url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


def age(url: str, run: BackupRun, days: float) -> None:
    """Move a run's recorded creation time back (order and age come from the catalog, never from names)."""
    sql(url, "UPDATE backup_runs SET created_at = now() - make_interval(secs => %s) WHERE id = %s",
        days * 86400, run.id)


def decisions(run: BackupRun) -> dict[str, tuple[str, str]]:
    return {d["run"]: (d["action"], d["reason"]) for d in run.details["plan"]}


@dataclass
class Env:
    url: str
    dir: Path
    service: BackupService

    def backup(self, kind: BackupKind = BackupKind.FULL, *, verify: bool = True, days: float = 0) -> BackupRun:
        run = self.service.backup(self.service.build_request(kind, Compression.ZSTD))
        assert run.status == "succeeded"
        if verify:
            checked, _ = self.service.verify(str(run.id))
            assert checked.status == "succeeded"
        if days:
            age(self.url, run, days)
        return self.service.get_run(str(run.id))

    def run(self, run: BackupRun) -> BackupRun:
        return self.service.get_run(str(run.id))

    def keys(self, run: BackupRun) -> list[str]:
        artifact = f"postgres/{run.details['artifact']}"
        return [artifact, artifact + ".manifest.json"]


def make_env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
             **settings: Any) -> Env:
    """backup_env's database and folder, no other OPENWATCH_* or PG* variable, the plugin's tables."""
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    return Env(backup_env.url, backup_env.dir, make_service(backup_env.url, backup_env.dir, **settings))


PRUNE_CLI = Path(sys.executable).with_name("openwatch-backup")


def prune_killed_at(point: str, pause_file: Path, env: dict[str, str] | None = None, wait: float = 60.0) -> None:
    """Run `prune --apply` as a CLI process (in `env`, or ours) until it reaches the kill point `point`, then SIGKILL
    it there."""
    pause_file.unlink(missing_ok=True)
    child = {**(env if env is not None else os.environ), kill_points.AT: point, kill_points.FILE: str(pause_file)}
    process = subprocess.Popen([str(PRUNE_CLI), "prune", "--apply"], env=child, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + wait
        while not (pause_file.exists() and pause_file.read_text() == point):
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"prune ended (exit {process.returncode}) without reaching {point}: {out} {err}")
            assert time.monotonic() < deadline, f"prune did not reach {point} in {wait} s"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
