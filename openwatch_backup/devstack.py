"""The embedded local stack for the demo and the tests: PostgreSQL, Redis and a seeded demo database.

Each `ensure_*` function reuses a server that already answers on its standard loopback port, and otherwise
starts a throwaway one that belongs to the caller: on a free port, bound to 127.0.0.1 only, its files under
`var_dir`, stopped (and its files removed) by `handle.stop()`, by leaving a `with handle:` block, or at the
latest when the Python process exits normally. A throwaway server records which process owns it; the next
`ensure_*` call with the same `var_dir` stops and removes throwaway servers whose owner has died (a killed
run), so nothing started here outlives its owner for long.

PostgreSQL refuses to run as root; as root the cluster is created and run as the `postgres` system user
(through `runuser`), in a folder that user owns.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Self
from urllib.parse import quote, urlencode

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import TupleRow

from openwatch_backup.core.dsn import parse_database_url
from openwatch_backup.errors import BackupError

__all__ = [
    "DEFAULT_PG_PORT",
    "DEFAULT_REDIS_PORT",
    "LOOPBACK",
    "DevstackError",
    "PostgresHandle",
    "RedisHandle",
    "create_database",
    "database_exists",
    "drop_database",
    "drop_orphan_databases",
    "ensure_demo_database",
    "ensure_postgres",
    "ensure_redis",
    "find_pg_bin_dir",
    "pick_free_port",
    "port_is_open",
    "postgres_answers",
    "postgres_from_url",
    "redis_answers",
    "scratch_database_name",
]

LOOPBACK = "127.0.0.1"
DEFAULT_PG_PORT = 5432
DEFAULT_REDIS_PORT = 6379
PG_PACKAGES = "postgresql-15 postgresql-client-15"
REDIS_PACKAGES = "redis-server"
_OWNER_FILE = "owner.pid"
_TMP_PG_PREFIX = "owb-pg-"
_START_ATTEMPTS = 3
# A unix socket path must fit in sockaddr_un (108 bytes, with the ".s.PGSQL.NNNNN" file name).
_MAX_SOCKET_DIR = 80


class DevstackError(BackupError):
    """The local stack could not be found or started. The message names the cause and the fix."""

    code = "devstack"


# --------------------------------------------------------------------------------------------- helpers


def port_is_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pick_free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (PID 1 here may not reap daemons' zombies)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    # The state follows the command name, which is in parentheses and may itself hold spaces.
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        return int(first)
    except (OSError, ValueError):
        return None


def _wait_for(pid: int, timeout: float) -> bool:
    """Wait until process `pid` has exited; True if it did within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _kill_pid(pid: int, *, expect: str, timeout: float = 10.0) -> None:
    """Stop process `pid` if its command line contains `expect`: SIGTERM, then SIGKILL."""
    if not _pid_alive(pid) or expect not in _cmdline(pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_for(pid, timeout):
            return


def _is_root() -> bool:
    return os.geteuid() == 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _run(argv: Sequence[str], *, log: Path, as_user: str | None = None, cwd: Path | None = None,
         timeout: float = 120.0) -> int:
    """Run a command with stdin closed and its output appended to `log` (never a pipe: a daemon that
    inherits a pipe would keep us waiting). `as_user` runs it through `runuser -u USER --`."""
    command = list(argv)
    if as_user is not None:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise DevstackError("runuser (util-linux) is needed to run PostgreSQL as root; "
                                "install util-linux or run as a non-root user")
        command = [runuser, "-u", as_user, "--", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(command)}\n".encode())
        out.flush()
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  cwd=cwd, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return -1
    return done.returncode


# --------------------------------------------------------------------------------------------- binaries


def _version_key(path: Path, pattern: str) -> int:
    match = re.fullmatch(pattern, path.name)
    return int(match.group(1)) if match else -1


def find_pg_bin_dir() -> Path:
    """The folder with initdb, pg_ctl, pg_dump, pg_restore and psql: `OPENWATCH_BACKUP_PG_BIN_DIR` if set,
    else the newest /usr/lib/postgresql/N/bin, else the newest /usr/pgsql-N/bin, else initdb's folder on
    PATH (symlinks resolved)."""
    override = os.environ.get("OPENWATCH_BACKUP_PG_BIN_DIR")
    if override:
        path = Path(override)
        if not (path / "initdb").is_file():
            raise DevstackError(f"OPENWATCH_BACKUP_PG_BIN_DIR={override} holds no initdb; "
                                "point it at PostgreSQL's bin folder (e.g. /usr/lib/postgresql/15/bin)")
        return path
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: _version_key(p.parent, r"(\d+)"), reverse=True)
    redhat = sorted(Path("/usr").glob("pgsql-*/bin"),
                    key=lambda p: _version_key(p.parent, r"pgsql-(\d+)"), reverse=True)
    for candidate in (*debian, *redhat):
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    raise DevstackError("PostgreSQL's server programs (initdb, pg_ctl) were not found; install them "
                        f"(Debian/Ubuntu: apt-get install {PG_PACKAGES}) or run scripts/bootstrap")


# --------------------------------------------------------------------------------------------- PostgreSQL


def postgres_answers(host: str = LOOPBACK, port: int = DEFAULT_PG_PORT, user: str = "postgres",
                     password: str | None = None, timeout: int = 2) -> bool:
    """True if a PostgreSQL server on host:port accepts `user` on database postgres and answers SELECT 1."""
    try:
        with psycopg.connect(host=host, port=port, user=user, password=password, dbname="postgres",
                             connect_timeout=timeout, autocommit=True) as conn:
            conn.execute("SELECT 1")
            return True
    except psycopg.Error:
        return False


@dataclass(eq=False)
class PostgresHandle:
    """A PostgreSQL server to use. `owned` servers were started by us and end with `stop()`."""

    host: str
    port: int
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    owned: bool = False
    cluster_dir: Path | None = None
    bin_dir: Path | None = None
    run_as: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    @property
    def data_dir(self) -> Path | None:
        return None if self.cluster_dir is None else self.cluster_dir / "data"

    @property
    def admin_url(self) -> str:
        """URL of the `postgres` maintenance database, for CREATE/DROP DATABASE."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """URL of database `dbname` on this server."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"postgresql://{auth}@{host}:{self.port}/{quote(dbname, safe='')}"
        return f"{url}?{urlencode(self.options)}" if self.options else url

    def connect(self, dbname: str = "postgres", *, autocommit: bool = True) -> psycopg.Connection[TupleRow]:
        """A new connection to `dbname` (autocommit by default, as CREATE/DROP DATABASE need)."""
        return psycopg.connect(self.url_for(dbname), autocommit=autocommit, connect_timeout=10)

    @property
    def postmaster_pid(self) -> int | None:
        data = self.data_dir
        return None if data is None else _read_pid(data / "postmaster.pid")

    def stop(self) -> None:
        """Stop an owned server (pg_ctl stop -m fast) and remove its files. Does nothing if not owned;
        safe to call twice."""
        if not self.owned or self.cluster_dir is None:
            return
        _stop_cluster(self.cluster_dir, self.bin_dir, self.run_as, mode="fast")
        self.owned = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def postgres_from_url(url: str) -> PostgresHandle:
    """A handle (not owned) for the server an existing URL points at; the URL's database is ignored."""
    target = parse_database_url(url)
    return PostgresHandle(host=target.host, port=target.port, user=target.user, password=target.password,
                          owned=False, options=target.options)


def _stop_cluster(cluster_dir: Path, bin_dir: Path | None, run_as: str | None, *, mode: str) -> None:
    data = cluster_dir / "data"
    pid = _read_pid(data / "postmaster.pid")
    if pid is not None and _pid_alive(pid):
        pg_ctl = str((bin_dir or find_pg_bin_dir()) / "pg_ctl")
        log = cluster_dir / "ctl.log"
        code = _run([pg_ctl, "-D", str(data), "-m", mode, "-w", "-t", "30", "stop"],
                    log=log, as_user=run_as, cwd=cluster_dir, timeout=45)
        if code != 0 or _pid_alive(pid):
            # pg_ctl could not do it (or the folder is damaged): end the postmaster itself.
            _kill_pid(pid, expect="postgres")
        _wait_for(pid, 10)
    shutil.rmtree(cluster_dir, ignore_errors=True)


def _owner_alive(cluster_dir: Path) -> bool:
    owner = _read_pid(cluster_dir / _OWNER_FILE)
    return owner is not None and _pid_alive(owner)


def _sweep_dead_clusters(bases: Sequence[Path], bin_dir: Path, run_as: str | None) -> None:
    """Stop and remove throwaway clusters whose owning process has died (a killed earlier run)."""
    for base in bases:
        if not base.is_dir():
            continue
        for cluster in base.glob(f"{_TMP_PG_PREFIX}*"):
            if not (cluster / _OWNER_FILE).exists():
                # Being created right now, or not ours: only remove it once it is clearly stale.
                with contextlib.suppress(OSError):
                    if time.time() - cluster.stat().st_mtime < 600:
                        continue
            elif _owner_alive(cluster):
                continue
            _stop_cluster(cluster, bin_dir, run_as, mode="immediate")


def _postgres_user() -> tuple[str, int, int]:
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise DevstackError("running as root needs the `postgres` system user to run PostgreSQL (apt-get "
                            f"install {PG_PACKAGES} creates it), or run as a non-root user") from None
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _make_cluster_dir(var_dir: Path, run_as: str | None) -> Path:
    """A new empty folder for one cluster, that the server's user can reach and write."""
    bases = [var_dir / "pg", Path(tempfile.gettempdir())]
    for base in bases:
        base.mkdir(parents=True, exist_ok=True)
        cluster = Path(tempfile.mkdtemp(prefix=_TMP_PG_PREFIX, dir=base))
        if run_as is None:
            return cluster
        _, uid, gid = _postgres_user()
        os.chown(cluster, uid, gid)
        # The server user needs every parent folder to be searchable (pytest's and root's own
        # temporary folders are mode 0700): check it from that user's side.
        if _run(["test", "-w", str(cluster), "-a", "-x", str(cluster)], log=Path(os.devnull),
                as_user=run_as, timeout=30) == 0:
            return cluster
        shutil.rmtree(cluster, ignore_errors=True)
    tried = ", ".join(map(str, bases))
    raise DevstackError(f"no folder found that the postgres user can write (tried {tried})")


def _start_cluster(var_dir: Path) -> PostgresHandle:
    bin_dir = find_pg_bin_dir()
    run_as = _postgres_user()[0] if _is_root() else None
    var_dir.mkdir(parents=True, exist_ok=True)
    _sweep_dead_clusters([var_dir / "pg", Path(tempfile.gettempdir())], bin_dir, run_as)

    cluster = _make_cluster_dir(var_dir, run_as)
    data = cluster / "data"
    log = cluster / "server.log"
    setup_log = cluster / "setup.log"
    for path in (log, setup_log):
        path.touch()
        if run_as is not None:
            _, uid, gid = _postgres_user()
            os.chown(path, uid, gid)
    (cluster / _OWNER_FILE).write_text(f"{os.getpid()}\n")

    code = _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
                 "-E", "UTF8", "--locale=C", "--no-instructions"],
                log=setup_log, as_user=run_as, cwd=cluster, timeout=180)
    if code != 0:
        detail = _tail(setup_log)
        shutil.rmtree(cluster, ignore_errors=True)
        raise DevstackError(f"initdb failed (exit {code}): {detail}")

    socket_dir = str(cluster) if len(str(cluster)) <= _MAX_SOCKET_DIR else ""
    handle = PostgresHandle(host=LOOPBACK, port=0, owned=True, cluster_dir=cluster, bin_dir=bin_dir,
                            run_as=run_as)
    atexit.register(handle.stop)
    for _attempt in range(_START_ATTEMPTS):
        port = pick_free_port()
        server_options = [
            "-p", str(port),
            "-c", f"listen_addresses={LOOPBACK}",
            "-c", f"unix_socket_directories={socket_dir}",
            # A throwaway server: durability buys nothing, speed does.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]
        code = _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                     "-o", shlex.join(server_options), "start"],
                    log=setup_log, as_user=run_as, cwd=cluster, timeout=90)
        if code == 0 and postgres_answers(LOOPBACK, port):
            handle.port = port
            return handle
        # Most likely another process took the port between our pick and the server's bind: retry.
        _stop_cluster_keep_files(data, bin_dir, run_as, cluster)
    detail = _tail(log) or _tail(setup_log)
    handle.stop()
    raise DevstackError(f"PostgreSQL did not start after {_START_ATTEMPTS} attempts: {detail}")


def _stop_cluster_keep_files(data: Path, bin_dir: Path, run_as: str | None, cluster: Path) -> None:
    pid = _read_pid(data / "postmaster.pid")
    if pid is not None and _pid_alive(pid):
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
             log=cluster / "ctl.log", as_user=run_as, cwd=cluster, timeout=45)
        _kill_pid(pid, expect="postgres")


def ensure_postgres(var_dir: Path, *, reuse: bool = True, host: str = LOOPBACK, port: int = DEFAULT_PG_PORT,
                    user: str = "postgres") -> PostgresHandle:
    """A PostgreSQL server to use.

    With `reuse` (the default), a server that accepts `user` without a password on host:port is used as it
    is (`owned=False`). Otherwise, or if none answers, a throwaway cluster is created under `var_dir/pg`
    (or the system's temporary folder when, as root, the postgres user cannot reach `var_dir`), started on
    a free loopback port and returned with `owned=True`: `stop()` ends it and removes its files.
    """
    if reuse and postgres_answers(host, port, user):
        return PostgresHandle(host=host, port=port, user=user, owned=False)
    return _start_cluster(Path(var_dir).absolute())


# --------------------------------------------------------------------------------------------- databases


def create_database(pg: PostgresHandle, name: str, *, template: str | None = None) -> bool:
    """CREATE DATABASE `name` (optionally from `template`); False if it already existed."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with pg.connect() as conn:
        try:
            conn.execute(query)
        except pg_errors.DuplicateDatabase:
            return False
    return True


def drop_database(pg: PostgresHandle, name: str) -> None:
    """DROP DATABASE IF EXISTS `name` WITH (FORCE): open sessions on it are ended first."""
    with pg.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_exists(pg: PostgresHandle, name: str) -> bool:
    with pg.connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


SCRATCH_PREFIX = "owb_"
_SCRATCH_NAME = re.compile(r"^owb_[a-z0-9]+_(\d+)_[0-9a-f]+$")


def scratch_database_name(tag: str = "t") -> str:
    """A new database name `owb_<tag>_<pid>_<8 hex>` that records which process made it, so that
    `drop_orphan_databases` can tell leftovers of dead processes from databases still in use."""
    clean = re.sub(r"[^a-z0-9]", "", tag.lower())[:20] or "t"
    return f"{SCRATCH_PREFIX}{clean}_{os.getpid()}_{secrets.token_hex(4)}"


def drop_orphan_databases(pg: PostgresHandle) -> list[str]:
    """Drop the scratch databases (see `scratch_database_name`) whose process is no longer alive; returns
    their names. Other databases, and those of live processes, are left alone."""
    with pg.connect() as conn:
        names = [str(row[0]) for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'owb\\_%' ESCAPE '\\'")]
    dropped = []
    for name in names:
        match = _SCRATCH_NAME.match(name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        drop_database(pg, name)
        dropped.append(name)
    return dropped


def _load_sample() -> ModuleType:
    """openwatch_backup.sample, imported only when needed (only the demo and the tests use it)."""
    try:
        sample = importlib.import_module("openwatch_backup.sample")
    except ImportError as exc:
        raise DevstackError(f"the sample data module openwatch_backup.sample cannot be imported: {exc}") from exc
    lacking = [name for name in ("create_schema", "is_seeded", "seed") if not hasattr(sample, name)]
    if lacking:
        raise DevstackError(f"openwatch_backup.sample lacks {', '.join(lacking)}")
    return sample


def ensure_demo_database(pg: PostgresHandle, name: str = "openwatch_demo", target_mib: float = 20) -> str:
    """Create database `name` if missing and seed it with sample OpenWatch data unless already seeded
    (schema and seed run in one transaction). Returns the database's URL."""
    sample = _load_sample()
    create_database(pg, name)
    url = pg.url_for(name)
    with psycopg.connect(url, connect_timeout=10) as conn:
        seeded = sample.is_seeded(conn)
        conn.rollback()  # end is_seeded's read transaction: schema and seed get one of their own
        if not seeded:
            sample.create_schema(conn)
            sample.seed(conn, target_mib=target_mib)
            conn.commit()
    return url


# --------------------------------------------------------------------------------------------- Redis


def redis_answers(host: str = LOOPBACK, port: int = DEFAULT_REDIS_PORT, timeout: float = 2.0) -> bool:
    """True if a Redis server on host:port answers PING with PONG (no password needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n") and len(reply) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"+PONG")


@dataclass(eq=False)
class RedisHandle:
    """A Redis server to use. `owned` servers were started by us and end with `stop()`."""

    host: str
    port: int
    db: int = 0
    owned: bool = False
    server_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    @property
    def pid(self) -> int | None:
        return None if self.server_dir is None else _read_pid(self.server_dir / "redis.pid")

    def stop(self) -> None:
        """Stop an owned server by its pid and remove its files; safe to call twice."""
        if not self.owned or self.server_dir is None:
            return
        _stop_redis_dir(self.server_dir)
        self.owned = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _stop_redis_dir(server_dir: Path) -> None:
    pid = _read_pid(server_dir / "redis.pid")
    if pid is not None:
        _kill_pid(pid, expect="redis-server")
    shutil.rmtree(server_dir, ignore_errors=True)


def _redis_dirs(base: Path) -> Iterator[Path]:
    return base.glob("redis-*") if base.is_dir() else iter(())


def ensure_redis(var_dir: Path, *, reuse: bool = True, host: str = LOOPBACK,
                 port: int = DEFAULT_REDIS_PORT) -> RedisHandle:
    """A Redis server to use: the one answering PING on host:port if `reuse`, else a throwaway one on a
    free loopback port with nothing on disk (`owned=True`; `stop()` ends it by pid)."""
    if reuse and redis_answers(host, port):
        return RedisHandle(host=host, port=port, owned=False)
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevstackError(f"redis-server was not found; install it (apt-get install {REDIS_PACKAGES}) "
                            "or run scripts/bootstrap")
    base = Path(var_dir).absolute() / "redis"
    base.mkdir(parents=True, exist_ok=True)
    for stale in _redis_dirs(base):
        if (stale / _OWNER_FILE).exists() and not _owner_alive(stale):
            _stop_redis_dir(stale)

    server_dir = Path(tempfile.mkdtemp(prefix="redis-", dir=base))
    (server_dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    handle = RedisHandle(host=LOOPBACK, port=0, owned=True, server_dir=server_dir)
    atexit.register(handle.stop)
    log = server_dir / "redis.log"
    pidfile = server_dir / "redis.pid"
    for _attempt in range(_START_ATTEMPTS):
        free = pick_free_port()
        code = _run([binary, "--port", str(free), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
                     "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(server_dir),
                     "--logfile", str(log)], log=server_dir / "start.log", cwd=server_dir, timeout=30)
        deadline = time.monotonic() + 15
        while code == 0 and time.monotonic() < deadline:
            if redis_answers(LOOPBACK, free, timeout=0.5):
                handle.port = free
                return handle
            pid = _read_pid(pidfile)
            if pid is not None and not _pid_alive(pid):
                break  # it died (port taken?): try another port
            time.sleep(0.05)
        pid = _read_pid(pidfile)
        if pid is not None:
            _kill_pid(pid, expect="redis-server")
        pidfile.unlink(missing_ok=True)
    detail = _tail(log) or _tail(server_dir / "start.log")
    handle.stop()
    raise DevstackError(f"redis-server did not start after {_START_ATTEMPTS} attempts: {detail}")
