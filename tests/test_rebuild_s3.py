"""`catalog rebuild --from s3`: the catalog recreated from the manifests in the bucket, each run with its S3 copy.

A copy found in the bucket is recorded `verified` only when its HEAD shows the manifest's size and our sha256 in
its metadata (the check an upload ends with); anything else is skipped with its reason, like a wrong-size local
file. The forged-manifest checks of tests/test_rebuild_forged.py apply to the bucket the same way. A store that
cannot be listed (AccessDenied, no bucket) is one line and a non-zero exit, never "0 run(s) recreated".

Real PostgreSQL, moto's S3 server over HTTP (a fault proxy in front where a fault is needed), the real CLI
command in-process (CliRunner) with the settings in the environment."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.cli import app
from openwatch_backup.core.naming import manifest_name
from openwatch_backup.service import BackupService
from openwatch_backup.storage.copy import copy_object
from openwatch_backup.storage.s3 import S3Storage
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.moto_server import PREFIX, raw_client
from tests.support.offsite import s3_env, s3_overrides
from tests.support.prune import Env, make_env, sql

pytestmark = [pytest.mark.slow]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def use_bucket(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket_name: str) -> None:
    """The CLI's environment: off-site storage on `bucket_name` at `endpoint`."""
    for name, value in s3_env(endpoint, bucket_name).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
        moto_endpoint: str, bucket: str) -> Env:
    made = make_env(backup_env, make_service, monkeypatch, **s3_overrides(moto_endpoint, bucket))
    use_bucket(monkeypatch, moto_endpoint, bucket)
    return made


def remote(env: Env) -> S3Storage:
    return env.service.require_offsite()


def copy_to_s3(env: Env, run: BackupRun) -> None:
    """What `openwatch-backup offsite RUN` leaves in the bucket: the artifact (our sha256 in its metadata), then
    its manifest, under the same keys as on disk."""
    artifact, manifest = env.keys(run)
    assert run.sha256 is not None
    assert run.size_bytes is not None
    copy_object(env.service.storage, remote(env), artifact, sha256=run.sha256, size=run.size_bytes)
    remote(env).put_bytes(manifest, env.service.storage.read_bytes(manifest))


def empty_catalog(env: Env) -> None:
    """A new host's catalog: the plugin's tables, no row (the copies go with their runs)."""
    sql(env.url, "DELETE FROM backup_runs")


def copies_of(env: Env, run_id: str) -> dict[str, dict[str, Any]]:
    """{storage: (state, key, location, size, sha256)} of one run's copy rows."""
    found = env.service.copies.of_runs([uuid.UUID(run_id)])[uuid.UUID(run_id)]
    return {c.storage: {"state": c.state, "key": c.key, "location": c.location, "size": c.size_bytes,
                        "sha256": c.sha256} for c in found}


def s3_copy(env: Env, run: BackupRun, state: str = "verified") -> dict[str, Any]:
    artifact = env.keys(run)[0]
    return {"state": state, "key": artifact, "location": f"s3://{remote(env).config.bucket}/{PREFIX}/{artifact}",
            "size": run.size_bytes, "sha256": run.sha256}


def put_raw(env: Env, key: str, body: bytes, metadata: dict[str, str]) -> None:
    """An object written by someone else than our upload (a tamperer, `aws s3 cp`)."""
    raw_client(env.service.require_offsite().endpoint).put_object(
        Bucket=remote(env).config.bucket, Key=f"{PREFIX}/{key}", Body=body, Metadata=metadata)


def test_rebuild_from_s3_recreates_the_runs_with_verified_s3_copies(env: Env) -> None:
    runs = [env.backup(), env.backup()]
    for run in runs:
        copy_to_s3(env, run)
    empty_catalog(env)

    rebuilt = invoke("catalog", "rebuild", "--from", "s3")

    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.splitlines() == ["2 run(s) recreated, 0 already present, 0 of pruned backups left for "
                                           "the next prune, 0 manifest(s) skipped"]
    for run in runs:
        row = env.run(run)
        assert (row.status, row.kind, row.size_bytes, row.sha256) == ("succeeded", "full", run.size_bytes, run.sha256)
        assert row.artifact_location == s3_copy(env, run)["location"]
        assert row.details["rebuilt_from_manifest"] is True
        # Verified by the HEAD; no local row: no file exists here, and "deleted" would claim retention took it.
        assert copies_of(env, str(run.id)) == {"s3": s3_copy(env, run)}


def test_rebuild_from_s3_adds_the_s3_copies_to_runs_the_catalog_has(env: Env) -> None:
    run = env.backup()
    local_before = copies_of(env, str(run.id))["local"]
    copy_to_s3(env, run)

    report = env.service.rebuild_catalog(source="s3")

    assert (report.inserted, report.already_present, report.skipped) == ([], [str(run.id)], {})
    assert copies_of(env, str(run.id)) == {"local": local_before, "s3": s3_copy(env, run)}


def test_rebuild_from_local_records_pending_local_copies(env: Env) -> None:
    run = env.backup(verify=False)
    empty_catalog(env)

    report = env.service.rebuild_catalog()

    assert report.inserted == [str(run.id)]
    artifact = env.keys(run)[0]
    assert copies_of(env, str(run.id)) == {"local": {
        "state": "pending", "key": artifact, "location": env.service.storage.location(artifact),
        "size": run.size_bytes, "sha256": run.sha256}}


@pytest.mark.parametrize(("tamper", "reason"), [
    ("truncated", "its artifact {artifact} is {short} bytes, the manifest says {size}"),
    ("other_sha256", "its artifact {artifact} has sha256 {other} in its metadata, the manifest says {sha256}"),
    ("no_sha256", "its artifact {artifact} has no sha256 in its metadata, so `openwatch-backup offsite` did not "
                  "upload it; download it into OPENWATCH_BACKUP_DIR and run `openwatch-backup catalog rebuild` to "
                  "add it from there"),
])
def test_a_tampered_object_is_skipped_with_its_reason(env: Env, tamper: str, reason: str) -> None:
    good, bad = env.backup(), env.backup()
    for run in (good, bad):
        copy_to_s3(env, run)
    artifact_key = env.keys(bad)[0]
    body = env.service.storage.read_bytes(artifact_key)
    other = hashlib.sha256(b"another file").hexdigest()
    if tamper == "truncated":
        put_raw(env, artifact_key, body[:-100], {"sha256": str(bad.sha256)})
    else:
        put_raw(env, artifact_key, body, {"sha256": other} if tamper == "other_sha256" else {})
    empty_catalog(env)

    rebuilt = invoke("catalog", "rebuild", "--from", "s3", "--json")

    assert rebuilt.exit_code == 7, rebuilt.output
    artifact = bad.details["artifact"]
    assert json.loads(rebuilt.stdout) == {
        "inserted": [str(good.id)], "already_present": [], "pruned": [],
        "skipped": {f"postgres/{manifest_name(artifact)}": reason.format(
            artifact=artifact, short=len(body) - 100, size=bad.size_bytes, other=other, sha256=bad.sha256)}}
    assert rebuilt.stderr == "error: 1 manifest(s) skipped, each listed with its reason; the others were added\n"
    assert {str(r.id) for r in env.service.list_runs(limit=100)} == {str(good.id)}


def test_a_tampered_object_of_a_known_run_gets_no_s3_copy(env: Env) -> None:
    run = env.backup()
    copy_to_s3(env, run)
    artifact_key = env.keys(run)[0]
    put_raw(env, artifact_key, b"not the backup", {"sha256": str(run.sha256)})

    report = env.service.rebuild_catalog(source="s3")

    assert report.skipped == {env.keys(run)[1]: f"its artifact {run.details['artifact']} is 14 bytes, the manifest "
                                                f"says {run.size_bytes}"}
    assert set(copies_of(env, str(run.id))) == {"local"}


def test_a_backup_of_another_database_is_added_only_when_asked(env: Env) -> None:
    run = env.backup()
    copy_to_s3(env, run)
    manifest_key = env.keys(run)[1]
    data = json.loads(remote(env).read_bytes(manifest_key))
    data["database"] = "otherdb"
    remote(env).delete(manifest_key)
    remote(env).put_bytes(manifest_key, json.dumps(data).encode())
    empty_catalog(env)

    refused = invoke("catalog", "rebuild", "--from", "s3", "--json")

    assert refused.exit_code == 7, refused.output
    ours = env.service.target.dbname
    assert json.loads(refused.stdout)["skipped"] == {manifest_key: (
        f"it is a backup of database 'otherdb', not of {ours!r}; `openwatch-backup catalog rebuild --any-database` "
        "adds it anyway")}
    assert env.service.list_runs(limit=100) == []

    added = invoke("catalog", "rebuild", "--from", "s3", "--any-database", "--json")

    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["inserted"] == [str(run.id)]
    assert copies_of(env, str(run.id)) == {"s3": s3_copy(env, run)}


def test_a_manifest_copied_under_another_name_in_the_bucket_is_refused(env: Env) -> None:
    """The issue-9 forgery, in the bucket: a copy of a real manifest with a new run id, beside no artifact."""
    run = env.backup()
    copy_to_s3(env, run)
    data = json.loads(remote(env).read_bytes(env.keys(run)[1]))
    data["run_id"] = forged = str(uuid.uuid4())
    copy = "postgres/openwatch_20200101_000000.dump.zst.manifest.json"
    remote(env).put_bytes(copy, json.dumps(data).encode())
    empty_catalog(env)

    report = env.service.rebuild_catalog(source="s3")

    artifact = run.details["artifact"]
    assert report.inserted == [str(run.id)]
    assert report.skipped == {copy: f"it names the artifact {artifact} but is not stored beside it (as "
                                    f"postgres/{manifest_name(artifact)}): openwatch-backup did not write it there"}
    assert forged not in {str(r.id) for r in env.service.list_runs(limit=100)}


def test_access_denied_on_list_is_an_error_never_no_backups(env: Env, proxy: FaultProxy, bucket: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run = env.backup()
    copy_to_s3(env, run)
    empty_catalog(env)
    use_bucket(monkeypatch, proxy.url, bucket)
    denied = proxy.add(Fault("GET", "list-type=2", status=403, code="AccessDenied", message="Access Denied",
                             times=100))

    rebuilt = invoke("catalog", "rebuild", "--from", "s3")

    assert denied.hits == 1  # a 403 is not retried
    assert rebuilt.exit_code == 4, rebuilt.output
    assert rebuilt.stdout == ""
    assert rebuilt.stderr == (
        f"error: cannot list the backups in s3://{bucket}/{PREFIX}/postgres/: access denied; these credentials lack "
        f"s3:ListBucket on bucket {bucket!r}, which `catalog rebuild --from s3` needs to find the manifests "
        "(nothing was added)\n")
    assert env.service.list_runs(limit=100) == []


def test_a_missing_bucket_is_one_line(env: Env, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"owb-missing-{uuid.uuid4().hex[:8]}"
    use_bucket(monkeypatch, moto_endpoint, missing)

    rebuilt = invoke("catalog", "rebuild", "--from", "s3")

    assert rebuilt.exit_code == 4, rebuilt.output
    assert rebuilt.stdout == ""
    assert rebuilt.stderr == (f"error: cannot list s3://{missing}/{PREFIX}/postgres/: bucket {missing!r} does not "
                              f"exist at {moto_endpoint} (NoSuchBucket); create it or fix OPENWATCH_BACKUP_S3_BUCKET\n")


def test_without_s3_settings_the_rebuild_names_the_setting(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENWATCH_BACKUP_S3_BUCKET")

    rebuilt = invoke("catalog", "rebuild", "--from", "s3")

    assert rebuilt.exit_code == 2, rebuilt.output
    assert rebuilt.stderr == ("error: off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET (and "
                              "OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3)\n")


def test_access_denied_on_a_manifest_stops_the_rebuild(env: Env, proxy: FaultProxy, bucket: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A store error says nothing about the manifest: it stops the rebuild rather than skipping every manifest."""
    runs = [env.backup(), env.backup()]
    for run in runs:
        copy_to_s3(env, run)
    empty_catalog(env)
    use_bucket(monkeypatch, proxy.url, bucket)
    denied = proxy.add(Fault("GET", ".manifest.json", status=403, code="AccessDenied", message="Access Denied",
                             times=100))

    rebuilt = invoke("catalog", "rebuild", "--from", "s3")

    first = min(env.keys(run)[1] for run in runs)
    assert denied.hits == 1
    assert rebuilt.exit_code == 4, rebuilt.output
    assert rebuilt.stdout == ""
    assert rebuilt.stderr == (
        f"error: cannot read s3://{bucket}/{PREFIX}/{first}: access denied (AccessDenied); these credentials need "
        "s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on bucket "
        f"{bucket!r} (check its policy, Object Lock and the KMS key)\n")
    assert env.service.list_runs(limit=100) == []
