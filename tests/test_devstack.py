"""The embedded local stack: reuse of running servers, throwaway servers that really start and stop, and
the database fixtures' clean-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg

from openwatch_backup import devstack
from openwatch_backup.devstack import PostgresHandle
from openwatch_backup.devstack.postgres import _stop_cluster
from openwatch_backup.devstack.processes import _pid_alive
from openwatch_backup.devstack.redis import _stop_redis_dir

REPO = Path(__file__).resolve().parent.parent


def _select_one(url: str) -> object:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return row[0]


def _database_exists(pg: PostgresHandle, name: str) -> bool:
    return devstack.database_exists(pg, name)


def _wait_closed(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not devstack.port_is_open(devstack.LOOPBACK, port, timeout=0.2):
            return True
        time.sleep(0.05)
    return False


def _gone(pid: int | None) -> bool:
    return pid is None or not _pid_alive(pid)


def test_find_pg_bin_dir_has_the_tools() -> None:
    bin_dir = devstack.find_pg_bin_dir()
    for tool in ("initdb", "pg_ctl", "pg_dump", "pg_restore", "psql"):
        assert (bin_dir / tool).is_file(), tool


def test_session_server_answers(pg: PostgresHandle) -> None:
    assert _select_one(pg.admin_url) == 1
    assert pg.url_for("x y").endswith("/x%20y")


def test_reuse_of_the_standard_server(tmp_path: Path) -> None:
    if not devstack.postgres_answers():
        # A machine without the standard server: ensure_postgres must start (and own) one instead.
        handle = devstack.ensure_postgres(tmp_path / "var")
        try:
            assert handle.owned is True
            assert _select_one(handle.admin_url) == 1
        finally:
            handle.stop()
        return
    handle = devstack.ensure_postgres(tmp_path / "var")
    assert handle.owned is False
    assert (handle.host, handle.port) == ("127.0.0.1", 5432)
    assert handle.admin_url == "postgresql://postgres@127.0.0.1:5432/postgres"
    handle.stop()  # not owned: must leave the server alone
    assert _select_one(handle.admin_url) == 1
    assert not (tmp_path / "var" / "pg").exists()


def test_throwaway_postgres_starts_is_reused_and_stops(tmp_path: Path) -> None:
    var = tmp_path / "var"
    handle = devstack.ensure_postgres(var, reuse=False)
    try:
        assert handle.owned is True
        assert handle.port != 5432
        assert handle.cluster_dir is not None
        assert handle.cluster_dir.is_dir()
        assert _select_one(handle.admin_url) == 1
        with handle.connect() as conn:
            row = conn.execute("SELECT current_setting('listen_addresses'), "
                               "current_setting('server_version_num')::int").fetchone()
        assert row is not None
        assert row[0] == "127.0.0.1"
        assert row[1] >= 150000
        # Reuse finds a server that answers on the given port and does not take it over.
        again = devstack.ensure_postgres(var, port=handle.port)
        assert again.owned is False
        assert again.port == handle.port
        again.stop()
        assert _select_one(handle.admin_url) == 1
        pid = handle.postmaster_pid
        assert pid is not None
        assert _pid_alive(pid)
    finally:
        handle.stop()
    assert handle.owned is False
    assert _wait_closed(handle.port)
    assert _gone(pid)
    assert handle.cluster_dir is not None
    assert not handle.cluster_dir.exists()
    handle.stop()  # a second stop is harmless


def test_throwaway_postgres_as_context_manager(tmp_path: Path) -> None:
    with devstack.ensure_postgres(tmp_path / "var", reuse=False) as handle:
        port = handle.port
        assert _select_one(handle.url_for("postgres")) == 1
    assert _wait_closed(port)


def test_throwaway_redis_starts_is_reused_and_stops(tmp_path: Path) -> None:
    var = tmp_path / "var"
    handle = devstack.ensure_redis(var, reuse=False)
    try:
        assert handle.owned is True
        assert handle.port != 6379
        assert handle.url == f"redis://127.0.0.1:{handle.port}/0"
        assert devstack.redis_answers(port=handle.port)
        again = devstack.ensure_redis(var, port=handle.port)
        assert again.owned is False
        assert again.port == handle.port
        again.stop()
        assert devstack.redis_answers(port=handle.port)
        pid = handle.pid
        assert pid is not None
        assert _pid_alive(pid)
        server_dir = handle.server_dir
        assert server_dir is not None
        assert server_dir.is_dir()
    finally:
        handle.stop()
    assert _wait_closed(handle.port)
    assert _gone(pid)
    assert not server_dir.exists()
    handle.stop()


def test_redis_session_fixture(redis_url: str) -> None:
    assert redis_url.startswith("redis://127.0.0.1:")
    port = int(redis_url.rsplit(":", 1)[1].split("/", 1)[0])
    assert devstack.redis_answers(port=port)


def test_servers_of_a_killed_owner_are_swept(tmp_path: Path) -> None:
    """A run killed with SIGKILL cannot stop its servers; the next ensure_* with the same var folder does."""
    var = tmp_path / "var"
    code = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from openwatch_backup import devstack
        pg = devstack.ensure_postgres(Path({str(var)!r}), reuse=False)
        rd = devstack.ensure_redis(Path({str(var)!r}), reuse=False)
        print(pg.port, pg.postmaster_pid, pg.cluster_dir, rd.port, rd.pid, rd.server_dir, flush=True)
        os.kill(os.getpid(), {int(signal.SIGKILL)})
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pg_port, pg_pid, pg_dir, rd_port, rd_pid, rd_dir = done.stdout.split()
    try:
        assert devstack.postgres_answers(port=int(pg_port))
        assert devstack.redis_answers(port=int(rd_port))
        new_pg = devstack.ensure_postgres(var, reuse=False)
        new_pg.stop()
        new_rd = devstack.ensure_redis(var, reuse=False)
        new_rd.stop()
        assert _wait_closed(int(pg_port))
        assert _wait_closed(int(rd_port))
        assert _gone(int(pg_pid))
        assert _gone(int(rd_pid))
        assert not Path(pg_dir).exists()
        assert not Path(rd_dir).exists()
    finally:  # never leave them running, even when the sweep is broken
        run_as = "postgres" if os.geteuid() == 0 else None
        _stop_cluster(Path(pg_dir), None, run_as, mode="immediate")
        _stop_redis_dir(Path(rd_dir))


def test_make_database_creates_and_drops(make_database, pg: PostgresHandle) -> None:
    url = make_database("dv")
    name = url.rsplit("/", 1)[1]
    assert name.startswith(f"owb_dv_{os.getpid()}_")
    assert _select_one(url) == 1
    assert _database_exists(pg, name)
    # A connection left open does not stop the drop (WITH (FORCE)).
    leaked = psycopg.connect(url)
    try:
        make_database.drop_all()
        assert not _database_exists(pg, name)
    finally:
        leaked.close()


def test_leftover_databases_of_dead_sessions_are_dropped(pg: PostgresHandle) -> None:
    dead_pid = 2**22 + 12345  # above pid_max's default, so never alive
    leftover = f"owb_t_{dead_pid}_deadbeef"
    live = f"owb_t_{os.getpid()}_cafef00d"
    for name in (leftover, live):
        devstack.create_database(pg, name)
    try:
        assert leftover in devstack.drop_orphan_databases(pg)
        assert not _database_exists(pg, leftover)
        assert _database_exists(pg, live)
    finally:
        devstack.drop_database(pg, leftover)
        devstack.drop_database(pg, live)


def test_openwatch_db_is_seeded(openwatch_db: str) -> None:
    from openwatch_backup import sample

    with psycopg.connect(openwatch_db) as conn:
        assert sample.is_seeded(conn)


def test_backup_env(backup_env) -> None:
    assert os.environ["OPENWATCH_DATABASE_URL"] == backup_env.url
    assert os.environ["OPENWATCH_BACKUP_DIR"] == str(backup_env.dir)
    assert backup_env.dir.is_dir()
    assert not any(backup_env.dir.iterdir())


def test_ensure_demo_database_creates_and_seeds_once(pg: PostgresHandle, make_database) -> None:
    from openwatch_backup import sample

    name = make_database.track(make_database.new_name("demo"))
    url = devstack.ensure_demo_database(pg, name, target_mib=1)
    assert url == pg.url_for(name)
    with psycopg.connect(url) as conn:
        assert sample.is_seeded(conn)
        before = conn.execute("SELECT count(*) FROM pg_stat_user_tables").fetchone()
    # A second call finds it seeded and changes nothing.
    assert devstack.ensure_demo_database(pg, name, target_mib=1) == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_user_tables").fetchone() == before
