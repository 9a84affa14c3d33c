"""Helpers for the restore tests: a lab around one live database, content snapshots, database listings
scoped to that database, a local health endpoint, forged manifests and the real CLI as a process.

Listings are scoped on purpose: other test sessions share the server, so "the databases of this test"
are the live database, the ones named after it (`<db>_pre_restore_...`) and the scratch databases of the
runs in its own catalog.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import manifest_name
from openwatch_backup.devstack import PostgresHandle
from openwatch_backup.service import BackupService
from tests.support.dbcompare import sequence_values, table_fingerprints
from tests.support.procs import children_named

CATALOG = "public.backup_runs"  # its rows are never in a dump; a full restore carries the live ones over
COPIES = "public.backup_copies"  # likewise
CANARY = "public.backup_canary"  # every backup (the safety backup too) rewrites its one row
CLI = Path(sys.executable).with_name("openwatch-backup")
SAFETY_PREFIX = "safety backup before restore"


@dataclass(frozen=True)
class Content:
    """What a restore must bring back: every table's fingerprint and every sequence's value."""

    tables: dict[str, tuple[int, str]]
    sequences: dict[str, int | None]


def content(url: str, *, skip: tuple[str, ...] = (CATALOG,)) -> Content:
    """backup_copies is the catalog's too: its rows come with the runs a full restore carries over."""
    return Content(tables=table_fingerprints(url, skip=(*skip, COPIES)), sequences=sequence_values(url))


def dbname_of(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def modify(url: str) -> None:
    """Changes after the backup: rows deleted and inserted (the identity sequences move on)."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM scan_findings WHERE id IN (SELECT id FROM scan_findings ORDER BY id LIMIT 10)")
        conn.execute("INSERT INTO scan_findings (scan_id, rule_id, title, severity, status) "
                     "SELECT id, 'added_after_backup', 'added after the backup', 'low', 'open' "
                     "FROM scans ORDER BY id LIMIT 1")
        conn.execute("INSERT INTO audit_logs (action, resource_type) VALUES ('after_backup', 'test')")


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def canary_nonces(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT nonce FROM backup_canary")]


def catalog_rows(url: str) -> set[tuple[str, str, str]]:
    """{(id, kind, status)} of backup_runs, read straight from the database (not through the service)."""
    with psycopg.connect(url) as conn:
        return {(str(i), str(k), str(s)) for i, k, s in conn.execute("SELECT id, kind, status FROM backup_runs")}


def databases_named_after(pg: PostgresHandle, live: str) -> list[str]:
    """The live database and every database whose name starts with `<live>_` (kept ones, say)."""
    with pg.connect() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname = %s OR starts_with(datname, %s) "
                            "ORDER BY 1", (live, live + "_")).fetchall()
    return [str(r[0]) for r in rows]


def scratch_databases_of(pg: PostgresHandle, run_ids: list[uuid.UUID]) -> list[str]:
    """The `owbscratch_<purpose>_<run>` databases that belong to these runs."""
    prefixes = {run_id.hex[:12] for run_id in run_ids}
    with pg.connect() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, 'owbscratch_') "
                            "ORDER BY 1").fetchall()
    return [str(r[0]) for r in rows if str(r[0]).rsplit("_", 1)[-1] in prefixes]


def database_exists(pg: PostgresHandle, name: str) -> bool:
    with pg.connect() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def server_major(pg: PostgresHandle) -> int:
    with pg.connect() as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class Lab:
    """One live OpenWatch database, its backup folder and a service on it."""

    pg: PostgresHandle
    url: str
    backup_dir: Path
    service: BackupService

    @property
    def name(self) -> str:
        return dbname_of(self.url)

    def backup(self, kind: BackupKind = BackupKind.FULL, compression: Compression = Compression.ZSTD) -> BackupRun:
        run = self.service.backup(self.service.build_request(kind, compression))
        assert run.status == "succeeded", run.error
        return run

    def manifest(self, run: BackupRun) -> Manifest:
        manifest = self.service.manifest_of(run)
        assert manifest is not None
        return manifest

    def run_ids(self) -> list[uuid.UUID]:
        return [run.id for run in self.service.list_runs(limit=1000)]

    def runs(self) -> list[BackupRun]:
        return self.service.list_runs(limit=1000)

    def safety_runs(self) -> list[BackupRun]:
        return [r for r in self.runs() if (r.requested_by or "").startswith(SAFETY_PREFIX)]

    def only_restore_run(self) -> BackupRun:
        restores = self.service.list_runs(kind="restore")
        assert len(restores) == 1, [(r.id, r.status) for r in restores]
        return restores[0]

    def leftovers(self) -> list[str]:
        """Scratch databases of this catalog's runs: a finished restore leaves none."""
        return scratch_databases_of(self.pg, self.run_ids())

    def artifact(self, run: BackupRun) -> Path:
        return self.backup_dir / "postgres" / str(run.details["artifact"])


def forge_manifest(lab: Lab, run: BackupRun, **changes: Any) -> None:
    """Rewrite a backup's manifest with `changes` and record the new file's sha256 in the catalog, as a
    backup taken that way would have: quick verify passes, only the changed facts differ."""
    path = lab.backup_dir / "postgres" / manifest_name(str(run.details["artifact"]))
    data = json.loads(path.read_bytes())
    data.update(changes)
    raw = (json.dumps(data, indent=2) + "\n").encode()
    path.write_bytes(raw)
    with psycopg.connect(lab.url) as conn:
        conn.execute("UPDATE backup_runs SET details = jsonb_set(details, '{manifest_sha256}', to_jsonb(%s::text)) "
                     "WHERE id = %s", (hashlib.sha256(raw).hexdigest(), run.id))


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Corrupt one byte in place (the size stays the same, so only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    where = len(data) // 2 if offset is None else offset
    data[where] ^= 0xFF
    path.write_bytes(bytes(data))


def backend_dir(root: Path, *revisions: str) -> Path:
    """An OpenWatch backend folder whose alembic/versions declare exactly these revisions."""
    versions = root / "alembic" / "versions"
    versions.mkdir(parents=True)
    for revision in revisions:
        (versions / f"{revision}.py").write_text(
            f'"""{revision}"""\nrevision = "{revision}"\ndown_revision = "033_previous"\n\n\n'
            "def upgrade() -> None:\n    pass\n")
    return root


def cli_env(url: str, backup_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for the CLI as a process: ours without PG* and OPENWATCH_*, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "OPENWATCH_"))}
    env.update({"OPENWATCH_DATABASE_URL": url, "OPENWATCH_BACKUP_DIR": str(backup_dir),
                "OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR": "/nonexistent"})
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


class HealthServer:
    """A local HTTP endpoint answering every GET with `status`; records the paths asked for."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths.append(self.path)
                body = b'{"status": "ok"}' if server.status == 200 else b'{"status": "down"}'
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/health"

    def __enter__(self) -> HealthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


@contextmanager
def health_server(status: int) -> Iterator[HealthServer]:
    with HealthServer(status) as server:
        yield server


def process_gone(pid: int) -> bool:
    """True once pid has exited (a zombie whose parent died counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class Tracker(Protocol):
    def track(self, name: str) -> str: ...


class DatabaseFactory(Tracker, Protocol):
    """conftest's `make_database` fixture, as these tests use it."""

    def __call__(self, prefix: str = "t", *, template: str | None = None) -> str: ...

    def new_name(self, prefix: str = "t") -> str: ...


ServiceFactory = Callable[..., BackupService]


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PG* or OPENWATCH_* variable of the outer environment reaches the settings or the children."""
    for name in list(os.environ):
        if name.startswith(("PG", "OPENWATCH_")):
            monkeypatch.delenv(name)


def open_lab(pg: PostgresHandle, url: str, backup_dir: Path, make_service: ServiceFactory,
             **settings: Any) -> Lab:
    settings.setdefault("openwatch_backend_dir", backup_dir.parent / "no-backend")  # the gate: skipped
    return Lab(pg=pg, url=url, backup_dir=backup_dir, service=make_service(url, backup_dir, **settings))


def track_leftovers(lab: Lab, tracker: Tracker) -> None:
    """At teardown: have every database this test caused dropped (kept ones, --into targets named after
    the live database, scratch databases of its runs), whatever the test's outcome."""
    for name in databases_named_after(lab.pg, lab.name):
        tracker.track(name)
    with contextlib.suppress(Exception):  # the catalog may be gone with a broken live database
        for name in lab.leftovers():
            tracker.track(name)


def release_hung_children(name: str, timeout: float = 10) -> list[int]:
    """Kill (by pid) the children of this process called `name` that a package bug left hanging, reap them and
    let their feeders' threads and pipes go here, with their ResourceWarnings, not in a later test."""
    pids = children_named(os.getpid(), name)  # hung ones and zombies nobody waited for
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(process_gone(pid) for pid in pids):
            time.sleep(0.02)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        time.sleep(0.2)  # the drain threads see EOF and end
        gc.collect()
    return pids
