"""The database password never appears in argv, logs, output, error text, manifests or catalog rows."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.procs import command_lines

PASSWORD = "Pw-7f3a:s3cr3t@/%?&="  # URL-special characters, so quoting mistakes would show it
ENCODED = "Pw-7f3a%3As3cr3t%40%2F%25%3F%26%3D"


def _with_password(url: str) -> str:
    # The servers here trust loopback, so the password is not checked; what matters is where it travels.
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{ENCODED}@", 1)


class ProcessWatcher(threading.Thread):
    """Polls every process's argv while a backup runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.pg_dump_seen: list[str] = []
        self.leaks: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for argv in command_lines().values():
                if "pg_dump" in argv and "--format" in argv:
                    self.pg_dump_seen.append(argv)
                if PASSWORD in argv or ENCODED in argv:
                    self.leaks.append(argv)
            time.sleep(0.001)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cli = str(Path(sys.executable).with_name("openwatch-backup"))
    return subprocess.run([cli, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def test_password_never_leaks(bulky_db: str, openwatch_db: str, tmp_path: Path, make_service,
                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    backup_dir = tmp_path / "backups"
    url = _with_password(bulky_db)
    assert PASSWORD not in url
    assert ENCODED in url
    make_service(url, backup_dir)  # db upgrade
    env = {"OPENWATCH_DATABASE_URL": url, "OPENWATCH_BACKUP_DIR": str(backup_dir)}

    watcher = ProcessWatcher()
    watcher.start()
    try:
        ok = _cli("backup", "--json", env=env)
        failed_dump = _cli("backup", "--kind", "tables", "--tables", "nosuch", "--json", env=env)
        unreachable = _cli("backup", env={**env, "OPENWATCH_DATABASE_URL": url.replace(":5432/", ":1/")})
        bad_url = _cli("backup", env={**env, "OPENWATCH_DATABASE_URL": f"mysql://u:{PASSWORD}@h/db"})
    finally:
        watcher.stop.set()
        watcher.join()

    assert ok.returncode == 0, ok.stderr
    assert (failed_dump.returncode, unreachable.returncode, bad_url.returncode) == (5, 3, 2)
    assert watcher.pg_dump_seen, "the watcher never saw pg_dump running: this test proved nothing"
    assert watcher.leaks == []
    for result in (ok, failed_dump, unreachable, bad_url):
        for stream in (result.stdout, result.stderr):
            assert PASSWORD not in stream
            assert ENCODED not in stream
    assert "error: OPENWATCH_DATABASE_URL must start with postgresql://" in bad_url.stderr

    # Catalog rows, every column.
    with psycopg.connect(bulky_db) as conn:
        rows = [r[0] for r in conn.execute("SELECT row_to_json(r)::text FROM backup_runs r").fetchall()]
    assert len(rows) == 2
    assert all(PASSWORD not in row and ENCODED not in row for row in rows)
    # Every file we wrote that is not the dump itself (manifests), and the log records.
    stored = [p for p in backup_dir.rglob("*") if p.is_file()]
    assert [p.name.endswith(".manifest.json") for p in stored].count(True) == 1
    for path in stored:
        if path.name.endswith(".manifest.json"):
            text = path.read_text()
            assert PASSWORD not in text
            assert ENCODED not in text
    assert all(PASSWORD not in r.getMessage() and ENCODED not in r.getMessage() for r in caplog.records)
