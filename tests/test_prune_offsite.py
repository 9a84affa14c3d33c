"""Retention per location on a real catalog, a real backup folder and moto's S3 over HTTP: local and S3 copies
age by their own limits with their own verified floor, a local file waits for its verified off-site copy, only
our own keys are ever deleted, a refused delete fails the prune, and a prune killed at any S3 step is finished
by the next one."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.cli import app
from openwatch_backup.cli.common import human_bytes
from openwatch_backup.core.copies import CopyState, CopyStorage
from openwatch_backup.errors import StorageAccessDenied
from openwatch_backup.service import BackupService
from openwatch_backup.storage.copy import copy_object
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.moto_server import PREFIX, raw_client
from tests.support.offsite import s3_env, s3_overrides
from tests.support.prune import Env, age, decisions, listing, make_env, prune_killed_at, sql
from tests.support.restore_helpers import CLI, cli_env

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:unclosed file <_io.Buffered:ResourceWarning")]

FOREIGN = [f"{PREFIX}/postgres/notes.txt",  # under our prefix, not named by any run
           f"{PREFIX}/postgres/openwatch_20200101_000000.dump.zst",  # looks like ours, no catalog row names it
           "elsewhere/postgres/openwatch_20200101_000000.dump.zst", "top-level.txt"]  # outside our prefix


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    answer = raw_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in answer.get("Contents", []))


def copy_state(env: Env, run: BackupRun, storage: CopyStorage) -> str | None:
    copy = env.service.copies.get(run.id, storage)
    return copy.state if copy is not None else None


def put_offsite(env: Env, run: BackupRun, state: CopyState = CopyState.VERIFIED) -> None:
    """The backup's S3 copy as helper C's `offsite` leaves it: both objects and a copy row in `state` (a failed
    or pending copy uploads nothing)."""
    remote = env.service.offsite
    assert remote is not None
    artifact, manifest = env.keys(run)
    env.service.copies.record(run.id, CopyStorage.S3, key=artifact, location=remote.location(artifact))
    if state is CopyState.VERIFIED:
        assert run.sha256 is not None
        assert run.size_bytes is not None
        copy_object(env.service.storage, remote, artifact, sha256=run.sha256, size=run.size_bytes)
        remote.put_bytes(manifest, (env.dir / manifest).read_bytes())
        env.service.copies.verified(run.id, CopyStorage.S3, size=run.size_bytes, sha256=run.sha256)
    elif state is CopyState.FAILED:
        env.service.copies.failed(run.id, CopyStorage.S3, "cannot reach the bucket (test)")


def ours(env: Env, *runs: BackupRun) -> list[str]:
    return [f"{PREFIX}/{k}" for r in runs for k in env.keys(r)]


@pytest.fixture
def s3_env_factory(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
                   moto_endpoint: str, bucket: str) -> Callable[..., Env]:
    def build(endpoint: str = moto_endpoint, bucket_name: str = bucket, **settings: Any) -> Env:
        return make_env(backup_env, make_service, monkeypatch, **{
            "retention_days": 7, "verified_floor": 1, **s3_overrides(endpoint, bucket_name), **settings})
    return build


def test_each_location_keeps_its_copies_by_its_own_age(s3_env_factory: Callable[..., Env], moto_endpoint: str,
                                                       bucket: str) -> None:
    env = s3_env_factory()
    newest, mid, old = env.backup(), env.backup(days=10), env.backup(days=40)
    for run in (newest, mid, old):
        put_offsite(env, run)
    client = raw_client(moto_endpoint)
    for key in FOREIGN:
        client.put_object(Bucket=bucket, Key=key, Body=b"not a backup of ours")

    run = env.service.prune(apply=True)

    assert run.status == "succeeded", run.error
    assert decisions(run) == {str(newest.id): ("keep", "newest verified backup"),
                              str(mid.id): ("delete", "older than 7 days"),
                              str(old.id): ("delete", "older than 7 days")}
    assert {d["run"]: (d["action"], d["reason"]) for d in run.details["s3_plan"]} == {
        str(newest.id): ("keep", "newest verified backup"), str(mid.id): ("keep", "within 30 days"),
        str(old.id): ("delete", "older than 30 days")}
    assert listing(env.dir) == sorted(env.keys(newest))
    assert bucket_keys(moto_endpoint, bucket) == sorted([*ours(env, newest, mid), *FOREIGN])
    assert sorted(run.details["s3_deleted"]) == sorted(env.keys(old))
    states = {r.id: (copy_state(env, r, CopyStorage.LOCAL), copy_state(env, r, CopyStorage.S3),
                     env.run(r).pruned_at is not None) for r in (newest, mid, old)}
    assert states == {newest.id: ("verified", "verified", False), mid.id: ("deleted", "verified", False),
                      old.id: ("deleted", "deleted", True)}
    assert run.details["summary"]["s3"] == {"copies_kept": 2, "copies_to_delete": 1, "copies_deleted": 1,
                                            "objects_deleted": 2, "bytes_to_free": old.size_bytes}

    again = env.service.prune(apply=True)  # nothing left to do; the S3-only backup is judged by the S3 plan only
    assert (again.status, again.details["deleted"], again.details["s3_deleted"]) == ("succeeded", [], [])
    assert [d["run"] for d in again.details["plan"]] == [str(newest.id)]
    assert bucket_keys(moto_endpoint, bucket) == sorted([*ours(env, newest, mid), *FOREIGN])


def test_a_local_file_waits_for_its_verified_off_site_copy(s3_env_factory: Callable[..., Env], moto_endpoint: str,
                                                           bucket: str) -> None:
    env = s3_env_factory()
    newest, failed, never = env.backup(), env.backup(days=10), env.backup(days=12)
    put_offsite(env, newest)
    put_offsite(env, failed, CopyState.FAILED)  # `never` has no S3 copy at all
    before = listing(env.dir)

    run = env.service.prune(apply=True)

    assert run.status == "succeeded", run.error
    assert decisions(run) == {str(newest.id): ("keep", "newest verified backup"),
                              str(failed.id): ("keep", "off-site copy not verified yet (s3: failed)"),
                              str(never.id): ("keep", "off-site copy not verified yet (s3: not copied)")}
    assert listing(env.dir) == before
    assert bucket_keys(moto_endpoint, bucket) == ours(env, newest)
    assert [env.run(r).pruned_at for r in (failed, never)] == [None, None]
    assert copy_state(env, failed, CopyStorage.S3) == "failed"

    put_offsite(env, failed)  # its copy verifies later: the next prune deletes its local file
    assert decisions(env.service.prune(apply=True))[str(failed.id)] == ("delete", "older than 7 days")
    assert listing(env.dir) == sorted([*env.keys(newest), *env.keys(never)])


def test_each_location_keeps_its_own_verified_floor(s3_env_factory: Callable[..., Env], moto_endpoint: str,
                                                    bucket: str) -> None:
    env = s3_env_factory(verified_floor=2)
    fresh, b, c, d = env.backup(days=2), env.backup(days=40), env.backup(days=50), env.backup(days=60)
    put_offsite(env, fresh, CopyState.FAILED)  # not verified in S3: the S3 floor is made of older copies
    for run in (b, c, d):
        put_offsite(env, run)

    run = env.service.prune(apply=True)

    assert run.status == "succeeded", run.error
    assert decisions(run) == {str(fresh.id): ("keep", "newest verified backup"),
                              str(b.id): ("keep", "verified floor (2)"),
                              str(c.id): ("delete", "older than 7 days"), str(d.id): ("delete", "older than 7 days")}
    assert {x["run"]: (x["action"], x["reason"]) for x in run.details["s3_plan"]} == {
        str(fresh.id): ("keep", "within 30 days"), str(b.id): ("keep", "newest verified backup"),
        str(c.id): ("keep", "verified floor (2)"), str(d.id): ("delete", "older than 30 days")}
    assert listing(env.dir) == sorted([*env.keys(fresh), *env.keys(b)])
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, b, c))
    assert (copy_state(env, c, CopyStorage.LOCAL), copy_state(env, c, CopyStorage.S3)) == ("deleted", "verified")
    assert env.run(c).pruned_at is None
    assert env.run(d).pruned_at is not None


def test_a_delete_refused_by_object_lock_fails_the_prune_and_changes_nothing_of_that_copy(
        s3_env_factory: Callable[..., Env], moto_endpoint: str, bucket: str, proxy: FaultProxy) -> None:
    env = s3_env_factory(endpoint=proxy.url)
    newest, old = env.backup(), env.backup(days=40)
    put_offsite(env, newest)
    put_offsite(env, old)
    artifact = env.keys(old)[0]
    refusal = Fault("DELETE", f"/{PREFIX}/{artifact}", status=403, code="AccessDenied",
                    message="Access Denied because object protected by object lock.", times=10)
    proxy.faults.append(refusal)

    with pytest.raises(StorageAccessDenied) as info:
        env.service.prune(apply=True)

    location = f"s3://{bucket}/{PREFIX}/{artifact}"
    assert refusal.hits >= 1
    assert info.value.message.startswith(f"cannot delete {location}: access denied (AccessDenied); ")
    run = env.service.list_runs(limit=1, kind="prune")[0]
    assert (run.status, run.error) == ("failed", info.value.message)
    assert "\n" not in (run.error or "")
    assert copy_state(env, old, CopyStorage.S3) == "verified"  # the row stays as it was
    assert "pruning_s3" not in env.run(old).details
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, newest, old))
    # Its local file was due and its S3 copy is verified (and stays): the local copy alone went.
    assert listing(env.dir) == sorted(env.keys(newest))
    assert (copy_state(env, old, CopyStorage.LOCAL), env.run(old).pruned_at) == ("deleted", None)

    proxy.faults.clear()  # the lock expired: the next prune takes the last copy
    assert env.service.prune(apply=True).status == "succeeded"
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, newest))
    assert env.run(old).pruned_at is not None


def test_on_an_object_lock_bucket_the_delete_hides_our_object_and_s3_keeps_the_locked_version(
        s3_env_factory: Callable[..., Env], moto_endpoint: str) -> None:
    """S3's own semantics (moto's too): a DeleteObject without a version id on a versioned (Object Lock) bucket
    adds a delete marker and succeeds; the locked version stays until its retention ends. Only a delete of that
    version, or a policy denying s3:DeleteObject, is refused (the 403 case above)."""
    locked = f"owb-lock-{uuid.uuid4().hex[:12]}"
    client = raw_client(moto_endpoint)
    client.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    env = s3_env_factory(bucket_name=locked)
    newest, old = env.backup(), env.backup(days=40)
    put_offsite(env, newest)
    put_offsite(env, old)
    artifact = f"{PREFIX}/{env.keys(old)[0]}"
    until = datetime.now(UTC) + timedelta(days=1)
    client.put_object_retention(Bucket=locked, Key=artifact, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})

    assert env.service.prune(apply=True).status == "succeeded"

    assert bucket_keys(moto_endpoint, locked) == sorted(ours(env, newest))
    versions = client.list_object_versions(Bucket=locked, Prefix=artifact)
    assert [v["Key"] for v in versions.get("Versions", []) if v["Key"] == artifact] == [artifact]  # locked: kept
    assert [m["Key"] for m in versions.get("DeleteMarkers", []) if m["Key"] == artifact] == [artifact]
    assert (copy_state(env, old, CopyStorage.S3), env.run(old).pruned_at is not None) == ("deleted", True)


def test_a_backup_from_before_backup_copies_gets_its_local_row_when_its_file_goes(
        s3_env_factory: Callable[..., Env], moto_endpoint: str, bucket: str) -> None:
    env = s3_env_factory()
    newest, mid = env.backup(), env.backup(days=10)
    put_offsite(env, newest)
    put_offsite(env, mid)
    sql(env.url, "DELETE FROM backup_copies WHERE run_id = %s AND storage = 'local'", mid.id)

    assert env.service.prune(apply=True).status == "succeeded"

    local = env.service.copies.get(mid.id, CopyStorage.LOCAL)
    assert local is not None
    assert (local.state, local.key, local.deleted_at is not None) == ("deleted", env.keys(mid)[0], True)
    assert (copy_state(env, mid, CopyStorage.S3), env.run(mid).pruned_at) == ("verified", None)
    assert listing(env.dir) == sorted(env.keys(newest))


def test_a_listing_refused_is_an_error_never_no_backups(s3_env_factory: Callable[..., Env],
                                                        proxy: FaultProxy) -> None:
    env = s3_env_factory(endpoint=proxy.url)
    newest = env.backup()
    put_offsite(env, newest)
    proxy.faults.append(Fault("GET", "list-type=2", status=403, code="AccessDenied", message="Access Denied",
                              times=10))

    with pytest.raises(StorageAccessDenied) as info:
        env.service.prune()

    assert info.value.message.startswith("cannot list s3://")
    assert env.service.list_runs(limit=1, kind="prune")[0].status == "failed"
    assert copy_state(env, newest, CopyStorage.S3) == "verified"


def test_cli_shows_the_plan_of_each_location_and_s3_days_can_be_overridden(
        s3_env_factory: Callable[..., Env], moto_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = s3_env_factory()
    for name, value in {**s3_env(moto_endpoint, bucket), "OPENWATCH_BACKUP_RETENTION_DAYS": "7",
                        "OPENWATCH_BACKUP_VERIFIED_FLOOR": "1", "COLUMNS": "200"}.items():
        monkeypatch.setenv(name, value)
    newest, old = env.backup(), env.backup(days=40)
    put_offsite(env, newest)
    put_offsite(env, old)

    shown = CliRunner().invoke(app, ["prune"], catch_exceptions=False)

    assert shown.exit_code == 0, shown.output
    assert "local copies: retention plan" in shown.stdout
    assert "off-site (s3) copies: retention plan" in shown.stdout
    assert "older than 30 days" in shown.stdout
    assert f"s3: 1 copy(ies) would be deleted ({human_bytes(old.size_bytes or 0)}), 1 kept" in shown.stdout

    sql(env.url, "INSERT INTO backup_settings (key, value) VALUES ('retention.s3_days', %s)", Jsonb(60))
    as_json = json.loads(CliRunner().invoke(app, ["prune", "--json"], catch_exceptions=False).stdout)
    assert as_json["details"]["policy"]["s3_retention_days"] == 60
    assert {d["run"]: d["reason"] for d in as_json["details"]["s3_plan"]}[str(old.id)] == "within 60 days"
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, newest, old))  # dry runs delete nothing


def test_a_bucket_that_does_not_answer_leaves_s3_alone_and_local_retention_runs(
        s3_env_factory: Callable[..., Env], moto_endpoint: str, bucket: str, proxy: FaultProxy) -> None:
    """The chain's prune right after a copy failed because the endpoint is down: the local plan still runs from
    the catalog's copy states (a local file goes only if its S3 copy is recorded verified), the S3 plan is
    skipped with a warning, and nothing is read as "no backups"."""
    env = s3_env_factory(endpoint=proxy.url)
    newest, old, waiting = env.backup(), env.backup(days=40), env.backup(days=20)
    put_offsite(env, newest)
    put_offsite(env, old)
    put_offsite(env, waiting, CopyState.FAILED)
    proxy.down = True

    run = env.service.prune(apply=True)

    assert run.status == "succeeded", run.error
    assert "s3_plan" not in run.details
    assert any(w.startswith("s3 copies were not judged: cannot list s3://") for w in run.details["warnings"])
    assert decisions(run)[str(waiting.id)] == ("keep", "off-site copy not verified yet (s3: failed)")
    assert listing(env.dir) == sorted([*env.keys(newest), *env.keys(waiting)])
    assert (copy_state(env, old, CopyStorage.LOCAL), copy_state(env, old, CopyStorage.S3)) == ("deleted", "verified")
    assert env.run(old).pruned_at is None
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, newest, old))

    proxy.down = False  # back: the S3 plan takes the old copy, the backup's last one
    assert env.service.prune(apply=True).status == "succeeded"
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, newest))
    assert env.run(old).pruned_at is not None


# --- kill at each S3 step, then `prune --apply` again from the CLI
@dataclass
class Scene:
    env: Env
    cli_env: dict[str, str]
    newest: BackupRun
    mid: BackupRun  # 10 days: its local file goes, its S3 copy stays
    old: BackupRun  # 40 days: both copies go


@pytest.fixture
def scene(s3_env_factory: Callable[..., Env], moto_endpoint: str, bucket: str, backup_env: Any) -> Scene:
    env = s3_env_factory()
    newest, mid, old = env.backup(), env.backup(days=10), env.backup(days=40)
    for run in (newest, mid, old):
        put_offsite(env, run)
    variables = cli_env(backup_env.url, backup_env.dir, **s3_env(moto_endpoint, bucket),
                        OPENWATCH_BACKUP_RETENTION_DAYS="7", OPENWATCH_BACKUP_VERIFIED_FLOOR="1")
    return Scene(env, variables, newest, mid, old)


def _killed_at(scene: Scene, point: str, pause_file: Path) -> None:
    prune_killed_at(point, pause_file, scene.cli_env)


S3_KILLS = ["prune:s3-marked", "prune:s3-deleted:1", "prune:s3-deleted:2", "prune:s3-recorded",
            "prune:local-marked", "prune:local-recorded", "prune:deleted:1"]


@pytest.mark.parametrize("point", S3_KILLS)
def test_a_prune_killed_at_an_s3_step_is_finished_by_the_next(scene: Scene, point: str, tmp_path: Path,
                                                              moto_endpoint: str, bucket: str) -> None:
    dry = json.loads(subprocess.run([str(CLI), "prune", "--json"], env=scene.cli_env, capture_output=True,
                                    text=True, timeout=120, check=True).stdout)
    _killed_at(scene, point, tmp_path / "paused")
    for args in (("sweep",), ("prune", "--apply", "--json")):
        result = subprocess.run([str(CLI), *args], env=scene.cli_env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert json.loads(result.stdout)["status"] == "succeeded"

    env = scene.env
    assert {d["run"]: d["action"] for d in dry["details"]["s3_plan"]} == {
        str(scene.newest.id): "keep", str(scene.mid.id): "keep", str(scene.old.id): "delete"}
    assert listing(env.dir) == sorted(env.keys(scene.newest))
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, scene.newest, scene.mid))
    states = {r.id: (copy_state(env, r, CopyStorage.LOCAL), copy_state(env, r, CopyStorage.S3),
                     env.run(r).pruned_at is not None) for r in (scene.newest, scene.mid, scene.old)}
    assert states == {scene.newest.id: ("verified", "verified", False), scene.mid.id: ("deleted", "verified", False),
                      scene.old.id: ("deleted", "deleted", True)}
    assert [r.status for r in env.service.list_runs(limit=100) if r.status in ("queued", "running")] == []


@pytest.mark.parametrize("point", ["prune:s3-marked", "prune:s3-deleted:1", "prune:s3-deleted:2"])
def test_a_prune_killed_while_taking_a_last_copy_from_s3_is_finished_by_the_next(
        scene: Scene, point: str, tmp_path: Path, moto_endpoint: str, bucket: str) -> None:
    """The S3 copy is the backup's last one (its local file went earlier): the intent is the whole backup's
    (`details.pruning`), and the re-run deletes what is left in S3 and sets pruned_at."""
    def cli(*args: str) -> None:
        result = subprocess.run([str(CLI), *args], env=scene.cli_env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (args, result.stdout, result.stderr)

    cli("prune", "--apply")
    env, mid = scene.env, scene.mid
    assert copy_state(env, mid, CopyStorage.LOCAL) == "deleted"
    age(env.url, mid, 40)

    _killed_at(scene, point, tmp_path / "paused")
    assert "pruning" in env.run(mid).details
    cli("sweep")
    cli("prune", "--apply")

    assert listing(env.dir) == sorted(env.keys(scene.newest))
    assert bucket_keys(moto_endpoint, bucket) == sorted(ours(env, scene.newest))
    assert (copy_state(env, mid, CopyStorage.S3), env.run(mid).pruned_at is not None) == ("deleted", True)
