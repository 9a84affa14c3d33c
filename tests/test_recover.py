"""`recover --from s3|DIR`: the host is lost with its disk, its database and its configuration; the bucket, the
passphrase and the CLI are left. One command brings back the database (identical content), the configuration
(identical files, in a new folder) and proves the bundle's master key decrypts the restored credentials.

Everything is the real CLI as a process against a real PostgreSQL and moto's S3 server. The kill tests stop the
CLI at named instants (operations/kill_points.py), SIGKILL it there, and run recover again: it continues where
the first stopped and ends with the same result as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openwatch_backup import devstack
from openwatch_backup.devstack import PostgresHandle
from openwatch_backup.sample.credentials import SAMPLE_MASTER_KEY
from openwatch_backup.source.scratch import run_prefix_of
from tests.support.config_bundle import make_inputs, tree
from tests.support.offsite import s3_env
from tests.support.restore_helpers import (
    Content,
    cli_env,
    content,
    databases_named_after,
    dbname_of,
    run_cli,
)
from tests.support.restore_kill import start_paused

pytestmark = [pytest.mark.slow]

SKIP = ("public.backup_runs", "public.backup_copies")


@dataclass
class LostHost:
    pg: PostgresHandle
    url: str
    dbname: str
    env: dict[str, str]  # the new host's CLI environment
    before: Content  # the database at its newest backup
    files: dict[str, tuple[str, int, bytes | str]]  # the configuration as it was, by member name
    backup_id: str
    bundle_id: str
    tmp: Path

    def recover(self, *args: str) -> tuple[int, str, str]:
        done = run_cli("recover", *args, env=self.env, timeout=600)
        return done.returncode, done.stdout, done.stderr

    def restored_config(self, folder: Path) -> dict[str, tuple[str, int, bytes | str]]:
        return {name: entry for name, entry in tree(folder).items() if name in self.files}


def cli_ok(*args: str, env: dict[str, str]) -> str:
    done = run_cli(*args, env=env)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def config_files(keys: Path, certs: Path) -> dict[str, tuple[str, int, bytes | str]]:
    found: dict[str, tuple[str, int, bytes | str]] = {}
    for top in (keys, certs):
        for path in [top, *sorted(top.rglob("*"))]:
            name = str(path).lstrip("/")
            if path.is_symlink():
                found[name] = ("link", 0, os.readlink(path))
            elif path.is_dir():
                found[name] = ("dir", path.stat().st_mode & 0o7777, b"")
            else:
                found[name] = ("file", path.stat().st_mode & 0o7777, path.read_bytes())
    return found


@dataclass
class BackedUpHost:
    env: dict[str, str]  # its CLI environment (S3, passphrase, config paths, the worker's master key)
    passfile: Path
    keys: Path
    certs: Path
    backup_id: str
    bundle_id: str


def back_up_a_host(url: str, root: Path, backup_dir: Path, moto_endpoint: str, bucket: str) -> BackedUpHost:
    """Config inputs under root, a passphrase file, a config bundle and a full backup, both copied off-site."""
    keys, certs, _ = make_inputs(root)
    passfile = root.parent / "passphrase"
    passfile.write_text("the operator's long passphrase\n")
    passfile.chmod(0o600)
    env = cli_env(url, backup_dir, **s3_env(moto_endpoint, bucket), OPENWATCH_BACKUP_PASSPHRASE_FILE=str(passfile),
                  OPENWATCH_BACKUP_CONFIG_PATHS=f"{keys},{certs}", OPENWATCH_MASTER_KEY=SAMPLE_MASTER_KEY)
    cli_ok("db", "upgrade", env=env)
    bundle_id = json.loads(cli_ok("backup", "--kind", "config", "--json", env=env))["id"]
    cli_ok("offsite", bundle_id, env=env)
    backup_id = json.loads(cli_ok("backup", "--offsite", "--json", env=env))["backup"]["id"]
    return BackedUpHost(env=env, passfile=passfile, keys=keys, certs=certs, backup_id=backup_id, bundle_id=bundle_id)


@pytest.fixture
def lost_host(pg: PostgresHandle, openwatch_db: str, tmp_path: Path, moto_endpoint: str,
              bucket: str) -> Iterator[LostHost]:
    dbname = dbname_of(openwatch_db)
    old_dir = tmp_path / "old-host-backups"
    old = back_up_a_host(openwatch_db, tmp_path / "old-host", old_dir, moto_endpoint, bucket)
    before = content(openwatch_db, skip=SKIP)
    files = config_files(old.keys, old.certs)
    backup_id, bundle_id = old.backup_id, old.bundle_id
    common = {**s3_env(moto_endpoint, bucket), "OPENWATCH_BACKUP_PASSPHRASE_FILE": str(old.passfile)}

    shutil.rmtree(old_dir)  # the host is lost: its disk, its configuration, its database
    shutil.rmtree(tmp_path / "old-host")
    devstack.drop_database(pg, dbname)
    env = cli_env(openwatch_db, tmp_path / "new-host-backups", **common)
    host = LostHost(pg=pg, url=openwatch_db, dbname=dbname, env=env, before=before, files=files,
                    backup_id=backup_id, bundle_id=bundle_id, tmp=tmp_path)
    try:
        yield host
    finally:
        for name in databases_named_after(pg, dbname):
            devstack.drop_database(pg, name)


def assert_recovered(host: LostHost, folder: Path) -> None:
    assert content(host.url, skip=SKIP) == host.before
    assert host.restored_config(folder) == host.files
    assert databases_named_after(host.pg, host.dbname) == [host.dbname]  # the new host's empty one was not kept
    assert not list(host.tmp.glob("*.partial-*"))
    # This host's runs only: another test's scratch database (pytest -n, or a drill elsewhere) is not ours.
    runs = json.loads(cli_ok("list", "--limit", "10000", "--json", env=host.env))
    prefixes = {uuid.UUID(str(run["id"])).hex[:12] for run in runs}
    with host.pg.connect() as conn:
        scratch = [name for (name,) in conn.execute("SELECT datname FROM pg_database")
                   if run_prefix_of(name) in prefixes]
    assert prefixes
    assert scratch == []


def recover_runs(host: LostHost) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = json.loads(cli_ok("list", "--kind", "recover", "--json", env=host.env))
    return runs


def test_recover_from_the_bucket_brings_back_database_configuration_and_the_key(lost_host: LostHost) -> None:
    folder = lost_host.tmp / "recovered-config"

    code, out, err = lost_host.recover("--from", "s3", "--config-to", str(folder))

    assert (code, err) == (0, ""), (out, err)
    print(out)  # the runbook's example output (README, "Disaster recovery"); shown with -s
    assert_recovered(lost_host, folder)
    steps = [line.split()[0] for line in out.splitlines() if line.startswith(" ") and " s  " in line]
    assert steps == ["catalog", "plan", "config", "database", "checks"], out
    assert f"database: full backup {lost_host.backup_id}" in out
    assert f"config: bundle {lost_host.bundle_id}" in out
    assert f"created database {lost_host.dbname}" in out
    assert "the database was empty (a new host's): nothing else kept" in out
    assert "row counts of" in out
    assert "tables match the backup" in out
    assert f"credentials decrypted with the key of bundle {lost_host.bundle_id}" in out
    assert f"{folder}/{str(lost_host.tmp / 'old-host' / 'etc' / 'keys').lstrip('/')} -> " in out
    assert "the 60 min objective" in out
    assert SAMPLE_MASTER_KEY not in out
    [run] = recover_runs(lost_host)
    assert run["status"] == "succeeded"


def test_dry_run_prints_the_plan_and_changes_nothing(lost_host: LostHost) -> None:
    code, out, err = lost_host.recover("--from", "s3", "--dry-run")

    assert (code, err) == (0, ""), (out, err)
    assert out.splitlines()[0].startswith(f"database: full backup {lost_host.backup_id}")
    assert f"config: bundle {lost_host.bundle_id}" in out
    assert "nothing was changed (--dry-run)" in out
    assert not devstack.database_exists(lost_host.pg, lost_host.dbname)


def test_without_the_passphrase_recover_refuses_before_anything_is_made(lost_host: LostHost) -> None:
    del lost_host.env["OPENWATCH_BACKUP_PASSPHRASE_FILE"]

    code, _out, err = lost_host.recover("--from", "s3")

    assert code != 0
    assert err.startswith("error: no passphrase for config bundles is set"), err
    assert len(err.splitlines()) == 1
    assert not devstack.database_exists(lost_host.pg, lost_host.dbname)


def test_recover_from_a_folder_of_backups(lost_host: LostHost, tmp_path: Path) -> None:
    """The old disk, mounted on the new host: --from DIR (here: the bucket's objects copied to a folder)."""
    from tests.support.moto_server import PREFIX, raw_client

    endpoint = lost_host.env["OPENWATCH_BACKUP_S3_ENDPOINT_URL"]
    bucket = lost_host.env["OPENWATCH_BACKUP_S3_BUCKET"]
    disk = tmp_path / "old-disk"
    client = raw_client(endpoint)
    for obj in client.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/")["Contents"]:
        path = disk / obj["Key"].removeprefix(f"{PREFIX}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    env = {k: v for k, v in lost_host.env.items() if not k.startswith("OPENWATCH_BACKUP_S3_")}
    lost_host.env = env
    folder = tmp_path / "config-from-disk"

    code, out, err = lost_host.recover("--from", str(disk), "--config-to", str(folder))

    assert (code, err) == (0, ""), (out, err)
    assert_recovered(lost_host, folder)


@pytest.mark.parametrize("instant", ["recover_plan_done", "config_restore_extracting", "restoring", "swapped",
                                     "recover_database_done", "recover_checks"])
def test_a_recover_killed_anywhere_continues_when_run_again(lost_host: LostHost, instant: str) -> None:
    folder = lost_host.tmp / "recovered-config"
    paused = start_paused(["recover", "--from", "s3", "--config-to", str(folder)], lost_host.env, [instant],
                          lost_host.tmp / "pause-marker")
    try:
        paused.wait_for(instant)
        paused.kill()
    finally:
        paused.stop()

    code, out, err = lost_host.recover("--from", "s3", "--config-to", str(lost_host.tmp / "unused-folder"))

    assert (code, err) == (0, ""), (out, err)
    assert "(done by the recover run this one resumes)" in out
    assert_recovered(lost_host, folder)  # the folder the first run was given
    assert not (lost_host.tmp / "unused-folder").exists()
    runs = recover_runs(lost_host)
    assert [r["status"] for r in runs] == ["succeeded", "abandoned"], runs
    assert runs[0]["details"]["resumes"] == runs[1]["id"]  # type: ignore[index]


def test_the_host_drill_recovers_from_the_bucket_into_scratch_targets(pg: PostgresHandle, openwatch_db: str,
                                                                      tmp_path: Path, moto_endpoint: str,
                                                                      bucket: str) -> None:
    """The full-system drill: recover's steps from the off-site copies into a scratch database and folder,
    measured against OPENWATCH_BACKUP_HOST_RTO_MINUTES, and nothing of it left; the live database untouched."""
    host = back_up_a_host(openwatch_db, tmp_path / "host", tmp_path / "backups", moto_endpoint, bucket)
    env, backup_id, bundle_id = host.env, host.backup_id, host.bundle_id
    before = content(openwatch_db, skip=SKIP)

    drill = json.loads(cli_ok("drill", "--scenario", "host", "--json", env=env))

    assert drill["status"] == "succeeded", drill["error"]
    rto = drill["details"]["rto"]
    assert (rto["scenario"], rto["within"], rto["target_seconds"]) == ("host_failure", True, 3600)
    steps = rto["recover"]["steps"]
    assert set(steps) == {"catalog", "plan", "config", "database", "checks"}
    assert (steps["plan"]["backup"], steps["plan"]["config"]) == (backup_id, bundle_id)
    assert steps["checks"]["secrets"]["decrypted"] == steps["checks"]["secrets"]["sampled"] > 0
    scratch = drill["details"]["scratch"]
    assert (scratch["removed"], scratch["left"]) == (True, [])
    assert not Path(scratch["folder"]).exists()
    assert not devstack.database_exists(pg, scratch["database"])
    assert content(openwatch_db, skip=SKIP) == before
    restores = json.loads(cli_ok("list", "--kind", "restore", "--json", env=env))
    assert {r["details"]["read_from"] for r in restores} == {"s3"}
    status = run_cli("check", env=env).stdout  # fails on other items (no database drill yet): not this one's
    assert "RTO ok: host failure: recovered in" in status, status


def test_a_wrong_passphrase_stops_recover_before_the_database_and_the_right_one_continues(
        lost_host: LostHost) -> None:
    passfile = Path(lost_host.env["OPENWATCH_BACKUP_PASSPHRASE_FILE"])
    right = passfile.read_text()
    passfile.write_text("not the passphrase the bundle was sealed with\n")
    folder = lost_host.tmp / "recovered-config"

    code, out, err = lost_host.recover("--from", "s3", "--config-to", str(folder))

    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: backup {lost_host.bundle_id} failed verification (passphrase)"), err
    assert not folder.exists()
    assert content(lost_host.url, skip=SKIP) != lost_host.before  # the database step never began

    passfile.write_text(right)
    code, out, err = lost_host.recover("--from", "s3")

    assert (code, err) == (0, ""), (out, err)
    assert_recovered(lost_host, folder)
    assert [r["status"] for r in recover_runs(lost_host)] == ["succeeded", "failed"]


@pytest.mark.parametrize("instant", ["config_restore_extracting", "restoring"])
def test_a_recover_stopped_by_sigterm_ends_cancelled_and_continues_when_run_again(lost_host: LostHost,
                                                                                  instant: str) -> None:
    """`docker stop` sends SIGTERM: the run ends cancelled with one line, its half-made work undone, and the
    next recover continues from it."""
    folder = lost_host.tmp / "recovered-config"
    paused = start_paused(["recover", "--from", "s3", "--config-to", str(folder)], lost_host.env, [instant],
                          lost_host.tmp / "pause-marker")
    try:
        paused.wait_for(instant)
        paused.proc.send_signal(signal.SIGTERM)
        code, _out, err = paused.finish(timeout=120)
    finally:
        paused.stop()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert [r["status"] for r in recover_runs(lost_host)] == ["cancelled"]
    assert not list(lost_host.tmp.glob("*.partial-*"))

    code, out, err = lost_host.recover("--from", "s3")

    assert (code, err) == (0, ""), (out, err)
    assert "(done by the recover run this one resumes)" in out
    assert_recovered(lost_host, folder)
    assert [r["status"] for r in recover_runs(lost_host)] == ["succeeded", "cancelled"]
