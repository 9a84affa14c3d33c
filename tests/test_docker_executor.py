"""The docker executor on a real Docker Engine API (podman): pg_dump, pg_restore and psql run inside the database
container "owb-db" over exec sockets; the catalog is the same database, reached from the host through the
socket folder. The host's own PostgreSQL 15 clients make the local reference dump.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import DumpFailed
from openwatch_backup.operations.backup import ProgressEvent
from openwatch_backup.operations.restore import RestoreRequest
from openwatch_backup.sample import add_awkward_data, create_schema, seed
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from tests.podman_fixtures import PgContainer
from tests.support.dbcompare import schema_dump, sequence_values, table_fingerprints
from tests.support.podman_lab import PG_IMAGE, PodmanLab, wait_for
from tests.support.restore import restore
from tests.support.restore_helpers import CLI, cli_env, run_cli

pytestmark = pytest.mark.podman

CATALOG = ("public.backup_runs", "public.backup_copies")  # their rows are never in a dump
CANARY = "public.backup_canary"


def _create(pg: PgContainer, name: str) -> str:
    with pg.connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg.url(name)


@pytest.fixture(scope="module")
def source(pg_container: PgContainer) -> str:
    """The sample database (schema, 2 MiB of rows, the awkward rows) inside the container."""
    url = _create(pg_container, "ow_source")
    with psycopg.connect(url) as conn:
        create_schema(conn)
        seed(conn, target_mib=2)
        add_awkward_data(conn)
        conn.commit()
    return url


@pytest.fixture
def docker_host(podman: PodmanLab, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    return podman.socket_url


@pytest.fixture
def make(tmp_path: Path, docker_host: str) -> Iterator[Any]:
    made: list[BackupService] = []

    def service(url: str, **overrides: Any) -> BackupService:
        overrides.setdefault("executor", "docker")
        overrides.setdefault("db_container", "owb-db")
        made.append(BackupService(load_settings(database_url=url, dir=tmp_path / "backups", **overrides)))
        made[-1].db_upgrade()
        return made[-1]

    yield service
    for made_service in made:
        made_service.close()


def _in_container(pg: PgContainer, program: str) -> list[str]:
    """Processes running `program` inside the container (busybox ps)."""
    out = pg.container.exec_run(["ps", "-o", "pid,args"]).output.decode()
    rows = [line.split(None, 1) for line in out.splitlines()[1:]]
    return [row[1] for row in rows if len(row) == 2 and row[1].split()[0].rsplit("/", 1)[-1] == program]


def _on_host(program: str, marker: str = "OPENWATCH_BACKUP_EXEC=") -> list[int]:
    """Host PIDs of `program` started by our executor (its environment carries the marker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "exe")).name != program:
                continue
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_dump_through_exec_restores_like_a_local_dump(make: Any, source: str, pg_container: PgContainer,
                                                      tmp_path: Path) -> None:
    docker = make(source)
    run = docker.backup(docker.build_request(BackupKind.FULL, Compression.ZSTD))
    assert run.status == "succeeded", run.error
    assert docker.context.executor.name == "docker"
    local = make(source, executor="local")
    reference = local.backup(local.build_request(BackupKind.FULL, Compression.ZSTD))
    assert reference.status == "succeeded", reference.error
    # The container's pg_dump wrote it (the manifest's client version comes from `pg_dump --version` there).
    assert docker.manifest_of(run).pg_dump_version.startswith("15.")

    through_exec, by_local = _create(pg_container, "ow_from_exec"), _create(pg_container, "ow_from_local")
    restore(Path(run.artifact_location or ""), through_exec)
    restore(Path(reference.artifact_location or ""), by_local)
    skip = (*CATALOG, CANARY)  # each run writes its own nonce
    expected = table_fingerprints(source, skip=skip)
    assert len(expected) > 5
    assert table_fingerprints(through_exec, skip=skip) == expected
    assert table_fingerprints(by_local, skip=skip) == expected
    with psycopg.connect(through_exec) as conn:
        assert conn.execute("SELECT nonce FROM backup_canary").fetchall() == [(docker.manifest_of(run).canary_nonce,)]
    assert sequence_values(through_exec) == sequence_values(by_local)
    assert schema_dump(through_exec) == schema_dump(by_local)
    assert _in_container(pg_container, "pg_dump") == []


def test_restore_into_and_deep_verify_stream_stdin_through_exec(make: Any, source: str,
                                                                pg_container: PgContainer) -> None:
    service = make(source)
    run = service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    assert run.status == "succeeded", run.error
    restored = service.restore(str(run.id), RestoreRequest(into="ow_restored_dx"))
    assert restored.status == "succeeded", restored.error
    assert table_fingerprints(pg_container.url("ow_restored_dx"), skip=(*CATALOG, CANARY)) == \
        table_fingerprints(source, skip=(*CATALOG, CANARY))
    verify_run, result = service.verify(str(run.id), deep=True)
    assert verify_run.status == "succeeded", verify_run.error
    assert result is not None
    assert result.passed
    assert result.deep
    tables = service.backup(service.build_request(BackupKind.TABLES, Compression.ZSTD))
    assert tables.status == "succeeded", tables.error
    # A tables backup's deep verify needs a pg_restore list file: staged in the container, then removed.
    verify_run, result = service.verify(str(tables.id), deep=True)
    assert verify_run.status == "succeeded", verify_run.error
    leftovers = pg_container.container.exec_run(["sh", "-c", "ls -d /tmp/owb-* 2>/dev/null; true"]).output
    assert leftovers == b""


@pytest.fixture
def doomed(podman: PodmanLab, pg_container: PgContainer) -> Iterator[PgContainer]:
    """A client container to kill: the PostgreSQL image without its server, whose clients reach owb-db's server
    through the shared socket folder; the database (the catalog too) lives on, as the issue's kill needs."""
    url = _create(pg_container, "ow_bulky")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE filler (id int PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO filler SELECT g, string_agg(md5(g::text || ':' || i::text), '') "
                     "FROM generate_series(1, 10000) g, generate_series(1, 64) i GROUP BY g")
    container = podman.run(PG_IMAGE, name="owb-db-doomed", detach=True, entrypoint=["sleep", "3600"],
                           environment={"PGHOST": "/sockets", "PGPORT": "5432"},
                           volumes={str(podman.sockets): {"bind": "/sockets"}})
    try:
        yield PgContainer(container, "owb-db-doomed", "", podman.sockets, dsn=dict(pg_container.dsn))
    finally:
        container.remove(force=True)


def test_container_killed_mid_dump_fails_the_run_and_leaves_no_file(make: Any, doomed: PgContainer,
                                                                    pg_container: PgContainer,
                                                                    tmp_path: Path) -> None:
    service = make(pg_container.url("ow_bulky"), db_container="owb-db-doomed")
    killer: list[threading.Thread] = []

    def kill_once(event: ProgressEvent) -> None:
        if event.phase == "dumping" and event.bytes_in > (2 << 20) and not killer:
            killer.append(threading.Thread(target=doomed.container.kill))
            killer[0].start()

    with pytest.raises(DumpFailed) as caught:
        service.backup(service.build_request(BackupKind.FULL, Compression.NONE), observer=kill_once)
    assert killer, "the dump ended before the kill"
    killer[0].join(30)
    assert caught.value.message == "pg_dump was killed by SIGKILL: container owb-db-doomed stopped during the run"
    (run,) = service.recorder.list()
    assert (run.status, run.error_code, run.error) == ("failed", "dump_failed", caught.value.message)
    assert sorted(p.name for p in (tmp_path / "backups").rglob("*") if p.is_file()) == []


def test_cancelled_dump_leaves_no_pg_dump_in_the_container(make: Any, podman: PodmanLab, source: str,
                                                           pg_container: PgContainer, tmp_path: Path) -> None:
    make(source)  # the catalog's tables
    blocker = psycopg.connect(source)
    blocker.execute("LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for it, mid-run
    env = cli_env(source, tmp_path / "backups", DOCKER_HOST=podman.socket_url, OPENWATCH_BACKUP_EXECUTOR="docker",
                  OPENWATCH_BACKUP_DB_CONTAINER="owb-db")
    cli = subprocess.Popen([str(CLI), "backup"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def dumping() -> list[str]:
            assert cli.poll() is None, cli.communicate()
            return _in_container(pg_container, "pg_dump") or [][0]

        wait_for(dumping, timeout=30, errors=(IndexError,))
        assert len(_on_host("pg_dump")) == 1  # the exec'd pg_dump, seen from the host
        cli.send_signal(signal.SIGTERM)
        _, err = cli.communicate(timeout=60)
        assert cli.returncode != 0, err
        # Checked while the lock still holds: a pg_dump left running would still be waiting for it.
        assert _in_container(pg_container, "pg_dump") == []
        assert _on_host("pg_dump") == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        blocker.rollback()
        blocker.close()
    # Its server session waits in the lock queue without noticing the client is gone; it ends once let through.
    with pg_container.connect("ow_source") as conn:
        wait_for(lambda: conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                      "'pg_dump'").fetchone() == (0,) or 1 / 0, timeout=10)
    assert sorted(p.name for p in (tmp_path / "backups").rglob("*") if p.is_file()) == []


def test_a_cli_killed_mid_dump_leaves_nothing_the_sweep_does_not_end(make: Any, podman: PodmanLab, source: str,
                                                                     pg_container: PgContainer,
                                                                     tmp_path: Path) -> None:
    """SIGKILL gives the CLI no chance to kill pg_dump in the container or to record anything: pg_dump ends by
    itself once it can write again (its socket is gone), and `sweep` marks the run abandoned and removes the
    .partial file."""
    make(source)
    blocker = psycopg.connect(source)
    env = cli_env(source, tmp_path / "backups", DOCKER_HOST=podman.socket_url, OPENWATCH_BACKUP_EXECUTOR="docker",
                  OPENWATCH_BACKUP_DB_CONTAINER="owb-db", OPENWATCH_BACKUP_STALE_AFTER_SECONDS="1")
    try:
        blocker.execute("LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for it, mid-run
        cli = subprocess.Popen([str(CLI), "backup"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _in_container(pg_container, "pg_dump") or [][0], timeout=30, errors=(IndexError,))
        cli.kill()
        cli.wait()
    finally:
        blocker.rollback()
        blocker.close()
    wait_for(lambda: _in_container(pg_container, "pg_dump") == [] or 1 / 0, timeout=30)
    assert _on_host("pg_dump") == []
    partials = [p.name for p in (tmp_path / "backups").rglob("*.partial")]
    assert len(partials) == 1, partials
    time.sleep(1.1)  # the run's heartbeat is older than OPENWATCH_BACKUP_STALE_AFTER_SECONDS
    swept = run_cli("sweep", env=env)
    assert swept.returncode == 0, swept.stderr
    assert "marked 1 run(s) abandoned" in swept.stdout
    assert "removed 1 .partial file(s)" in swept.stdout
    listed = run_cli("list", "--json", env=env)
    statuses = [run["status"] for run in json.loads(listed.stdout)]  # newest first; the module's database is shared
    assert statuses[0] == "abandoned"
    assert "running" not in statuses
    assert sorted(p.name for p in (tmp_path / "backups").rglob("*") if p.is_file()) == []


def test_no_docker_socket_and_a_missing_container_are_one_line(source: str, podman: PodmanLab,
                                                               tmp_path: Path) -> None:
    env = cli_env(source, tmp_path / "backups", DOCKER_HOST="unix:///nonexistent/docker.sock",
                  OPENWATCH_BACKUP_EXECUTOR="docker")
    no_socket = run_cli("backup", env=env)
    assert no_socket.returncode == 3, no_socket.stderr
    lines = no_socket.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unix:///nonexistent/docker.sock" in lines[0]
    assert "DOCKER_HOST" in lines[0]

    env.update(DOCKER_HOST=podman.socket_url, OPENWATCH_BACKUP_DB_CONTAINER="owb-nosuch")
    missing = run_cli("backup", env=env)
    assert missing.returncode == 3, missing.stderr
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "container owb-nosuch does not exist" in lines[0]
    assert "OPENWATCH_BACKUP_DB_CONTAINER" in lines[0]
    assert sorted(p.name for p in (tmp_path / "backups").rglob("*") if p.is_file()) == []


def test_auto_uses_a_local_client_and_else_the_container(make: Any, source: str, tmp_path: Path) -> None:
    here = make(source, executor="auto")
    run = here.backup(here.build_request(BackupKind.SCHEMA, Compression.ZSTD))
    assert run.status == "succeeded", run.error
    assert here.context.executor.chosen.name == "local"

    empty = tmp_path / "no-clients"
    empty.mkdir()
    there = make(source, executor="auto", pg_bin_dir=empty)
    run = there.backup(there.build_request(BackupKind.SCHEMA, Compression.ZSTD))
    assert run.status == "succeeded", run.error
    assert there.context.executor.chosen.name == "docker"


def test_exec_stream_separates_stderr_and_kill_ends_the_tree(docker_host: str, pg_container: PgContainer) -> None:
    from openwatch_backup.executors.docker import DockerExecutor

    executor = DockerExecutor("owb-db")
    process = executor.start(["sh", "-c", "echo to-stderr >&2; echo one; sleep 60 | cat; echo never"], {})
    assert process.read(100) == b"one\n"
    reader = threading.Thread(target=lambda: process.read(100))
    reader.start()
    wait_for(lambda: _in_container(pg_container, "sleep") == ["sleep 60"] or 1 / 0)
    process.kill()
    reader.join(10)
    assert not reader.is_alive()
    assert process.wait(10) == -signal.SIGKILL
    process.close()
    assert "to-stderr" in process.stderr_tail()
    assert _in_container(pg_container, "sleep") == []
    started = time.monotonic()
    feeder = executor.feed(["sh", "-c", "wc -c; echo bad >&2; exit 4"], {"PGPASSWORD": "s3cret"})
    for _ in range(64):
        assert feeder.write(b"x" * 65536)
    assert feeder.finish(30) == 4
    assert feeder.stdout_tail() == str(64 * 65536)
    assert feeder.stderr_tail() == "bad"
    assert time.monotonic() - started < 10
    # The credentials are in the program's environment and not in its command line.
    probe = executor.feed(["sh", "-c", 'tr "\\0" " " < /proc/$$/cmdline; echo; echo "pw=$PGPASSWORD"'],
                          {"PGPASSWORD": "s3cret"})
    assert probe.finish(30) == 0
    cmdline, password = probe.stdout_tail().splitlines()
    assert "sh -c" in cmdline
    assert "s3cret" not in cmdline
    assert password == "pw=s3cret"
    executor.close()


def test_exec_stream_keeps_every_byte_and_stderr_and_close_mid_stream_ends_it(docker_host: str,
                                                                              pg_container: PgContainer) -> None:
    from openwatch_backup.executors.docker import DockerExecutor

    executor = DockerExecutor("owb-db")
    process = executor.start(["sh", "-c", "echo begin >&2; seq 1 2000000; echo end >&2; exit 3"], {})
    got = bytearray()
    while data := process.read(1 << 20):
        got += data
    assert got == "".join(f"{i}\n" for i in range(1, 2_000_001)).encode()  # 15 MB, in order, none lost
    assert process.wait(10) == 3
    assert process.stderr_tail() == "begin\nend"
    process.close()

    endless = executor.start(["seq", "1", "1000000000"], {})
    assert endless.read(10)
    assert len(_in_container(pg_container, "seq")) == 1
    endless.close()  # mid-stream: kills the program and closes the socket
    assert endless._raw.fileno() == -1
    assert _in_container(pg_container, "seq") == []
    executor.close()
