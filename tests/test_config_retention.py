"""The config family in prune, sweep, rebuild and off-site: the newest 10 verified bundles stay (the database
tiers do not keep more), a killed bundle's `.partial` is swept, a bundle's manifest rebuilds its catalog row (from
the backup directory and from the bucket), and a bundle is copied off-site like a dump.

Real PostgreSQL, real files, real verifies, the real CLI (SIGKILL), moto's S3 server over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.operations import kill_points
from openwatch_backup.service import BackupService
from tests.support.certificates import certificate
from tests.support.offsite import s3_overrides
from tests.support.prune import Env, age, decisions, listing, make_env, sql

CLI = Path(sys.executable).with_name("openwatch-backup")
PASSPHRASE = "a long sample passphrase for the retention test"


def config_settings(tmp_path: Path) -> dict[str, Any]:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsample\n-----END OPENSSH PRIVATE KEY-----\n")
    (keys / "id_ed25519").chmod(0o600)
    passfile = tmp_path / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    passfile.chmod(0o600)
    return {"config_paths": str(keys), "passphrase_file": passfile, "config_env_snapshot": False}


@pytest.fixture
def env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Env:
    # keep_daily is a database tier: with it, 12 bundles a day apart would all be kept if it applied to them.
    return make_env(backup_env, make_service, monkeypatch, keep_daily=30, **config_settings(tmp_path))


def bundle(env: Env, *, verified: bool = True, days: float = 0) -> BackupRun:
    run = env.service.backup(env.service.build_request(BackupKind.CONFIG))
    assert run.status == "succeeded", run.error
    if verified:
        checked, _ = env.service.verify(str(run.id))
        assert checked.status == "succeeded", checked.error
    if days:
        age(env.url, run, days)
    return env.run(run)


def config_keys(run: BackupRun) -> list[str]:
    artifact = f"config/{run.details['artifact']}"
    return [artifact, artifact + ".manifest.json"]


def test_prune_keeps_exactly_the_newest_10_verified_bundles(env: Env) -> None:
    bundles = [bundle(env, days=day + 0.5) for day in range(12)]  # bundles[0] is the newest, a day apart each
    dump = env.backup(days=100)  # a database backup far beyond any config rule: its own policy (floor) keeps it
    before = listing(env.dir)

    dry = env.service.prune()

    assert dry.status == "succeeded"
    assert listing(env.dir) == before
    planned = decisions(dry)
    assert {run_id for run_id, (action, _) in planned.items() if action == "delete"} == \
        {str(b.id) for b in bundles[10:]}
    assert [planned[str(b.id)] for b in bundles[10:]] == [("delete", "beyond the newest 10 versions")] * 2
    assert planned[str(bundles[0].id)] == ("keep", "newest verified backup")
    assert planned[str(bundles[9].id)] == ("keep", "newest 10 versions")
    assert planned[str(dump.id)] == ("keep", "newest verified backup")

    applied = env.service.prune(apply=True)

    assert applied.status == "succeeded", applied.error
    assert listing(env.dir / "config") == sorted(
        key.removeprefix("config/") for b in bundles[:10] for key in config_keys(b))
    assert listing(env.dir / "postgres") == sorted(k.removeprefix("postgres/") for k in env.keys(dump))
    assert sorted(applied.details["deleted"]) == sorted(k for b in bundles[10:] for k in config_keys(b))
    assert [env.run(b).pruned_at is not None for b in bundles] == [False] * 10 + [True] * 2


def test_config_versions_override_and_unverified_bundles(env: Env) -> None:
    """retention.config_versions replaces the 10; a bundle never verified counts for no version."""
    env.service.settings_store.set("retention.config_versions", 2)
    verified = [bundle(env, days=day + 1) for day in range(4)]
    unverified_old = bundle(env, verified=False, days=10)

    run = env.service.prune(apply=True)

    assert run.status == "succeeded", run.error
    plan = decisions(run)
    assert plan[str(verified[1].id)] == ("keep", "verified floor (3)")  # the floor (3) outranks 2 versions
    assert plan[str(verified[3].id)] == ("delete", "beyond the newest 2 versions")
    assert plan[str(unverified_old.id)] == ("delete", "beyond the newest 2 versions, never verified")
    assert listing(env.dir / "config") == sorted(k.removeprefix("config/") for b in verified[:3]
                                                 for k in config_keys(b))


def test_sweep_removes_a_killed_bundles_partial(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = bundle(env)
    settings = config_settings(tmp_path)
    monkeypatch.setenv("OPENWATCH_BACKUP_CONFIG_PATHS", settings["config_paths"])
    monkeypatch.setenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", str(settings["passphrase_file"]))
    pause = tmp_path / "pause"
    child = {**os.environ, kill_points.AT: "config_packed", kill_points.FILE: str(pause)}
    process = subprocess.Popen([str(CLI), "backup", "--kind", "config"], env=child, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pause.exists() and pause.read_text() == "config_packed"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    killed = env.service.list_runs(limit=1, kind="config")[0]
    partial = f"{killed.details['artifact_in_progress']}.partial"
    assert (killed.status, listing(env.dir / "config")) == (
        "running", sorted([*(k.removeprefix("config/") for k in config_keys(kept)), partial.removeprefix("config/")]))

    result = subprocess.run([str(CLI), "sweep", "--json"], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert f'"{partial}"' in result.stdout
    assert env.run(killed).status == "abandoned"
    assert listing(env.dir / "config") == sorted(k.removeprefix("config/") for k in config_keys(kept))


def test_rebuild_from_the_manifest_restores_a_config_row(env: Env, tmp_path: Path) -> None:
    (tmp_path / "keys" / "site.crt").write_bytes(certificate("CN=rebuilt.example", days=200))
    original = bundle(env, verified=False)
    assert original.details["certificates"]
    sql(env.url, "DELETE FROM backup_runs WHERE id = %s", original.id)

    report = env.service.rebuild_catalog()

    assert (report.inserted, report.skipped) == ([str(original.id)], {})
    row = env.run(original)
    assert (row.kind, row.status, row.sha256, row.size_bytes) == ("config", "succeeded", original.sha256,
                                                                   original.size_bytes)
    for key in ("artifact", "inputs_digest", "key_id", "certificates", "members", "paths", "env_snapshot"):
        assert row.details[key] == original.details[key], key
    assert row.details["request"] == {"kind": "config", "compression": "none", "tables": []}
    assert row.artifact_location == str(env.dir / "config" / original.details["artifact"])


@pytest.fixture
def s3_env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
           tmp_path: Path, moto_endpoint: str, bucket: str) -> Env:
    return make_env(backup_env, make_service, monkeypatch, **config_settings(tmp_path),
                    **s3_overrides(moto_endpoint, bucket))


@pytest.mark.slow
def test_a_bundle_goes_off_site_and_rebuilds_from_the_bucket(s3_env: Env) -> None:
    env = s3_env
    original = bundle(env)

    copied = env.service.copy_offsite(str(original.id))

    assert copied.status == "succeeded", copied.error
    remote = env.service.require_offsite()
    assert [o.key for o in remote.list("config")] == config_keys(original)
    assert remote.read_bytes(config_keys(original)[0]) == (env.dir / config_keys(original)[0]).read_bytes()
    sql(env.url, "DELETE FROM backup_runs")

    report = env.service.rebuild_catalog(source="s3")

    assert (report.inserted, report.skipped) == ([str(original.id)], {})
    row = env.run(original)
    assert (row.kind, row.details["inputs_digest"]) == ("config", original.details["inputs_digest"])
    copies = env.service.copies.of_runs([original.id])[original.id]
    assert [(c.storage, c.state, c.key) for c in copies] == [("s3", "verified", config_keys(original)[0])]


@pytest.mark.slow
def test_prune_deletes_an_old_bundle_locally_and_off_site(s3_env: Env) -> None:
    """Both copies judged by the config policy (versions): the older bundle goes from the folder and the bucket,
    only our two keys each, and its copy rows say deleted."""
    env = s3_env
    env.service.settings_store.set("retention.config_versions", 1)
    env.service.settings_store.set("retention.verified_floor", 1)
    old, new = bundle(env, days=2), bundle(env, days=1)
    for run in (old, new):
        assert env.service.copy_offsite(str(run.id)).status == "succeeded"
    remote = env.service.require_offsite()

    run = env.service.prune(apply=True)

    assert run.status == "succeeded", run.error
    assert [o.key for o in remote.list("config")] == config_keys(new)
    assert listing(env.dir / "config") == sorted(k.removeprefix("config/") for k in config_keys(new))
    assert sorted(run.details["s3_deleted"]) == config_keys(old)
    assert env.run(old).pruned_at is not None
    copies = env.service.copies.of_runs([old.id])[old.id]
    assert sorted((c.storage, c.state) for c in copies) == [("local", "deleted"), ("s3", "deleted")]
