"""Real Celery for the tests: a throwaway Redis per test module, OpenWatch's worker and beat started as
subprocesses the way OpenWatch starts them, bounded waits, and teardown by PID.

Every process is started in a session of its own (`start_new_session`), so whatever it forks (pool
processes, pg_dump) keeps that session id even after its parent died. Stopping reads /proc for the
members of that session and signals them one by one by PID: SIGTERM, then SIGKILL after a grace period.
Nothing started here outlives the test that started it (and a child gets SIGKILL if pytest itself dies).

Fixtures are imported by the test modules that use them, under their `*_fixture` function names
(`from tests.celery_support import processes_fixture  # noqa: F401`); pytest registers them by `name`.
Tests whose sweeper runs use `private_db`/`private_bulky_db` on a throwaway PostgreSQL server of their
module (see `private_pg_fixture` for why).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from celery import Celery
from sqlalchemy import text

from openwatch_backup import devstack
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.service import BackupService
from tests.support.procs import command_lines

REPO = Path(__file__).resolve().parents[1]
APP_MODULE = "tests.openwatch_app.celery_app"
APP_FILE = REPO / "tests" / "openwatch_app" / "celery_app.py"
# OpenWatch's worker command (docker-compose.yml): every queue it has.
OPENWATCH_QUEUES = "default,scans,results,maintenance,monitoring,host_monitoring,health_monitoring,compliance_scanning"
CLI = Path(sys.executable).with_name("openwatch-backup")

T = TypeVar("T")


# --- bounded waits ---------------------------------------------------------------------------------------
def wait_for(check: Callable[[], T | None], *, timeout: float, what: str,
             context: Callable[[], str] | None = None, interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` s saying what we waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{context()}" if context else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{detail}", pytrace=False)
        time.sleep(interval)


# --- the process table -----------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces or parentheses; what follows the last ')' is fixed: state ppid pgrp session.
    return stat.rsplit(")", 1)[1].split()


def session_members(sid: int) -> dict[int, str]:
    """{pid: comm} of the live (non-zombie) processes whose session id is `sid`."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None or fields[0] == "Z" or int(fields[3]) != sid:
            continue
        try:
            found[int(entry)] = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
    return found


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


# --- processes -------------------------------------------------------------------------------------------
def pg_dumps_for(database: str) -> list[int]:
    """Every pg_dump on this machine (wherever it was reparented) that dumps `database` (its PGDATABASE)."""
    found = []
    for pid, argv in command_lines().items():
        if not any(Path(word).name == "pg_dump" for word in argv.split()[:2]) or "--format=" not in argv:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PGDATABASE={database}".encode() in environ:
            found.append(pid)
    return sorted(found)


def process_env(**values: object) -> dict[str, str]:
    """This process's environment without OpenWatch/plugin/test settings or PG* variables, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENWATCH_", "OWB_", "PG", "CELERY_", "PYTEST_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in values.items()})
    return env


@dataclass
class Proc:
    """A process we started in its own session; `stop()` ends it and everything it forked, by PID."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        shown = "\n".join(self.log().splitlines()[-lines:])
        return f"--- last lines of {self.name} log ({self.log_path}) ---\n{shown}"

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def wait_for_log(self, pattern: str, *, timeout: float, count: int = 1) -> None:
        def seen() -> bool:
            if not self.running():
                pytest.fail(f"{self.name} exited with status {self.popen.returncode} while we waited for "
                            f"{pattern!r}\n{self.tail()}", pytrace=False)
            return self.count(pattern) >= count

        wait_for(seen, timeout=timeout, what=f"{count} x {pattern!r} in the {self.name} log", context=self.tail)

    def members(self) -> dict[int, str]:
        """Everything alive in this process's session (itself, pool processes, pg_dump...)."""
        return session_members(self.pid)

    def pids_named(self, comm: str) -> list[int]:
        return sorted(pid for pid, name in self.members().items() if name == comm)

    def dumping(self) -> list[int]:
        """pg_dump processes of this session that are dumping (`--format=`), not `pg_dump --version` probes (nor
        processes gone before their command line could be read)."""
        return [pid for pid in self.pids_named("pg_dump") if "--format=" in cmdline(pid)]

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the leader, wait up to `grace` s for the whole session to go, then SIGKILL what is left."""
        members = self.members()
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self.running() or any(alive(p) for p in self.members())):
            time.sleep(0.1)
        for pid in {*members, *self.members()}:
            if alive(pid) and pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        wait_for(lambda: not self.members(), timeout=10, what=f"every process of {self.name} to exit",
                 context=lambda: f"left: {self.members()}")


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it if the test process dies (even by SIGKILL, when no teardown runs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Processes:
    """Starts OpenWatch's worker and beat (and anything else) for one test; `stop_all()` at teardown."""

    def __init__(self, log_dir: Path, base_env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.base_env = base_env
        self.started: list[Proc] = []
        self._numbers = itertools.count(1)

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Proc:
        """Start argv with `env` (default: the base environment), its output in the test's log folder."""
        log_path = self.log_dir / f"{next(self._numbers):02d}-{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(argv, cwd=REPO, env=dict(env if env is not None else self.base_env),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        proc = Proc(name, argv, log_path, popen)
        self.started.append(proc)
        return proc

    def worker(self, env: Mapping[str, str] | None = None, *, concurrency: int = 2,
               ready_timeout: float = 45) -> Proc:
        """`python -m celery -A <OpenWatch's app> worker --loglevel=info -Q <OpenWatch's queues>`, waited ready."""
        node = f"owbtest-{uuid.uuid4().hex[:8]}@%h"
        proc = self.start("worker", [sys.executable, "-m", "celery", "-A", APP_MODULE, "worker", "--loglevel=info",
                                     "-Q", OPENWATCH_QUEUES, f"--concurrency={concurrency}", "-n", node], env)
        proc.wait_for_log(r"\bready\.", timeout=ready_timeout)
        return proc

    def beat(self, env: Mapping[str, str] | None = None) -> Proc:
        """`python -m celery -A <OpenWatch's app> beat --loglevel=info` with its state file in the test's folder."""
        schedule = self.log_dir / f"beat-schedule-{next(self._numbers)}"
        proc = self.start("beat", [sys.executable, "-m", "celery", "-A", APP_MODULE, "beat", "--loglevel=info",
                                   "--schedule", str(schedule)], env)
        proc.wait_for_log(r"beat: Starting\.\.\.", timeout=30)
        return proc

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.started)

    def stop_all(self) -> None:
        errors = []
        for proc in reversed(self.started):
            try:
                proc.stop()
            except BaseException as exc:  # keep stopping the others; report at the end
                errors.append(f"{proc.name}: {exc}")
        if errors:
            pytest.fail("could not stop every process: " + "; ".join(errors), pytrace=False)


# --- Redis and the client app ----------------------------------------------------------------------------
def restart_redis(handle: devstack.RedisHandle, *, down_seconds: float) -> None:
    """Stop our throwaway Redis by its PID, wait `down_seconds`, start a new one on the same port with the same
    files (so `handle.stop()` still ends it). Nothing is persisted: queued messages are lost, as in OpenWatch's
    Redis without a volume."""
    assert handle.owned, "only a Redis this test started may be restarted"
    assert handle.server_dir is not None
    pid = handle.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), timeout=10, what=f"Redis {pid} to stop")
    assert not devstack.redis_answers(handle.host, handle.port, timeout=0.2)
    time.sleep(down_seconds)
    directory = handle.server_dir
    subprocess.run(["redis-server", "--port", str(handle.port), "--bind", handle.host, "--save", "", "--appendonly",
                    "no", "--daemonize", "yes", "--pidfile", str(directory / "redis.pid"), "--dir", str(directory),
                    "--logfile", str(directory / "redis.log")], check=True, timeout=30, capture_output=True)
    wait_for(lambda: devstack.redis_answers(handle.host, handle.port, timeout=0.5), timeout=15,
             what="the restarted Redis to answer")


@dataclass
class RedisBox:
    """A throwaway Redis of this test module (from devstack), with a fresh database number per test."""

    handle: devstack.RedisHandle
    next_db: Iterator[int] = field(default_factory=lambda: itertools.count(0))

    def url(self) -> str:
        number = next(self.next_db)
        assert number < 16, "a test module may use at most 16 Redis databases"
        return f"redis://{self.handle.host}:{self.handle.port}/{number}"


_app_numbers = itertools.count(1)


def _app_source() -> Path:
    """The file that builds OpenWatch's app. tests/openwatch_app/celery_app.py re-exports the one in the package's
    devstack (the demo stack uses it too); an older tree built it in the tests folder itself."""
    spec = importlib.util.find_spec("openwatch_backup.devstack.celery_app")
    return Path(spec.origin) if spec is not None and spec.origin else APP_FILE


def load_openwatch_app(redis_url: str, **env: str) -> Celery:
    """A fresh copy of OpenWatch's app module (its exact configuration and `install` line), executed anew with
    OPENWATCH_REDIS_URL=redis_url (and `env`): what OpenWatch's backend uses to send tasks. Not the imported
    module: that one is built once per process, bound to whatever Redis URL the environment had then."""
    values = {"OPENWATCH_REDIS_URL": redis_url, **env}
    saved = {k: os.environ.get(k) for k in values}
    spec = importlib.util.spec_from_file_location(f"owb_openwatch_app_{next(_app_numbers)}", _app_source())
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        os.environ.update(values)
        spec.loader.exec_module(module)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    app: Celery = module.celery_app
    assert app.conf.broker_url == redis_url, f"the app module did not take OPENWATCH_REDIS_URL ({app.conf.broker_url})"
    return app


# --- the catalog ------------------------------------------------------------------------------------------
def all_runs(service: BackupService) -> list[BackupRun]:
    return service.recorder.list(limit=1000, oldest_first=True)


def describe_runs(service: BackupService) -> str:
    lines = ["--- backup_runs (oldest first) ---"]
    try:
        for r in all_runs(service):
            lines.append(f"{str(r.id)[:8]} {r.kind:<7} {r.status:<10} trigger={r.trigger} phase={r.phase} "
                         f"parent={str(r.parent_id)[:8] if r.parent_id else '-'} code={r.error_code} "
                         f"error={(r.error or '')[:160]}")
    except Exception as exc:
        lines.append(f"(cannot read the catalog: {exc})")
    return "\n".join(lines)


def wait_for_run(service: BackupService, run_id: uuid.UUID | str, statuses: tuple[str, ...] | str, *,
                 timeout: float, context: Callable[[], str] | None = None) -> BackupRun:
    """Poll the catalog until run `run_id` has one of `statuses`; fail with the catalog and the logs."""
    wanted = (statuses,) if isinstance(statuses, str) else statuses

    def check() -> BackupRun | None:
        run = service.get_run(str(run_id))
        return run if run.status in wanted else None

    def explain() -> str:
        return describe_runs(service) + ("\n" + context() if context else "")

    return wait_for(check, timeout=timeout, what=f"run {str(run_id)[:8]} to be {'/'.join(wanted)}", context=explain)


def files(root: Path) -> list[str]:
    """Every file below root, as sorted relative paths."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def artifact_files(run: BackupRun) -> list[str]:
    """What a successful backup leaves in the backup directory: its artifact and its manifest."""
    artifact = run.details["artifact"]
    return [f"postgres/{artifact}", f"postgres/{artifact}.manifest.json"]


def partial_files(backup_dir: Path) -> list[Path]:
    return sorted(p for p in backup_dir.rglob("*.partial") if p.is_file()) if backup_dir.exists() else []


@dataclass(frozen=True)
class Dump:
    pg_dump: int
    pool_process: int
    partial: Path


def wait_for_dump(worker: Proc, backup_dir: Path, *, timeout: float = 60) -> Dump:
    """Wait until the worker is mid-dump: a pg_dump runs in its session and bytes reached the `.partial` file."""
    def dumping() -> Dump | None:
        partial = [p for p in partial_files(backup_dir) if p.stat().st_size > 0]
        for pid in worker.dumping():
            parent = parent_of(pid)
            if partial and parent is not None:
                return Dump(pid, parent, partial[0])
        return None

    return wait_for(dumping, timeout=timeout, what="the worker to be in the middle of a dump", context=worker.tail,
                    interval=0.02)


def scratch_databases(service: BackupService, runs: list[BackupRun]) -> list[str]:
    """`owbscratch_%` databases on the server that belong to these runs."""
    prefixes = tuple(r.id.hex[:12] for r in runs)
    with service.engine.connect() as conn:
        names = [str(n) for n in conn.execute(text(
            "SELECT datname FROM pg_database WHERE datname LIKE 'owbscratch\\_%'")).scalars()]
    return [n for n in names if n.endswith(prefixes)]


def plugin_env(url: str, backup_dir: Path, redis_url: str, **settings: Any) -> dict[str, str]:
    """Environment of a worker/beat: OpenWatch's database and Redis, the plugin's settings as OPENWATCH_BACKUP_*."""
    env = {"OPENWATCH_DATABASE_URL": url, "OPENWATCH_REDIS_URL": redis_url, "OPENWATCH_BACKUP_DIR": str(backup_dir)}
    for key, value in settings.items():
        env[key if key.startswith(("OWB_", "OPENWATCH_")) else "OPENWATCH_BACKUP_" + key.upper()] = str(value)
    return process_env(**env)


# --- a webhook receiver ----------------------------------------------------------------------------------
@dataclass
class Delivery:
    path: str
    content_type: str
    body: dict[str, Any]


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (random port) in a thread, recording every JSON POST; answers 200."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.deliveries: list[Delivery] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(Delivery(self.path, self.headers.get("Content-Type", ""), json.loads(raw)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The webhook URL; its path holds a secret token, as real webhook URLs do."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/{self.token}"

    def events(self, name: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.body.get("event") == name]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# --- fixtures: a test module imports the *_fixture functions it needs (pytest registers them by name) -----
BULKY_MIB = 40  # as tests/conftest.py's bulky_db


@pytest.fixture(scope="module", name="module_redis")
def module_redis_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisBox]:
    """A throwaway Redis server owned by this test module (never the machine's 6379)."""
    handle = devstack.ensure_redis(tmp_path_factory.mktemp("redis"), reuse=False)
    try:
        yield RedisBox(handle)
    finally:
        handle.stop()


@pytest.fixture(name="broker_url")
def broker_url_fixture(module_redis: RedisBox) -> str:
    """A Redis database of its own for this test, on the module's throwaway server."""
    return module_redis.url()


@pytest.fixture(name="processes")
def processes_fixture(tmp_path: Path) -> Iterator[Processes]:
    """Start workers/beat with `processes.worker(plugin_env(...))`; all stopped by PID at teardown."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    procs = Processes(log_dir, process_env())
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture(name="client_app")
def client_app_fixture(broker_url: str) -> Iterator[Celery]:
    """OpenWatch's app as its backend holds it, bound to this test's Redis database."""
    app = load_openwatch_app(broker_url)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(name="webhook")
def webhook_fixture() -> Iterator[WebhookReceiver]:
    """A local webhook receiver; `webhook.url` for OPENWATCH_BACKUP_WEBHOOK_URL, `webhook.deliveries` after."""
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module", name="private_pg")
def private_pg_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.PostgresHandle]:
    """A throwaway PostgreSQL server of this module, for tests whose sweeper runs. The sweeper drops every
    `owbscratch_%` database on its server that its own catalog does not know as running: on the shared server it
    would drop the scratch databases of other test sessions in the middle of their restores."""
    handle = devstack.ensure_postgres(tmp_path_factory.mktemp("pg"), reuse=False)
    try:
        yield handle
    finally:
        handle.stop()


def _private_database(pg: devstack.PostgresHandle, prefix: str, filler_mib: int) -> str:
    name = devstack.scratch_database_name(prefix)
    devstack.create_database(pg, name)
    url = pg.url_for(name)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE hosts (id serial PRIMARY KEY, hostname text NOT NULL)")
        conn.execute("INSERT INTO hosts (hostname) SELECT 'host-' || g FROM generate_series(1, 100) g")
        if filler_mib:
            conn.execute("CREATE TABLE filler (id int PRIMARY KEY, payload text)")
            conn.execute("INSERT INTO filler SELECT g, string_agg(md5(g::text || ':' || i::text), '') "
                         "FROM generate_series(1, %s) g, generate_series(1, 32) i GROUP BY g",
                         (filler_mib * 1024 * 1024 // 1024,))
    return name


@pytest.fixture(name="private_db")
def private_db_fixture(private_pg: devstack.PostgresHandle) -> Iterator[str]:
    """URL of a small database (a `hosts` table) on the module's private server; dropped after the test."""
    name = _private_database(private_pg, "priv", 0)
    try:
        yield private_pg.url_for(name)
    finally:
        devstack.drop_database(private_pg, name)


@pytest.fixture(name="private_bulky_db")
def private_bulky_db_fixture(private_pg: devstack.PostgresHandle) -> Iterator[str]:
    """Like conftest's bulky_db (a ~40 MiB dump), on the module's private server; dropped after the test."""
    name = _private_database(private_pg, "privbulky", BULKY_MIB)
    try:
        yield private_pg.url_for(name)
    finally:
        devstack.drop_database(private_pg, name)
