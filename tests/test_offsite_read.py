"""Reading a backup back from S3 when its local file is gone: verify, restore (--into, full, --table) and drill
stream the object from moto over HTTP into the same pipeline, with no temporary copy in the backup folder,
and record which copy they read. Real PostgreSQL, real S3 protocol."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.devstack import PostgresHandle
from openwatch_backup.operations.read_source import read_manifest
from openwatch_backup.operations.restore import RestoreRequest
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.offsite import s3_overrides
from tests.support.offsite_read import (  # noqa: F401 - s3lab_fixture is a fixture
    SKIP,
    copy_offsite,
    copy_row,
    files_in,
    invoke,
    lab_env,
    local_paths,
    lose_local,
    s3lab_fixture,
)
from tests.support.restore_helpers import (
    DatabaseFactory,
    Lab,
    ServiceFactory,
    content,
    count,
    databases_named_after,
    modify,
    open_lab,
    track_leftovers,
)

pytestmark = pytest.mark.usefixtures("restore_env")




def test_cli_verify_reads_the_s3_copy_when_the_local_file_is_gone(s3lab: Lab, moto_endpoint: str,
                                                                  bucket: str) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)

    result = invoke(lab_env(s3lab, moto_endpoint, bucket), "verify", str(backup.id)[:8])

    assert (result.exit_code, result.stderr) == (0, ""), result.output
    (verify,) = s3lab.service.list_runs(kind="verify")
    assert result.stdout.replace("\n", "") == (f"quick verify of {str(backup.id)[:8]} passed (read from the S3 "
                                               f"copy) (run {verify.id})")
    assert (verify.status, verify.details["read_from"], verify.details["copy"]) == ("succeeded", "s3", "s3")
    assert verify.details["verify"]["checks"]["sha256"] == backup.sha256
    remote = copy_row(s3lab, backup, CopyStorage.S3)
    assert remote is not None
    assert (remote.state, remote.error) == ("verified", None)
    assert remote.reverified_at is not None
    local = copy_row(s3lab, backup, CopyStorage.LOCAL)
    assert local is not None
    assert (local.state, local.error) == ("pending", None)  # not read: its row does not move
    assert files_in(s3lab.backup_dir) == []


def test_deep_verify_restores_from_the_s3_copy(s3lab: Lab) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)

    verify, result = s3lab.service.verify(str(backup.id), deep=True)

    assert result is not None
    assert (result.passed, result.deep, verify.status, verify.details["read_from"]) == (True, True, "succeeded", "s3")
    assert result.checks["canary"] == "found"
    assert files_in(s3lab.backup_dir) == []
    assert s3lab.leftovers() == []


def test_a_local_copy_retention_deleted_is_read_from_s3(s3lab: Lab) -> None:
    """Local retention marked the local copy deleted (its file may be partly gone): S3 is read, not the file."""
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    s3lab.service.copies.deleted(backup.id, CopyStorage.LOCAL)

    verify, result = s3lab.service.verify(str(backup.id))

    assert result is not None
    assert (result.passed, verify.details["read_from"]) == (True, "s3")
    local = copy_row(s3lab, backup, CopyStorage.LOCAL)
    assert local is not None
    assert local.state == "deleted"


def test_a_local_copy_retention_is_deleting_is_read_from_s3(s3lab: Lab) -> None:
    """A prune recorded its intent to delete the local copy (details.pruning_local) and stopped: the file may be
    half gone, so the S3 copy is read; and a backup whose S3 copy is being deleted is read locally."""
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    with psycopg.connect(s3lab.url) as conn:
        conn.execute("""UPDATE backup_runs SET details = details || '{"pruning_local": "p"}' WHERE id = %s""",
                     (backup.id,))
    verify, _ = s3lab.service.verify(str(backup.id))
    assert (verify.status, verify.details["read_from"]) == ("succeeded", "s3")

    with psycopg.connect(s3lab.url) as conn:
        conn.execute("""UPDATE backup_runs SET details = details - 'pruning_local' || '{"pruning_s3": "p"}'
                        WHERE id = %s""", (backup.id,))
    lose_local(s3lab, backup)
    verify, _ = s3lab.service.verify(str(backup.id))  # the only copy left is read, whatever is under way
    assert (verify.status, verify.details["read_from"]) == ("succeeded", "s3")


def test_cli_restore_into_a_new_database_from_the_s3_copy(s3lab: Lab, make_database: DatabaseFactory,
                                                          moto_endpoint: str, bucket: str) -> None:
    backup = s3lab.backup()
    at_backup = content(s3lab.url, skip=SKIP)
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)
    modify(s3lab.url)
    target = make_database.track(make_database.new_name("into"))

    result = invoke(lab_env(s3lab, moto_endpoint, bucket), "restore", str(backup.id)[:8], "--into", target)

    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert "(read from the S3 copy)" in result.stdout
    assert content(s3lab.pg.url_for(target), skip=SKIP) == at_backup
    run = s3lab.only_restore_run()
    assert (run.status, run.details["read_from"], run.details["restore"]["mode"]) == ("succeeded", "s3", "into")
    assert files_in(s3lab.backup_dir) == []


def test_full_restore_from_the_s3_copy(s3lab: Lab, make_database: DatabaseFactory) -> None:
    backup = s3lab.backup()
    at_backup = content(s3lab.url, skip=SKIP)
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)
    modify(s3lab.url)

    run = s3lab.service.restore(str(backup.id), RestoreRequest(confirm=s3lab.name))
    for kept in databases_named_after(s3lab.pg, s3lab.name):
        if kept != s3lab.name:
            make_database.track(kept)

    assert (run.status, run.details["read_from"], run.details["restore"]["mode"]) == ("succeeded", "s3", "full")
    assert content(s3lab.url, skip=SKIP) == at_backup
    # The only files written are the safety backup's own (of the database being replaced).
    (safety,) = s3lab.safety_runs()
    assert files_in(s3lab.backup_dir) == sorted(str(p.relative_to(s3lab.backup_dir))
                                                for p in local_paths(s3lab, safety))
    assert s3lab.leftovers() == []


def test_table_restore_from_the_s3_copy(s3lab: Lab) -> None:
    backup = s3lab.backup()
    source = content(s3lab.url, skip=SKIP)
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)
    with psycopg.connect(s3lab.url) as conn:
        conn.execute("DELETE FROM scan_findings")
    assert count(s3lab.url, "scan_findings") == 0

    run = s3lab.service.restore(str(backup.id), RestoreRequest(tables=("scan_findings",), data_only=True,
                                                               confirm=s3lab.name, safety_backup=False))

    assert (run.status, run.details["read_from"], run.details["restore"]["mode"]) == ("succeeded", "s3", "table")
    assert content(s3lab.url, skip=SKIP) == source
    assert files_in(s3lab.backup_dir) == []


def test_cli_drill_restores_from_the_s3_copy_and_rereads_it(s3lab: Lab, moto_endpoint: str, bucket: str) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)

    result = invoke(lab_env(s3lab, moto_endpoint, bucket), "drill")

    assert (result.exit_code, result.stderr) == (0, ""), result.output
    (drill,) = s3lab.service.list_runs(kind="drill")
    info = drill.details["drill"]
    first, proof = result.stdout.split("\nmaster key not checked: ")  # no config bundle in this lab
    assert first.replace("\n", "") == (
        f"drill passed: recovered from the S3 copy in {info['rto_seconds']} s (objective 30 min); off-site copy "
        f"re-read and matched (run {drill.id})")
    assert proof.replace("\n", " ").strip() == info["verify"]["checks"]["secrets"]["skipped"]
    assert (drill.status, drill.parent_id, info["read_from"]) == ("succeeded", backup.id, "s3")
    assert info["verify"]["result"] == "passed"
    assert (info["remote"]["backup_run"], info["remote"]["verify"]["result"]) == (str(backup.id), "passed")
    assert info["remote"]["verify"]["checks"]["sha256"] == backup.sha256
    remote = copy_row(s3lab, backup, CopyStorage.S3)
    assert remote is not None
    assert (remote.state, remote.reverified_at is not None) == ("verified", True)
    assert files_in(s3lab.backup_dir) == []
    assert s3lab.leftovers() == []


def test_drill_without_off_site_has_no_remote_part(lab: Lab) -> None:
    backup = lab.backup()

    run = lab.service.drill()

    info = run.details["drill"]
    assert (run.status, run.parent_id, info["read_from"], info["remote"]) == ("succeeded", backup.id, "local", None)


def test_verify_copy_local_never_falls_back_to_s3(s3lab: Lab) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)

    verify, result = s3lab.service.verify(str(backup.id), copy="local")

    assert result is not None
    assert (result.passed, str(result.reason), verify.details["read_from"]) == (False, "missing", "local")
    assert result.message == f"{local_paths(s3lab, backup)[0]} does not exist"
    local, remote = copy_row(s3lab, backup, CopyStorage.LOCAL), copy_row(s3lab, backup, CopyStorage.S3)
    assert local is not None
    assert remote is not None
    assert (local.state, remote.state, remote.reverified_at) == ("failed", "verified", None)


def test_the_manifest_is_read_from_the_s3_copy(s3lab: Lab) -> None:
    backup = s3lab.backup()
    local_manifest = s3lab.manifest(backup)
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)

    assert read_manifest(s3lab.service.context, backup) == local_manifest
    s3lab.service.copies.deleted(backup.id, CopyStorage.S3)
    s3lab.service.offsite.delete(f"postgres/{backup.details['artifact']}")  # type: ignore[union-attr]
    assert read_manifest(s3lab.service.context, backup) is None


def test_a_download_cut_mid_object_resumes_into_the_same_restore(pg: PostgresHandle, openwatch_db: str,
                                                                 make_database: DatabaseFactory,
                                                                 make_service: ServiceFactory, tmp_path: Path,
                                                                 proxy: FaultProxy, bucket: str) -> None:
    """The connection drops halfway through each of the two reads (verify's, then the restore's): the reader
    resumes from the byte it had, and the restored data is the backup's."""
    lab = open_lab(pg, openwatch_db, tmp_path / "backups", make_service, **s3_overrides(proxy.url, bucket))
    try:
        backup = lab.backup()
        at_backup = content(lab.url, skip=SKIP)
        copy_offsite(lab, backup)
        lose_local(lab, backup)
        cut = proxy.add(Fault("GET", str(backup.details["artifact"]), action="cut_response", times=2))
        target = make_database.track(make_database.new_name("into"))

        run = lab.service.restore(str(backup.id), RestoreRequest(into=target))

        assert (run.status, run.details["read_from"], cut.hits) == ("succeeded", "s3", 2)
        assert content(lab.pg.url_for(target), skip=SKIP) == at_backup
        assert files_in(lab.backup_dir) == []
    finally:
        track_leftovers(lab, make_database)
