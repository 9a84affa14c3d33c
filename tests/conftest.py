"""Shared fixtures: one PostgreSQL and one Redis per test session, and throwaway databases per test.

The servers come from `openwatch_backup.devstack`: the ones already answering on 127.0.0.1:5432/6379 are
reused, otherwise throwaway ones are started for the session and stopped at its end. Set
OPENWATCH_BACKUP_TEST_ADMIN_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres) to use another
PostgreSQL server, or OPENWATCH_BACKUP_TEST_THROWAWAY=1 to start throwaway servers even where the
standard ones answer (what a machine without them gets).

Every database a test makes is named `owb_<prefix>_<pid>_<hex>` (the pid of the pytest process) and dropped
at teardown; at session start, `owb_*` databases whose pytest process is gone (killed runs) are dropped.
Databases of another session that is still running are left alone.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import psycopg
import pytest

from openwatch_backup import devstack
from openwatch_backup.devstack import PostgresHandle
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

# moto's S3 server and the fault proxy in front of it, for the storage tests.
pytest_plugins = ["tests.support.moto_server", "tests.podman_fixtures"]

ADMIN_URL_ENV = "OPENWATCH_BACKUP_TEST_ADMIN_URL"
# Set to 1 to start throwaway servers even where 5432/6379 answer (what a machine without them gets).
THROWAWAY_ENV = "OPENWATCH_BACKUP_TEST_THROWAWAY"


def _reuse() -> bool:
    return os.environ.get(THROWAWAY_ENV, "") not in ("1", "true", "yes")


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (a CI timeout, `kill`) becomes an interrupt, so that session fixtures still stop the
    # servers they started.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def _import_sample() -> ModuleType:
    """openwatch_backup.sample, or a clear failure of the fixture that needs it."""
    try:
        from openwatch_backup import sample
    except ImportError as exc:
        pytest.fail(f"openwatch_backup.sample is not importable ({exc}); the sample-data fixtures need it",
                    pytrace=False)
    for name in ("create_schema", "is_seeded", "seed", "add_awkward_data"):
        if not hasattr(sample, name):
            pytest.fail(f"openwatch_backup.sample has no {name}(); the sample-data fixtures need it",
                        pytrace=False)
    return sample


@pytest.fixture(scope="session")
def devstack_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's var folder (where throwaway servers keep their files)."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def pg(devstack_var: Path) -> Iterator[PostgresHandle]:
    """The session's PostgreSQL server (reused on 127.0.0.1:5432, or a throwaway one)."""
    admin_url = os.environ.get(ADMIN_URL_ENV)
    handle = (devstack.postgres_from_url(admin_url) if admin_url
              else devstack.ensure_postgres(devstack_var, reuse=_reuse()))
    try:
        devstack.drop_orphan_databases(handle)
        yield handle
    finally:
        handle.stop()


class DatabaseMaker:
    """`make_database(prefix="t", *, template=None) -> url`: a new, uniquely named database.
    `drop_all()` drops every database made so far (teardown calls it)."""

    def __init__(self, pg: PostgresHandle) -> None:
        self.pg = pg
        self.names: list[str] = []

    def new_name(self, prefix: str = "t") -> str:
        return devstack.scratch_database_name(prefix)

    def track(self, name: str) -> str:
        """Drop database `name` at teardown too (for databases created by the code under test)."""
        if name not in self.names:
            self.names.append(name)
        return name

    def __call__(self, prefix: str = "t", *, template: str | None = None) -> str:
        name = self.track(self.new_name(prefix))
        devstack.create_database(self.pg, name, template=template)
        return self.pg.url_for(name)

    def drop_all(self) -> None:
        while self.names:
            devstack.drop_database(self.pg, self.names.pop())


@pytest.fixture
def make_database(pg: PostgresHandle) -> Iterator[DatabaseMaker]:
    """Factory: `make_database(prefix="t") -> url` of a new empty database, dropped after the test."""
    maker = DatabaseMaker(pg)
    try:
        yield maker
    finally:
        maker.drop_all()


@pytest.fixture(scope="session")
def openwatch_template(pg: PostgresHandle) -> Iterator[str]:
    """Name of a database seeded once per session (schema, 2 MiB of sample data, the awkward rows);
    `openwatch_db` copies it with CREATE DATABASE ... TEMPLATE, which is much faster than seeding."""
    sample = _import_sample()
    maker = DatabaseMaker(pg)
    url = maker("tpl")
    try:
        with psycopg.connect(url) as conn:
            sample.create_schema(conn)
            sample.seed(conn, target_mib=2)
            sample.add_awkward_data(conn)
            conn.commit()
        yield maker.names[0]
    finally:
        maker.drop_all()


@pytest.fixture
def openwatch_db(make_database: DatabaseMaker, openwatch_template: str) -> str:
    """URL of a fresh database with the OpenWatch sample schema, seed(target_mib=2) and add_awkward_data."""
    return make_database("ow", template=openwatch_template)


@pytest.fixture(scope="session")
def redis_server(devstack_var: Path) -> Iterator[devstack.RedisHandle]:
    """The session's Redis server (reused on 127.0.0.1:6379, or a throwaway one)."""
    handle = devstack.ensure_redis(devstack_var, reuse=_reuse())
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: devstack.RedisHandle) -> str:
    """redis:// URL of the session's Redis server."""
    return redis_server.url


@dataclass(frozen=True)
class BackupEnv:
    url: str
    dir: Path


@pytest.fixture
def backup_env(openwatch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BackupEnv:
    """OPENWATCH_DATABASE_URL -> a fresh sample database, OPENWATCH_BACKUP_DIR -> an empty folder."""
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", openwatch_db)
    monkeypatch.setenv("OPENWATCH_BACKUP_DIR", str(backup_dir))
    return BackupEnv(url=openwatch_db, dir=backup_dir)


@pytest.fixture
def make_service() -> Iterator[Callable[..., BackupService]]:
    """`make_service(url, backup_dir, **settings) -> BackupService` with the plugin's tables migrated;
    every service made is closed (its connection pool disposed) after the test."""
    made: list[BackupService] = []

    def make(url: str, backup_dir: Path, **overrides: object) -> BackupService:
        service = BackupService(load_settings(database_url=url, dir=backup_dir, **overrides))
        made.append(service)
        service.db_upgrade()
        return service

    yield make
    for service in made:
        service.close()


FILLER_MIB = 40


@pytest.fixture(scope="session")
def bulky_template(pg) -> Iterator[str]:
    """A database whose dump is ~40 MiB, so a dump takes long enough to be interrupted mid-stream."""
    maker = DatabaseMaker(pg)
    url = maker("bulky")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE filler (id int PRIMARY KEY, payload text)")
        # md5 text compresses only ~2x, so even the zstd stream stays well above a pipe's size.
        conn.execute("INSERT INTO filler SELECT g, string_agg(md5(g::text || ':' || i::text), '') "
                     "FROM generate_series(1, %s) g, generate_series(1, 32) i GROUP BY g",
                     (FILLER_MIB * 1024 * 1024 // 1024,))
    try:
        yield maker.names[0]
    finally:
        maker.drop_all()


@pytest.fixture
def bulky_db(make_database, bulky_template: str) -> str:
    return make_database("bulky", template=bulky_template)


@pytest.fixture
def restore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OPENWATCH_*/PG* variable of the calling shell leaks into the restore tests."""
    from tests.support.restore_helpers import clean_environment

    clean_environment(monkeypatch)


@pytest.fixture
def lab(pg: PostgresHandle, openwatch_db: str, make_database: DatabaseMaker,
        make_service: Callable[..., BackupService], tmp_path: Path) -> Iterator[Any]:
    """The restore tests' bench: a sample database, its service and backup dir; leftovers dropped after."""
    from tests.support.restore_helpers import open_lab, track_leftovers

    bench = open_lab(pg, openwatch_db, tmp_path / "backups", make_service)
    yield bench
    track_leftovers(bench, make_database)
