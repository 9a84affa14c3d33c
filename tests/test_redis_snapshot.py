"""Redis snapshots (issue 12 item 3) against a real redis-server in a podman container, through the real Docker
Engine API (podman's) and the real catalog: BGSAVE over the container's unix socket, dump.rdb out of the
container as a tar stream, zstd + sha256 into redis/redis_*.rdb.zst, then verify (redis-check-rdb, and the
Python CRC64 where that program is missing). The stored file restores as the README says: zstd -dc into a
fresh redis-server's dump.rdb, which then serves the keys written. Each failure is its one line, with no file
left behind: a save already running, a failed save, a save that does not finish in time, a missing container.
The nightly dispatcher with OPENWATCH_BACKUP_REDIS=on queues a snapshot with the scheduled dump (no podman; nightly
sets off: the set's Redis member is tests/test_sets_redis.py's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.rdb import Crc64, RdbChecker
from openwatch_backup.errors import ConfigError, ContainerMissing, RedisSnapshotFailed, RestoreRefused
from openwatch_backup.scheduling import next_fire
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from tests.podman_fixtures import RedisContainer
from tests.support.podman_lab import PodmanLab

podman_test = pytest.mark.podman
CLI = str(Path(sys.executable).with_name("openwatch-backup"))


@pytest.fixture
def rclient(redis_container: RedisContainer) -> Iterator[redis.Redis]:
    """A client on the container's socket; the server left as found: no save running, no save delay, /data
    writable, the last save ok (a failed save would make Redis refuse writes: stop-writes-on-bgsave-error)."""
    client = redis.Redis(unix_socket_path=str(redis_container.socket))
    client.flushall()
    yield client
    client.config_set("rdb-key-save-delay", 0)
    if int(client.info("persistence")["rdb_bgsave_in_progress"]):
        client.flushall()  # kills the running save (Redis 7: FLUSHALL ends an RDB child)
    redis_container.container.exec_run(["chmod", "0755", "/data"], user="root")
    _wait(lambda: not int(client.info("persistence")["rdb_bgsave_in_progress"]))
    if client.info("persistence")["rdb_last_bgsave_status"] != "ok":
        time.sleep(1.01)
        client.bgsave()
        _wait(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "ok")
    client.close()


def _wait(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def service(podman: PodmanLab, redis_container: RedisContainer, openwatch_db: str, tmp_path: Path, make_service,
            monkeypatch: pytest.MonkeyPatch) -> BackupService:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    return make_service(openwatch_db, tmp_path / "backups", redis_url=redis_container.url,
                        redis_container=redis_container.name)


def _stored(service: BackupService) -> list[str]:
    folder = service.settings.dir / "redis"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _write_keys(client: redis.Redis) -> dict[bytes, bytes]:
    data = {f"scan:{i}".encode(): f"result {i} ünïcode {'x' * (i % 50)}".encode() for i in range(3000)}
    client.mset(data)
    client.hset("host:1", mapping={"name": "db01", "ip": "10.0.0.1"})
    return data


def _load_rdb(rdb: Path, tmp_path: Path) -> redis.Redis:
    """The README's restore: dump.rdb in a redis-server's dir, then start it (here a fresh local one)."""
    socket = tmp_path / "restored.sock"
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(socket), "--dir", str(rdb.parent),
                             "--dbfilename", rdb.name, "--save", ""], stdout=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket))
    try:
        _wait(lambda: socket.exists() and client.ping(), timeout=10)
    except BaseException:
        proc.kill()
        raise
    client.proc = proc  # type: ignore[attr-defined]
    return client


@podman_test
def test_snapshot_fetch_verify_and_restore(service: BackupService, rclient: redis.Redis, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    written = _write_keys(rclient)
    run = service.backup(service.build_request(BackupKind.REDIS))
    assert (run.kind, run.status, run.error) == ("redis", "succeeded", None)
    [artifact, manifest_name] = _stored(service)
    assert artifact.startswith("redis_")
    assert artifact.endswith(".rdb.zst")
    assert manifest_name == artifact + ".manifest.json"
    path = service.settings.dir / "redis" / artifact
    assert run.artifact_location == str(path)
    assert path.stat().st_mode & 0o777 == 0o600
    manifest = Manifest.from_json((path.parent / manifest_name).read_bytes())
    assert manifest.redis is not None
    assert (manifest.kind, manifest.wrapper) == ("redis", "zstd")
    assert (manifest.redis.container, manifest.redis.path, manifest.redis.rdb_version) == \
        ("owb-redis", "/data/dump.rdb", 10)
    assert manifest.redis.keys == len(written) + 1
    assert manifest.redis.redis_version.startswith("7.")
    assert manifest.redis.lastsave == int(rclient.lastsave().timestamp())

    # The stored file is dump.rdb: zstd -dc gives the very bytes in the container, which redis-check-rdb accepts.
    rdb = tmp_path / "restore" / "dump.rdb"
    rdb.parent.mkdir()
    with rdb.open("wb") as out:
        subprocess.run(["zstd", "-dc", str(path)], stdout=out, check=True)
    inside = service_container_sha256(service, rclient)
    assert subprocess.run(["sha256sum", str(rdb)], capture_output=True, text=True).stdout.split()[0] == inside
    assert rdb.stat().st_size == manifest.redis.rdb_size
    check = subprocess.run(["redis-check-rdb", str(rdb)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert "RDB looks OK" in check.stdout
    restored = _load_rdb(rdb, tmp_path)
    try:
        assert restored.dbsize() == len(written) + 1
        assert restored.mget(list(written)) == list(written.values())
        assert restored.hgetall("host:1") == {b"name": b"db01", b"ip": b"10.0.0.1"}
    finally:
        restored.proc.kill()  # type: ignore[attr-defined]
        restored.proc.wait()  # type: ignore[attr-defined]

    verify, result = service.verify(str(run.id))
    assert verify.status == "succeeded"
    assert result is not None
    assert result.passed
    assert result.checks["rdb_check"] == "redis-check-rdb"
    assert result.checks["sha256"] == run.sha256
    # Where redis-check-rdb is missing, the Python CRC64 checks the same file.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    verify, result = service.verify(str(run.id))
    assert verify.status == "succeeded"
    assert result is not None
    assert result.checks["rdb_check"] == "crc64"

    # restore RUN refuses with the README section's name; nothing is recorded.
    with pytest.raises(RestoreRefused, match=r'is a Redis snapshot: restore it by hand .* "Redis snapshot"'):
        service.restore(str(run.id), _restore_request())
    assert service.recorder.list(limit=5, kind="restore") == []


def _restore_request() -> Any:
    from openwatch_backup.operations.restore import RestoreRequest

    return RestoreRequest(into=None, tables=(), data_only=False, confirm="openwatch", terminate_connections=False,
                          safety_backup=False, allow_newer_server=False, allow_newer_migrations=False)


def service_container_sha256(service: BackupService, client: redis.Redis) -> str:
    from openwatch_backup.docker_api import docker_client

    container = docker_client().containers.get(service.settings.redis_container)
    return container.exec_run(["sha256sum", "/data/dump.rdb"]).output.split()[0].decode()


@podman_test
def test_cli_backup_kind_redis(service: BackupService, rclient: redis.Redis, podman: PodmanLab) -> None:
    rclient.set("k", "v")
    env = dict(os.environ, OPENWATCH_DATABASE_URL=service.settings.database_url,
               OPENWATCH_BACKUP_DIR=str(service.settings.dir), OPENWATCH_REDIS_URL=service.settings.redis_url or "",
               OPENWATCH_BACKUP_REDIS_CONTAINER=service.settings.redis_container, DOCKER_HOST=podman.socket_url)
    done = subprocess.run([CLI, "backup", "--kind", "redis"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [artifact, _] = _stored(service)
    assert done.stdout.startswith("backup ")
    assert str(service.settings.dir / "redis" / artifact) in done.stdout
    run_id = done.stdout.split()[1]
    refused = subprocess.run([CLI, "restore", run_id, "--confirm", "openwatch"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 10, refused.stderr
    assert "is a Redis snapshot" in refused.stderr
    assert "Redis snapshot\"" in refused.stderr
    assert len([line for line in refused.stderr.splitlines() if line.strip()]) == 1


@podman_test
def test_a_flipped_byte_fails_verify(service: BackupService, rclient: redis.Redis) -> None:
    _write_keys(rclient)
    run = service.backup(service.build_request(BackupKind.REDIS))
    path = service.settings.dir / "redis" / _stored(service)[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    verify, result = service.verify(str(run.id))
    assert verify.status == "failed"
    assert result is not None
    assert result.reason == "checksum"
    assert result.message.startswith(f"{path.name} has sha256 ")
    assert verify.error == \
        f"verify failed (checksum): {result.message}"


@podman_test
def test_a_save_already_running(service: BackupService, rclient: redis.Redis) -> None:
    rclient.mset({f"k{i}": i for i in range(5)})
    rclient.config_set("rdb-key-save-delay", 1_000_000)  # a second per key: a 5 s save
    rclient.bgsave()
    with pytest.raises(RedisSnapshotFailed) as caught:
        service.backup(service.build_request(BackupKind.REDIS))
    assert caught.value.message == (f"a Redis save is already running at {service.settings.redis_url[7:]} "
                                    "(rdb_bgsave_in_progress:1): wait until INFO persistence shows "
                                    "rdb_bgsave_in_progress:0 and take the snapshot again")
    [run] = service.recorder.list(limit=1, kind="redis")
    assert (run.status, run.error_code) == ("failed", "redis_snapshot")
    assert _stored(service) == []


@podman_test
def test_bgsave_answering_already_in_progress(service: BackupService, rclient: redis.Redis,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The race the INFO check cannot close: a save starts between it and our BGSAVE; BGSAVE's own answer."""
    from openwatch_backup.operations import redis_bgsave

    rclient.mset({f"k{i}": i for i in range(5)})
    rclient.config_set("rdb-key-save-delay", 1_000_000)
    real_time = redis.Redis.time

    def time_then_save(self: redis.Redis) -> Any:
        answer = real_time(self)
        rclient.bgsave()  # another client's save, after our INFO check
        return answer

    monkeypatch.setattr(redis.Redis, "time", time_then_save)
    with pytest.raises(RedisSnapshotFailed, match=r"already running at .* \(BGSAVE: Background save already in "
                                                  r"progress\): wait until"):
        redis_bgsave.bgsave(redis.Redis.from_url(service.settings.redis_url or ""), "here", 30)


@podman_test
def test_a_failed_save(service: BackupService, rclient: redis.Redis, redis_container: RedisContainer) -> None:
    rclient.set("k", "v")
    assert redis_container.container.exec_run(["chmod", "0555", "/data"], user="root").exit_code == 0
    with pytest.raises(RedisSnapshotFailed) as caught:
        service.backup(service.build_request(BackupKind.REDIS))
    assert caught.value.message.endswith("could not save (INFO persistence rdb_last_bgsave_status:err): its log "
                                         "says why, usually /data is not writable or the disk is full")
    [run] = service.recorder.list(limit=1, kind="redis")
    assert (run.status, run.error_code, run.error) == ("failed", "redis_snapshot", caught.value.message)
    assert _stored(service) == []


@podman_test
def test_a_save_that_does_not_finish_in_time(podman: PodmanLab, redis_container: RedisContainer, rclient: redis.Redis,
                                             openwatch_db: str, tmp_path: Path, make_service,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    service = make_service(openwatch_db, tmp_path / "backups", redis_url=redis_container.url,
                           redis_container=redis_container.name, redis_save_timeout_seconds=1)
    rclient.mset({f"k{i}": i for i in range(5)})
    rclient.config_set("rdb-key-save-delay", 1_000_000)
    started = time.monotonic()
    with pytest.raises(RedisSnapshotFailed, match=r"^Redis at \S+ did not finish BGSAVE within 1 s \(LASTSAVE did "
                                                  r"not move\): raise OPENWATCH_BACKUP_REDIS_SAVE_TIMEOUT_SECONDS"):
        service.backup(service.build_request(BackupKind.REDIS))
    assert time.monotonic() - started < 4
    assert _stored(service) == []


@podman_test
def test_a_missing_container(podman: PodmanLab, redis_container: RedisContainer, rclient: redis.Redis,
                             openwatch_db: str, tmp_path: Path, make_service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    service = make_service(openwatch_db, tmp_path / "backups", redis_url=redis_container.url,
                           redis_container="owb-no-such-redis")
    saves = int(rclient.info("persistence")["rdb_saves"])
    with pytest.raises(ContainerMissing) as caught:
        service.backup(service.build_request(BackupKind.REDIS))
    assert caught.value.message == ("container owb-no-such-redis does not exist: set OPENWATCH_BACKUP_REDIS_CONTAINER "
                                    "to the name `docker ps` shows")
    assert int(rclient.info("persistence")["rdb_saves"]) == saves  # checked before BGSAVE: nothing saved for nothing
    assert _stored(service) == []


@podman_test
def test_wrong_password_is_one_line_without_it(service: BackupService, redis_container: RedisContainer,
                                               rclient: redis.Redis, openwatch_db: str, tmp_path: Path,
                                               make_service) -> None:
    rclient.config_set("requirepass", "s3cret-redis-pass")
    try:
        other = make_service(openwatch_db, tmp_path / "other", redis_url=f"unix://:wrong-pass@{redis_container.socket}",
                             redis_container=redis_container.name)
        with pytest.raises(RedisSnapshotFailed) as caught:
            other.backup(other.build_request(BackupKind.REDIS))
        assert "refused the credentials in OPENWATCH_REDIS_URL" in caught.value.message
        [run] = other.recorder.list(limit=1, kind="redis")
        assert "wrong-pass" not in str(run.error)
        assert "wrong-pass" not in str(run.details)
        right = make_service(openwatch_db, tmp_path / "right",
                             redis_url=f"unix://:s3cret-redis-pass@{redis_container.socket}",
                             redis_container=redis_container.name)
        assert right.backup(right.build_request(BackupKind.REDIS)).status == "succeeded"
        manifest = (tmp_path / "right" / "redis").glob("*.manifest.json")
        assert all("s3cret" not in p.read_text() for p in manifest)
    finally:
        authed = redis.Redis(unix_socket_path=str(redis_container.socket), password="s3cret-redis-pass")
        authed.config_set("requirepass", "")
        authed.close()


# ---------------------------------------------------------------- no podman: the RDB check, settings, the dispatcher

def _rdb(tmp_path: Path) -> bytes:
    """A real RDB written by this machine's redis-server (SAVE at shutdown of a throwaway one)."""
    folder = tmp_path / "rdb"
    folder.mkdir()
    socket = folder / "r.sock"
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(socket), "--dir", str(folder)],
                            stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(unix_socket_path=str(socket))
        _wait(lambda: socket.exists() and client.ping(), timeout=10)
        client.mset({f"k{i}": f"value {i}" for i in range(200)})
        client.save()
        client.close()
    finally:
        proc.kill()
        proc.wait()
    return (folder / "dump.rdb").read_bytes()


def test_crc64_is_redis_crc64_jones() -> None:
    crc = Crc64()
    crc.update(b"123456789")
    assert crc.value == 0xE9C6D914C4B8D9CA  # crc64.c's own test vector


def test_rdb_checker_on_real_and_altered_files(tmp_path: Path) -> None:
    data = _rdb(tmp_path)
    checker = RdbChecker()
    for start in range(0, len(data), 7):  # in odd pieces: the trailer straddles them
        checker.update(data[start:start + 7])
    assert checker.problem() is None
    assert checker.checksummed
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    checker = RdbChecker()
    checker.update(bytes(flipped))
    assert checker.problem() is not None
    assert "CRC64" in str(checker.problem())
    checker = RdbChecker()
    checker.update(b"NOTREDIS" + data[8:])
    assert checker.problem() == "it does not start with an RDB header (REDIS and a 4-digit version)"
    unchecked = data[:-8] + bytes(8)  # rdbchecksum no
    checker = RdbChecker()
    checker.update(unchecked)
    assert checker.problem() is None
    assert not checker.checksummed


def test_verify_paths_agree_on_an_altered_rdb(tmp_path: Path) -> None:
    """The same RDB, its trailer's CRC altered: redis-check-rdb and the Python check both say checksum."""
    import hashlib

    import zstandard

    from openwatch_backup.operations import redis_verify
    from openwatch_backup.storage.local import LocalStorage

    data = bytearray(_rdb(tmp_path))
    data[-1] ^= 0xFF
    stored = zstandard.ZstdCompressor().compress(bytes(data))
    (tmp_path / "store" / "redis").mkdir(parents=True)
    (tmp_path / "store" / "redis" / "redis_20261130_000000.rdb.zst").write_bytes(stored)

    class Ctx:
        storage = LocalStorage(tmp_path / "store")

    manifest = Manifest.model_validate({
        "run_id": "00000000-0000-0000-0000-000000000001", "kind": "redis", "format": "rdb", "compression": "zstd",
        "wrapper": "zstd", "created_at": "2026-11-30T00:00:00+00:00", "finished_at": "2026-11-30T00:00:01+00:00",
        "database": "openwatch", "server_version": "", "pg_dump_version": "", "openwatch_alembic_head": None,
        "artifact": "redis_20261130_000000.rdb.zst", "size_bytes": len(stored),
        "sha256": hashlib.sha256(stored).hexdigest(), "row_counts": {}, "canary_nonce": None,
        "canary_included": False, "tables": [], "excluded_table_data": [], "package_version": "0"})
    key = "redis/redis_20261130_000000.rdb.zst"
    with_program = redis_verify.verify_rdb(Ctx(), manifest, key, {})  # type: ignore[arg-type]
    assert with_program.checks["rdb_check"] == "redis-check-rdb"
    assert with_program.reason == "checksum"
    assert "RDB CRC error" in with_program.message
    os.environ["PATH"], saved = str(tmp_path), os.environ["PATH"]
    try:
        in_python = redis_verify.verify_rdb(Ctx(), manifest, key, {})  # type: ignore[arg-type]
    finally:
        os.environ["PATH"] = saved
    assert in_python.checks["rdb_check"] == "crc64"
    assert in_python.reason == "checksum"
    assert "the file's trailer says" in in_python.message
    assert shutil.which("redis-check-rdb") is not None


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", "postgresql://u:p@localhost/openwatch")
    assert load_settings().redis is False
    assert load_settings().redis_container == "openwatch-redis"
    monkeypatch.setenv("OPENWATCH_BACKUP_REDIS", "on")
    monkeypatch.setenv("OPENWATCH_REDIS_URL", "redis://:pw-secret@redis:6379/0")
    settings = load_settings()
    assert settings.redis is True
    assert settings.redis_url == "redis://:pw-secret@redis:6379/0"
    monkeypatch.setenv("OPENWATCH_REDIS_URL", "http://:pw-secret@redis")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message == ("OPENWATCH_REDIS_URL must be a redis://, rediss:// or unix:// URL, e.g. "
                                    "redis://:PASSWORD@redis:6379/0")
    monkeypatch.setenv("OPENWATCH_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("OPENWATCH_BACKUP_REDIS_SAVE_TIMEOUT_SECONDS", "0")
    with pytest.raises(ConfigError, match="OPENWATCH_BACKUP_REDIS_SAVE_TIMEOUT_SECONDS"):
        load_settings()


def test_nightly_dispatch_queues_a_redis_snapshot_when_on(openwatch_db: str, tmp_path: Path, make_service) -> None:
    for redis_on, expected in ((False, ["backup"]), (True, ["backup", "redis"])):
        # The plain dispatch (nightly sets off): the set's Redis member is tests/test_sets_redis.py's.
        service = make_service(openwatch_db, tmp_path / f"b{redis_on}", schedule="0 2 * * *",
                               drill_schedule="0 4 * * 0", redis=redis_on, redis_url="redis://:pw@redis:6379/0",
                               nightly_set=False)
        with service.engine.begin() as conn:  # each round on an empty catalog
            from sqlalchemy import text

            conn.execute(text("delete from backup_runs"))
            conn.execute(text("delete from backup_settings"))
        installed = datetime.now(UTC)
        assert service.dispatch_due(installed) == []
        nightly = next_fire("0 2 * * *", installed)
        queued = service.dispatch_due(nightly + timedelta(seconds=20))
        assert [kind for kind, _ in queued] == expected
        runs = [service.get_run(str(run_id)) for _, run_id in queued]
        assert [(r.kind, r.trigger, r.status) for r in runs] == [(k, "schedule", "queued") for k in
                                                                 ["full", *expected[1:]]]
        assert service.dispatch_due(nightly + timedelta(seconds=80)) == []  # once a night, the snapshot too


@podman_test
def test_catalog_rebuild_finds_the_snapshot(service: BackupService, rclient: redis.Redis) -> None:
    """The manifest alone brings the run back (redis/ is one of the families rebuild lists), and it verifies."""
    from sqlalchemy import text

    rclient.set("k", "v")
    run = service.backup(service.build_request(BackupKind.REDIS))
    with service.engine.begin() as conn:
        conn.execute(text("delete from backup_copies"))
        conn.execute(text("delete from backup_runs"))
    report = service.rebuild_catalog()
    assert (report.inserted, report.skipped) == ([str(run.id)], {})
    rebuilt = service.get_run(str(run.id))
    assert (rebuilt.kind, rebuilt.status, rebuilt.sha256, rebuilt.artifact_location) == \
        ("redis", "succeeded", run.sha256, run.artifact_location)
    verify, result = service.verify(str(run.id))
    assert verify.status == "succeeded"
    assert result is not None
    assert result.checks["rdb_check"] == "redis-check-rdb"
    deep, deep_result = service.verify(str(run.id), deep=True)  # no database to restore into: the same checks
    assert deep.status == "succeeded"
    assert deep_result is not None
    assert deep_result.deep
    assert "scratch_database" not in deep_result.checks
