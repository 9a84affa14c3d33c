"""Issue 9, failure 2: a copied or forged manifest plus `catalog rebuild` must never let prune delete a verified
backup's file, and one bad manifest must not stop the rebuild of the others.

Everything here is a real CLI command or service call on a real catalog and a real backup directory; the
forgeries are files written the way an attacker or a careless `cp` would write them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.cli import app
from openwatch_backup.core import retention
from openwatch_backup.core.naming import manifest_name
from openwatch_backup.service import BackupService
from tests.support.forge import plant_manifest, read_manifest
from tests.support.prune import Env, decisions, listing, make_env, sql

pytestmark = [pytest.mark.slow]


@pytest.fixture
def env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch) -> Env:
    return make_env(backup_env, make_service, monkeypatch)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def sixty_days_earlier(env: Env, run: BackupRun) -> str:
    return (datetime.fromisoformat(read_manifest(env.service, run).created_at) - timedelta(days=60)).isoformat()


def run_ids(env: Env) -> set[str]:
    return {str(r.id) for r in env.service.list_runs(limit=1000)}


def test_a_copied_manifest_cannot_make_prune_delete_a_verified_backup(env: Env) -> None:
    """The issue's repro: copy under another name, new run_id, 60 days earlier, same artifact; rebuild; prune."""
    real = env.backup()
    before = listing(env.dir)
    forged = str(uuid.uuid4())
    copy = "openwatch_20200101_000000.dump.zst.manifest.json"
    plant_manifest(env.service, real, copy, run_id=forged, created_at=sixty_days_earlier(env, real))

    rebuilt = invoke("catalog", "rebuild")

    artifact = real.details["artifact"]
    assert rebuilt.exit_code == 7, rebuilt.output
    assert rebuilt.stdout.splitlines() == [
        "0 run(s) recreated, 1 already present, 0 of pruned backups left for the next prune, 1 manifest(s) skipped",
        f"  skipped postgres/{copy}: it names the artifact {artifact} but is not stored beside it (as "
        f"postgres/{manifest_name(artifact)}): openwatch-backup did not write it there"]
    assert rebuilt.stderr == "error: 1 manifest(s) skipped, each listed with its reason; the others were added\n"
    assert forged not in run_ids(env)

    pruned = invoke("prune", "--apply")

    assert pruned.exit_code == 0, pruned.output
    assert listing(env.dir) == before  # the copy (a manifest without its artifact) went as a leftover
    assert env.run(real).pruned_at is None


def test_a_forged_manifest_in_place_of_the_real_one_is_refused(env: Env) -> None:
    """Stored beside the artifact, so only the ownership check stands between it and the catalog."""
    real = env.backup()
    artifact = real.details["artifact"]
    forged = str(uuid.uuid4())
    plant_manifest(env.service, real, manifest_name(artifact), run_id=forged, created_at=sixty_days_earlier(env, real))

    report = env.service.rebuild_catalog()

    assert report.skipped == {f"postgres/{manifest_name(artifact)}": (
        f"its artifact {artifact} belongs to run {real.id} already: two runs naming one file would let prune "
        "delete a kept backup; remove the manifest that is not the backup's own")}
    assert (report.inserted, report.already_present) == ([], [])
    assert forged not in run_ids(env)


def clone_row(env: Env, run: BackupRun, days_earlier: int) -> str:
    """A second catalog row naming the same artifact, as if a forged manifest had got past the rebuild."""
    clone = str(uuid.uuid4())
    sql(env.url, "INSERT INTO backup_runs SELECT (jsonb_populate_record(NULL::backup_runs, to_jsonb(b) || "
        "jsonb_build_object('id', %s::uuid, 'created_at', b.created_at - make_interval(days => %s)))).* "
        "FROM backup_runs b WHERE id = %s", clone, days_earlier, run.id)
    return clone


def test_prune_keeps_a_backup_that_names_a_kept_backups_file(env: Env) -> None:
    """Defence in the planner, whatever put the row there."""
    real = env.backup()
    before = listing(env.dir)
    clone = clone_row(env, real, 60)

    run = env.service.prune(apply=True)

    assert run.status == "succeeded"
    key = env.keys(real)[0]
    assert decisions(run)[clone] == ("keep", f"shares {key} with kept backup {str(real.id)[:8]}")
    assert decisions(run)[str(real.id)] == ("keep", "newest verified backup")
    assert any(w.startswith(f"full backup {clone[:8]} names {key}, a file of kept backup") for w in
               run.details["warnings"])
    assert run.details["deleted"] == []
    assert listing(env.dir) == before
    assert [env.service.get_run(i).pruned_at for i in (clone, str(real.id))] == [None, None]


def test_prune_applies_no_plan_that_deletes_a_kept_backups_file(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in the applier, on its own: the planner's shared-file rule switched off, the file still stays."""
    real = env.backup()
    before = listing(env.dir)
    clone = clone_row(env, real, 60)
    monkeypatch.setattr(retention, "_keep_shared_files", lambda d: (d, []))

    run = env.service.prune(apply=True)

    # The plan, as the planner without that rule makes it:
    assert decisions(run)[clone] == ("delete", "older than 30 days, never verified")
    assert run.status == "succeeded"
    assert run.details["summary"]["backups_deleted"] == 0
    assert f"full backup {clone[:8]} was planned for deletion but {env.keys(real)[0]} is named by a backup that " \
           "stays: not deleted" in run.details["warnings"]
    assert listing(env.dir) == before
    row = env.service.get_run(clone)
    assert (row.pruned_at, "pruning" in row.details) == (None, False)


def test_rebuild_adds_another_databases_backup_only_when_asked(env: Env) -> None:
    real = env.backup()
    artifact = real.details["artifact"]
    data = json.loads((env.dir / env.keys(real)[1]).read_bytes())
    data["database"] = "otherdb"
    (env.dir / env.keys(real)[1]).write_text(json.dumps(data))
    sql(env.url, "DELETE FROM backup_runs")

    refused = invoke("catalog", "rebuild", "--json")

    assert refused.exit_code == 7
    ours = env.service.target.dbname
    assert json.loads(refused.stdout)["skipped"] == {f"postgres/{manifest_name(artifact)}": (
        f"it is a backup of database 'otherdb', not of {ours!r}; `openwatch-backup catalog rebuild --any-database` "
        "adds it anyway")}
    assert run_ids(env) == set()

    added = invoke("catalog", "rebuild", "--any-database", "--json")

    assert added.exit_code == 0, added.output
    assert (json.loads(added.stdout)["inserted"], json.loads(added.stdout)["skipped"]) == ([str(real.id)], {})
    assert run_ids(env) == {str(real.id)}


def test_bad_manifests_are_reported_and_skipped_and_the_rest_is_rebuilt(env: Env) -> None:
    real = env.backup()
    sql(env.url, "DELETE FROM backup_runs")
    postgres = env.dir / "postgres"
    base = json.loads((env.dir / env.keys(real)[1]).read_bytes())
    bad = {
        "a_dotdot.dump.manifest.json": {**base, "run_id": str(uuid.uuid4()), "artifact": "../../etc/passwd"},
        "b_garbage.dump.manifest.json": "{not json",
        "c_old.dump.manifest.json": {**base, "run_id": str(uuid.uuid4()), "manifest_version": 0},
        "d_new.dump.manifest.json": {**base, "run_id": str(uuid.uuid4()), "manifest_version": 2},
        "e_badid.dump.manifest.json": {**base, "run_id": "not-a-uuid"},
    }
    for name, content in bad.items():
        (postgres / name).write_text(content if isinstance(content, str) else json.dumps(content))

    result = invoke("catalog", "rebuild")

    assert result.exit_code == 7, result.output
    assert run_ids(env) == {str(real.id)}  # the good manifest, sorted after the bad ones, was still added
    lines = result.stdout.splitlines()
    assert lines[0] == ("1 run(s) recreated, 0 already present, 0 of pruned backups left for the next prune, "
                        "5 manifest(s) skipped")
    reasons = dict(line.removeprefix("  skipped ").split(": ", 1) for line in lines[1:])
    p = "postgres/"
    assert reasons == {
        f"{p}a_dotdot.dump.manifest.json": f"{p}a_dotdot.dump.manifest.json is not a valid manifest (artifact: Value "
                                           "error, '../../etc/passwd' is not a plain file name (no '/', no '..', no "
                                           "leading dot))",
        f"{p}b_garbage.dump.manifest.json": f"{p}b_garbage.dump.manifest.json is not JSON (Expecting property name "
                                            "enclosed in double quotes: line 1 column 2 (char 1)); restore it from "
                                            "another copy",
        f"{p}c_old.dump.manifest.json": f"{p}c_old.dump.manifest.json is not a valid manifest (manifest_version: "
                                        "Value error, manifest_version 0 is not one this openwatch-backup knows (1))",
        f"{p}d_new.dump.manifest.json": f"{p}d_new.dump.manifest.json has manifest_version 2, newer than this "
                                        "openwatch-backup understands (1); upgrade openwatch-backup",
        f"{p}e_badid.dump.manifest.json": f"{p}e_badid.dump.manifest.json is not a valid manifest (run_id: Value "
                                          "error, 'not-a-uuid' is not a run id (a UUID))",
    }
    assert result.stderr == "error: 5 manifest(s) skipped, each listed with its reason; the others were added\n"
