"""PostgreSQL for the local stack: finding the server programs, the handle to a server, and throwaway
clusters (start on a free loopback port, stop and remove, sweep those of dead owners).

PostgreSQL refuses to run as root; as root the cluster is created and run as the `postgres` system user
(through `runuser`), in a folder that user owns.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, urlencode

import psycopg
from psycopg.rows import TupleRow

from openwatch_backup.core.dsn import parse_database_url
from openwatch_backup.devstack.errors import DevstackError
from openwatch_backup.devstack.processes import (
    _OWNER_FILE,
    _START_ATTEMPTS,
    LOOPBACK,
    _is_root,
    _kill_pid,
    _owner_alive,
    _pid_alive,
    _read_pid,
    _run,
    _tail,
    _wait_for,
    pick_free_port,
)

DEFAULT_PG_PORT = 5432
PG_PACKAGES = "postgresql-15 postgresql-client-15"
_TMP_PG_PREFIX = "owb-pg-"
# A unix socket path must fit in sockaddr_un (108 bytes, with the ".s.PGSQL.NNNNN" file name).
_MAX_SOCKET_DIR = 80


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
    server_options: tuple[str, ...] = ()  # what pg_ctl started an owned server with (start_again reuses them)

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

    def crash(self) -> None:
        """Stop an owned server as a crash would (`pg_ctl stop -m immediate`: no checkpoint, every session cut
        off), keeping its files for start_again()."""
        if not self.owned or self.cluster_dir is None or self.data_dir is None:
            raise DevstackError("only a server this process started can be crashed")
        code = _run([str(self.bin_dir or find_pg_bin_dir()) + "/pg_ctl", "-D", str(self.data_dir), "-m",
                     "immediate", "-w", "-t", "30", "stop"],
                    log=self.cluster_dir / "ctl.log", as_user=self.run_as, cwd=self.cluster_dir, timeout=45)
        if code != 0:
            raise DevstackError(f"pg_ctl stop -m immediate failed (exit {code}): {_tail(self.cluster_dir / 'ctl.log')}")

    def start_again(self) -> None:
        """Start an owned server that crash() stopped, on the same port (it runs crash recovery first)."""
        if not self.owned or self.cluster_dir is None or self.data_dir is None:
            raise DevstackError("only a server this process started can be started again")
        log = self.cluster_dir / "server.log"
        code = _run([str(self.bin_dir or find_pg_bin_dir()) + "/pg_ctl", "-D", str(self.data_dir), "-l", str(log),
                     "-w", "-t", "60", "-o", shlex.join(self.server_options), "start"],
                    log=self.cluster_dir / "setup.log", as_user=self.run_as, cwd=self.cluster_dir, timeout=90)
        if code != 0 or not postgres_answers(self.host, self.port):
            raise DevstackError(f"PostgreSQL did not start again (exit {code}): {_tail(log)}")

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
            handle.server_options = tuple(server_options)
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
