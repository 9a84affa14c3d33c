"""Issue 13's end-to-end test: a whole OpenWatch host is backed up the scheduled way, lost, and recovered.

The source system: the sample OpenWatch database (its credentials encrypted under the sample master key), config
files (keys, certificates, a link), a Redis in a podman container, and a volume holding files of several owners
and modes, reached through the real Docker Engine API (podman's). The nightly set takes the database, the config
bundle (its inputs are new) and the Redis snapshot, and copies them off-site (moto's S3 server); the volume gets
its snapshot and copy too. Then the host is lost: its backup directory, its database, its config files, its
volume and the container that used it. On the "new host" (the same server, an empty backup directory) the
runbook's one command, `recover --from s3 --volumes`, brings back identical data, identical config files,
credentials that decrypt with the restored bundle's key, and an identical volume.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from openwatch_backup import devstack
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.devstack import PostgresHandle
from openwatch_backup.sample.credentials import SAMPLE_MASTER_KEY
from openwatch_backup.service import BackupService
from openwatch_backup.service.sets import execute_set, request_set
from tests.podman_fixtures import RedisContainer
from tests.support.config_bundle import make_inputs, tree
from tests.support.offsite import s3_env, s3_overrides
from tests.support.podman_lab import BUSYBOX_IMAGE, PodmanLab
from tests.support.restore_helpers import cli_env, content, databases_named_after, dbname_of, run_cli
from tests.test_recover import SKIP, config_files

pytestmark = [pytest.mark.podman, pytest.mark.slow]

VOLUME = "owb_e2e_app_data"
APP = "owb-e2e-app"
POPULATE = r"""set -e; cd /vol; mkdir -p scans/2026 empty; printf 'report\n' > scans/2026/r1.xml
chown 10001:10001 scans/2026/r1.xml; chmod 640 scans/2026/r1.xml; head -c 200000 /dev/urandom > scans/blob.bin
ln -s scans/2026/r1.xml latest; printf 'x' > .hidden; chmod 700 empty"""
LISTING = "cd /vol && find . -exec stat -c '%n %F %a %u:%g %s' {} + | sort && find . -type f | sort | xargs md5sum"


def volume_listing(podman: PodmanLab, volume: str) -> str:
    # Detached, waited for, then its logs: `run(remove=True)` on podman sometimes returned the output cut short.
    container = podman.run(BUSYBOX_IMAGE, command=["sh", "-c", LISTING], detach=True,
                           volumes={volume: {"bind": "/vol", "mode": "ro"}})
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
        listing = bytes(container.logs(stdout=True, stderr=False)).decode()
        assert "  ./scans/blob.bin\n" in listing, listing  # whole: the md5 part comes last
        return listing
    finally:
        container.remove(force=True)


@pytest.fixture
def app_volume(podman: PodmanLab) -> Iterator[str]:
    client = podman.client()
    client.volumes.create(VOLUME)
    podman.run(BUSYBOX_IMAGE, command=["sh", "-c", POPULATE], remove=True, volumes={VOLUME: {"bind": "/vol"}})
    podman.run(BUSYBOX_IMAGE, command=["sleep", "3600"], name=APP, detach=True, volumes={VOLUME: {"bind": "/data"}})
    try:
        yield VOLUME
    finally:
        for container in client.containers.list(all=True, filters={"name": APP}):
            container.remove(force=True)
        for volume in client.volumes.list(filters={"name": VOLUME}):
            volume.remove(force=True)


def test_a_lost_host_comes_back_whole_with_one_command(
        podman: PodmanLab, redis_container: RedisContainer, app_volume: str, pg: PostgresHandle, openwatch_db: str,
        tmp_path: Path, moto_endpoint: str, bucket: str, make_service: Callable[..., BackupService],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # --- the source host, backed up the scheduled way
    keys, certs, _ = make_inputs(tmp_path / "host")
    passfile = tmp_path / "passphrase"
    passfile.write_text("the operator's long passphrase\n")
    passfile.chmod(0o600)
    store = redis.Redis(unix_socket_path=str(redis_container.socket))
    store.flushall()
    store.mset({f"scan:{i}": f"result {i}" for i in range(100)})
    store.close()
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    monkeypatch.setenv("OPENWATCH_MASTER_KEY", SAMPLE_MASTER_KEY)  # the worker's settings: into openwatch.env
    service = make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket),
                           config_paths=f"{keys},{certs}", passphrase_file=passfile, redis=True,
                           redis_url=redis_container.url, redis_container=redis_container.name,
                           db_container=redis_container.name, volumes=VOLUME)
    set_id, created = request_set(service, requested_by="celery-beat")
    assert created
    nightly = execute_set(service, set_id)
    assert (nightly.status, nightly.details["outcome"]) == ("succeeded", "complete"), nightly.error
    members = [r for r in service.recorder.list(limit=10, parent_id=set_id, oldest_first=True)
               if r.kind in ("full", "config", "redis")]
    assert sorted(m.kind for m in members) == ["config", "full", "redis"]
    (snapshot_id,) = service.request_volume_snapshots([VOLUME], [])
    snapshot = service.execute_backup(snapshot_id)
    assert snapshot.status == "succeeded", snapshot.error
    service.copy_offsite(str(snapshot.id))
    for backup in [*members, snapshot]:
        copy = service.copies.get(backup.id, CopyStorage.S3)
        assert copy is not None
        assert (backup.kind, copy.state) == (backup.kind, "verified")
    full = next(m for m in members if m.kind == "full")
    bundle = next(m for m in members if m.kind == "config")
    before = content(openwatch_db, skip=SKIP)
    files = config_files(keys, certs)
    volume_before = volume_listing(podman, VOLUME)
    service.close()

    # --- the host is lost
    dbname = dbname_of(openwatch_db)
    shutil.rmtree(tmp_path / "backups")
    shutil.rmtree(tmp_path / "host")
    devstack.drop_database(pg, dbname)
    client = podman.client()
    client.containers.get(APP).remove(force=True)
    client.volumes.get(VOLUME).remove(force=True)

    # --- the new host: one command
    env = cli_env(openwatch_db, tmp_path / "new-host-backups", **s3_env(moto_endpoint, bucket),
                  OPENWATCH_BACKUP_PASSPHRASE_FILE=str(passfile), DOCKER_HOST=podman.socket_url,
                  OPENWATCH_BACKUP_DB_CONTAINER=redis_container.name)
    folder = tmp_path / "recovered-config"
    try:
        done = run_cli("recover", "--from", "s3", "--volumes", "--config-to", str(folder), env=env, timeout=900)

        assert (done.returncode, done.stderr) == (0, ""), (done.stdout, done.stderr)
        assert f"database: full backup {full.id}" in done.stdout
        assert f"config: bundle {bundle.id}" in done.stdout
        assert f"volume {VOLUME}: snapshot {snapshot.id}" in done.stdout
        assert content(openwatch_db, skip=SKIP) == before  # the data
        assert {n: e for n, e in tree(folder).items() if n in files} == files  # the config files
        [run] = json.loads(run_cli("list", "--kind", "recover", "--json", env=env).stdout)
        secrets = run["details"]["steps"]["checks"]["secrets"]
        assert secrets["decrypted"] == secrets["sampled"] > 0  # the credentials decrypt with the bundle's key
        assert secrets["bundle_run"] == str(bundle.id)
        assert volume_listing(podman, VOLUME) == volume_before  # the volume
        assert databases_named_after(pg, dbname) == [dbname]
    finally:
        for volume in client.volumes.list(filters={"name": VOLUME}):
            volume.remove(force=True)


def test_a_recover_killed_between_two_volumes_restores_only_the_second_again(
        podman: PodmanLab, pg: PostgresHandle, openwatch_db: str, tmp_path: Path, moto_endpoint: str, bucket: str,
        make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch) -> None:
    """The first volume's restore succeeded, the second was being written when the kill came: the next recover
    keeps the first (it exists now, and is its own), removes the half-written second and restores it."""
    from tests.support.restore_kill import start_paused

    names = [f"{VOLUME}_one", f"{VOLUME}_two"]
    client = podman.client()
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    helper = podman.run(BUSYBOX_IMAGE, command=["sleep", "3600"], name=APP, detach=True)
    try:
        for name in names:
            client.volumes.create(name)
            podman.run(BUSYBOX_IMAGE, command=["sh", "-c", POPULATE], remove=True, volumes={name: {"bind": "/vol"}})
        listings = {name: volume_listing(podman, name) for name in names}
        service = make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket),
                               db_container=APP, volumes=",".join(names))
        full = service.backup(service.build_request())
        service.copy_offsite(str(full.id))
        for run_id in service.request_volume_snapshots(names, []):
            service.copy_offsite(str(service.execute_backup(run_id).id))
        service.close()
        for name in names:
            client.volumes.get(name).remove(force=True)
        env = cli_env(openwatch_db, tmp_path / "new-host-backups", **s3_env(moto_endpoint, bucket),
                      DOCKER_HOST=podman.socket_url, OPENWATCH_BACKUP_DB_CONTAINER=APP)
        args = ["recover", "--from", "s3", "--skip-config", "--volumes", "--terminate-connections"]
        paused = start_paused(args, env, ["volume_restore_writing"], tmp_path / "marker")
        try:
            paused.wait_for("volume_restore_writing")  # the first volume
            paused.resume()
            paused.wait_for("volume_restore_writing")  # the second, created and empty
            paused.kill()
        finally:
            paused.stop()

        done = run_cli(*args, env=env, timeout=900)

        assert (done.returncode, done.stderr) == (0, ""), (done.stdout, done.stderr)
        assert f"volume {names[0]}: restored before" in done.stdout
        assert f"volume {names[1]} restored from snapshot" in done.stdout
        for name in names:
            assert volume_listing(podman, name).splitlines() == listings[name].splitlines(), name
    finally:
        helper.remove(force=True)
        for volume in client.volumes.list():
            if volume.name in names:
                volume.remove(force=True)
        for name in databases_named_after(pg, dbname_of(openwatch_db))[1:]:
            devstack.drop_database(pg, name)
