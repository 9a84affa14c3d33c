"""`openwatch-backup adopt DIR` (issue 13, item 4) as a real CLI process over the files the guide's own commands write:
`pg_dump -Fc`, `tar czf - DIR | openssl enc -aes-256-cbc -salt -pbkdf2`, a Redis dump.rdb, a volume's `tar czf`.

Each file becomes a backup run of its kind dated by its name, verifies (quick and, for the dump, deep), restores to
the same content, is listed once however often adopt runs, and what is not adopted is listed with its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openwatch_backup.devstack.postgres import find_pg_bin_dir
from tests.support.restore_helpers import content

CLI = Path(sys.executable).with_name("openwatch-backup")
PASSPHRASE = "the guide's own long passphrase for config bundles"


def cli(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=300,
                            env=env or dict(os.environ))
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def local(day: str, clock: str = "000000") -> datetime:
    """The guide's `date +%Y%m%d[_%H%M%S]` names are in the host's zone: that instant, in UTC."""
    return datetime.strptime(day + clock, "%Y%m%d%H%M%S").astimezone().astimezone(UTC)


def guide_dump(url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(find_pg_bin_dir() / "pg_dump"), "-Fc", "-d", url, "-f", str(path)], check=True, timeout=120)


def guide_config(source: Path, out: Path) -> None:
    """The guide's Configuration Backup: `tar czf - "$BACKUP_DIR" | openssl enc -aes-256-cbc -salt -pbkdf2`."""
    tar = subprocess.Popen(["tar", "czf", "-", "-C", str(source.parent), source.name], stdout=subprocess.PIPE)
    subprocess.run(["openssl", "enc", "-aes-256-cbc", "-salt", "-pbkdf2", "-pass", "env:GUIDE_PASS", "-out", str(out)],
                   stdin=tar.stdout, check=True, env={**os.environ, "GUIDE_PASS": PASSPHRASE}, timeout=60)
    assert tar.stdout is not None
    tar.stdout.close()
    assert tar.wait() == 0


def guide_volume(source: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "czf", str(out), "-C", str(source), "."], check=True, timeout=60)


def redis_rdb(redis_url: str, out: Path) -> None:
    """A real dump.rdb: SAVE on the test's Redis, then its file (what the guide's `docker cp` fetches)."""
    import redis

    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        client.set("adopt-test-key", "value")
        client.save()
        folder, name = client.config_get("dir")["dir"], client.config_get("dbfilename")["dbfilename"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes((Path(folder) / name).read_bytes())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def site(backup_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> dict[str, Any]:
    """The guide's folder: a dump, a config bundle, a dump.rdb, a volume tarball, and what is not adopted."""
    guide = tmp_path / "guide"
    guide_dump(backup_env.url, guide / "postgres" / "openwatch_20261120_020000.dump")
    dumped = content(backup_env.url)  # before `db upgrade` adds the plugin's tables: the guide's site
    conf = tmp_path / "config" / "20261121"
    (conf / "certs").mkdir(parents=True)
    (conf / "env.bak").write_text("MASTER_KEY=abc\nPOSTGRES_PASSWORD=secret\n")
    (conf / "certs" / "server.crt").write_text("not really a certificate\n")
    guide_config(conf, guide / "config_20261121.tar.gz.enc")
    redis_rdb(redis_url, guide / "redis" / "dump_20261122.rdb")
    data = tmp_path / "app_data"
    (data / "reports").mkdir(parents=True)
    (data / "reports" / "r1.txt").write_text("report one\n")
    guide_volume(data, guide / "volumes" / "app_data_20261123.tar.gz")
    (guide / "postgres" / "openwatch_20261124.sql").write_text("-- plain SQL\n")
    (guide / "config").mkdir()
    (guide / "config" / "env_20261124_020000").write_text("SECRET=1\n")
    (guide / "backup.log").write_text("log\n")
    passfile = tmp_path / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", str(passfile))
    cli("db", "upgrade")
    return {"guide": guide, "url": backup_env.url, "dir": backup_env.dir, "data": data, "conf": conf,
            "dumped": dumped}


def adopt(guide: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("adopt", str(guide), "--json", *extra, check=False)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def runs(kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(cli("list", "--kind", kind, "--json").stdout)
    return found


def test_adopt_catalogues_verifies_and_is_idempotent(site: dict[str, Any]) -> None:
    guide: Path = site["guide"]
    before = {p: sha256(p) for p in guide.rglob("*") if p.is_file()}

    code, report = adopt(guide)

    assert code == 7  # three files skipped
    by_source = {Path(f["source"]).name: f for f in report["files"]}
    assert {n: (f["status"], f.get("kind")) for n, f in by_source.items()} == {
        "openwatch_20261120_020000.dump": ("adopted", "full"),
        "config_20261121.tar.gz.enc": ("adopted", "config"),
        "dump_20261122.rdb": ("adopted", "redis"),
        "app_data_20261123.tar.gz": ("adopted", "volume"),
        "openwatch_20261124.sql": ("skipped", None),
        "env_20261124_020000": ("skipped", None),
    }
    assert by_source["openwatch_20261124.sql"]["reason"].startswith("plain SQL (pg_dump without -Fc) is not adopted")
    assert by_source["env_20261124_020000"]["reason"].startswith("an unencrypted copy of .env is not adopted")
    assert (report["adopted"], report["already_adopted"], report["skipped"]) == (4, 0, 2)
    # The guide's files are left exactly as they were.
    assert {p: sha256(p) for p in guide.rglob("*") if p.is_file()} == before

    for kind, day, clock in (("full", "20261120", "020000"), ("config", "20261121", None),
                             ("redis", "20261122", None), ("volume", "20261123", None)):
        [run] = runs(kind)
        assert run["status"] == "succeeded"
        created = datetime.fromisoformat(run["created_at"])
        if clock:
            assert created == local(day, clock)
        else:  # the mtime is today, not the named day: that day's local midnight
            assert created == local(day)
        source = Path(run["details"]["adopted"]["source"])
        assert run["details"]["adopted"]["sha256"] == before[source]
        # adopt verified it (a recorded verify), and `verify` passes again.
        cli("verify", run["id"])
    [dump] = runs("full")
    assert dump["details"]["artifact"] == "openwatch_" + local("20261120", "020000").strftime("%Y%m%d_%H%M%S") + ".dump"
    assert dump["details"]["row_counts"]["hosts"] > 0
    cli("verify", dump["id"], "--deep")

    again_code, again = adopt(guide)
    assert again_code == 7
    assert (again["adopted"], again["already_adopted"], again["skipped"]) == (0, 4, 2)
    for kind in ("full", "config", "redis", "volume"):
        assert len(runs(kind)) == 1


def test_adopted_dump_and_bundle_restore_to_the_guide_content(site: dict[str, Any], make_database: Any,
                                                              tmp_path: Path) -> None:
    adopt(site["guide"])
    [dump] = runs("full")
    target = make_database.new_name("adopted")
    make_database.track(target)
    cli("restore", dump["id"], "--into", target)
    restored_url = site["url"].rsplit("/", 1)[0] + "/" + target
    assert content(restored_url) == site["dumped"]

    [bundle] = runs("config")
    out = tmp_path / "restored"
    cli("restore", bundle["id"], "--to", str(out))
    restored = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    original = {f"{site['conf'].name}/{p.relative_to(site['conf']).as_posix()}": p.read_bytes()
                for p in site["conf"].rglob("*") if p.is_file()}
    assert restored == original


def test_volume_and_redis_copies_hold_the_guide_bytes(site: dict[str, Any]) -> None:
    import zstandard

    adopt(site["guide"])
    [volume] = runs("volume")
    stored = site["dir"] / "volumes" / volume["details"]["artifact"]
    assert stored.name.startswith("volume_app_data_")
    assert stored.name.endswith(".tar.zst")
    with stored.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as tar_stream, \
            tarfile.open(fileobj=tar_stream, mode="r|") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert files == {"./reports/r1.txt": b"report one\n"}
    [snapshot] = runs("redis")
    rdb = site["dir"] / "redis" / snapshot["details"]["artifact"]
    with rdb.open("rb") as raw:
        assert zstandard.ZstdDecompressor().stream_reader(raw).read() == \
            (site["guide"] / "redis" / "dump_20261122.rdb").read_bytes()


def test_wrong_passphrase_or_damage_skips_that_file_only(site: dict[str, Any], tmp_path: Path) -> None:
    guide: Path = site["guide"]
    (tmp_path / "passphrase").write_text("another passphrase entirely\n")
    cut = guide / "postgres" / "openwatch_20261125_020000.dump"
    data = (guide / "postgres" / "openwatch_20261120_020000.dump").read_bytes()
    cut.write_bytes(data[:len(data) // 3])
    subprocess.run([str(find_pg_bin_dir() / "pg_dump"), "-Ft", "-d", site["url"], "-f",
                    str(guide / "postgres" / "openwatch_20261126_020000.dump")], check=True, timeout=120)
    subprocess.run([str(find_pg_bin_dir() / "pg_dump"), "-d", site["url"], "-f",  # plain SQL named .dump
                    str(guide / "postgres" / "openwatch_20261127_020000.dump")], check=True, timeout=120)

    code, report = adopt(guide, "--dry-run")

    assert code == 7
    by_source = {Path(f["source"]).name: f for f in report["files"]}
    assert by_source["config_20261121.tar.gz.enc"]["status"] == "skipped"
    assert by_source["config_20261121.tar.gz.enc"]["reason"].startswith("the configured passphrase does not open it")
    assert by_source["openwatch_20261125_020000.dump"]["status"] == "skipped"
    assert by_source["openwatch_20261125_020000.dump"]["reason"].startswith("pg_restore --data-only cannot read it (")
    assert by_source["openwatch_20261126_020000.dump"]["reason"] == (
        "it is a pg_dump archive of format TAR, not custom (-Fc): only the guide's custom-format dumps are adopted")
    assert by_source["openwatch_20261127_020000.dump"]["reason"] == (
        "pg_restore --list cannot read it (pg_restore: error: input file appears to be a text format dump. Please "
        "use psql.): it is not a whole pg_dump -Fc archive")
    assert by_source["openwatch_20261120_020000.dump"]["status"] == "would adopt"
    human = cli("adopt", str(guide), "--dry-run", check=False)
    assert human.returncode == 7
    assert human.stderr == f"error: 6 file(s) of {guide} not adopted, each listed with its reason; the others would " \
                           "be adopted\n"
    assert f"would adopt {guide}/postgres/openwatch_20261120_020000.dump as a full run (taken " \
           f"{local('20261120', '020000').isoformat()})" in human.stdout.splitlines()
    assert human.stdout.splitlines()[-1] == "3 would be adopted, 0 already adopted, 6 skipped"
    for kind in ("full", "config", "redis", "volume", "adopt"):
        assert runs(kind) == []  # a dry run records nothing
    assert [p for p in site["dir"].rglob("*") if p.is_file()] == []


def test_adopted_dumps_are_pruned_by_their_days(site: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    guide: Path = site["guide"]
    first = guide / "postgres" / "openwatch_20261120_020000.dump"
    for day in ("20261118", "20261119"):  # three dumps, one a day (same content: another sha256 needed)
        with psycopg.connect(site["url"], autocommit=True) as conn:
            conn.execute("UPDATE hosts SET hostname = hostname || 'x'")
        guide_dump(site["url"], guide / "postgres" / f"openwatch_{day}_020000.dump")
    for other in ("config_20261121.tar.gz.enc",):
        (guide / other).unlink()
    for folder in ("redis", "volumes", "config"):
        for path in (guide / folder).glob("*"):
            path.unlink()
    (guide / "postgres" / "openwatch_20261124.sql").unlink()
    assert first.exists()
    code, report = adopt(guide)
    assert code == 0, report
    dumps = {r["details"]["artifact"]: r for r in runs("full")}
    assert len(dumps) == 3
    monkeypatch.setenv("OPENWATCH_BACKUP_RETENTION_DAYS", "1")
    monkeypatch.setenv("OPENWATCH_BACKUP_KEEP_DAILY", "2")
    monkeypatch.setenv("OPENWATCH_BACKUP_VERIFIED_FLOOR", "1")
    cli("prune", "--apply")
    newest_two = sorted(dumps)[1:]
    left = sorted(p.name for p in (site["dir"] / "postgres").iterdir())
    assert left == sorted([*newest_two, *(n + ".manifest.json" for n in newest_two)])
    assert [r["details"]["artifact"] for r in runs("full") if r.get("pruned_at") is None] == sorted(
        newest_two, reverse=True)


@pytest.mark.parametrize("point", ["adopt_run_created", "adopt_copied", "adopt_manifest"])
def test_a_killed_adopt_is_swept_and_the_next_one_completes(site: dict[str, Any], tmp_path: Path, point: str) -> None:
    """Killed with its run created (nothing written), its .partial written, or its file committed with its
    manifest but no catalog row: sweep abandons both runs and removes the .partial, prune removes the committed
    leftover, and the next adopt takes every file once."""
    from openwatch_backup.operations import kill_points

    guide: Path = site["guide"]
    pause = tmp_path / "pause"
    env = {**os.environ, kill_points.AT: point, kill_points.FILE: str(pause)}
    process = subprocess.Popen([str(CLI), "adopt", str(guide)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (pause.exists() and pause.read_text() == point):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"adopt did not reach {point}"
            time.sleep(0.02)
    finally:
        process.kill()
        process.communicate()
    left = [p.name for p in site["dir"].rglob("*") if p.is_file()]
    assert any(n.endswith(".partial") for n in left) == (point == "adopt_copied")
    assert any(n.endswith(".manifest.json") for n in left) == (point == "adopt_manifest")

    swept = json.loads(cli("sweep", "--json").stdout)
    assert len(swept["abandoned"]) == 2  # the adopt run and the run it was adopting
    [killed] = [r for k in ("full", "config", "redis", "volume") for r in runs(k)]
    assert killed["status"] == "abandoned"
    [adopt_run] = runs("adopt")
    assert adopt_run["status"] == "abandoned"
    assert adopt_run["details"]["current"]["run"] == killed["id"]  # its intent named the run before it wrote
    cli("prune", "--apply")  # a committed file of a run that never succeeded: a leftover, deleted
    assert [p for p in site["dir"].rglob("*") if p.is_file()] == []

    code, report = adopt(guide)
    assert code == 7
    assert report["adopted"] == 4
    stored = sorted(p.name for p in site["dir"].rglob("*") if p.is_file())
    kinds = {k: [r for r in runs(k) if r["status"] == "succeeded"] for k in ("full", "config", "redis", "volume")}
    assert all(len(v) == 1 for v in kinds.values())
    expected = sorted(n for v in kinds.values() for r in v
                      for n in (r["details"]["artifact"], r["details"]["artifact"] + ".manifest.json"))
    assert stored == expected


def test_a_rebuilt_catalog_still_knows_what_was_adopted(site: dict[str, Any]) -> None:
    """`catalog rebuild` recreates an adopted run from its manifest (without the run's details): the manifest's
    `adopted` still makes the next adopt add nothing."""
    guide: Path = site["guide"]
    for folder in ("redis", "volumes", "config"):
        for path in (guide / folder).glob("*"):
            path.unlink()
    (guide / "postgres" / "openwatch_20261124.sql").unlink()
    (guide / "config_20261121.tar.gz.enc").unlink()
    assert adopt(guide)[0] == 0
    [dump] = runs("full")
    with psycopg.connect(site["url"], autocommit=True) as conn:
        conn.execute("DELETE FROM backup_copies WHERE run_id = %s", (dump["id"],))
        conn.execute("DELETE FROM backup_runs WHERE id = %s OR parent_id = %s", (dump["id"], dump["id"]))
    rebuilt = json.loads(cli("catalog", "rebuild", "--json").stdout)
    assert rebuilt["inserted"] == [dump["id"]]
    assert runs("full")[0]["details"]["adopted"]["sha256"] == dump["details"]["adopted"]["sha256"]  # from its manifest

    code, report = adopt(guide)

    assert code == 0
    assert [(f["status"], f["run_id"]) for f in report["files"]] == [("already adopted", dump["id"])]
    assert [r["id"] for r in runs("full")] == [dump["id"]]
