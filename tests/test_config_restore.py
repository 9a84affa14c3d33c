"""`restore RUN --to DIR` / `--list` of a config bundle (issue 11, item 5): a new 0700 folder, each file its own
mode, links as links; never over existing files; recorded as a restore run; a kill leaves nothing or a folder
named partial; read from the S3 copy when the local file is gone."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from openwatch_backup.operations import kill_points
from tests.support.config_bundle import CLI, Bench, bench, restored_inputs
from tests.support.offsite import s3_env

__all__ = ["bench"]  # the fixture


def test_restore_to_a_new_folder_keeps_modes_and_links_and_is_recorded(bench: Bench, tmp_path: Path) -> None:
    run = bench.backup()
    dest = tmp_path / "new" / "restored"

    done = bench.cli("restore", run["id"][:8], "--to", str(dest))

    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith(f"restored {run['details']['members']} member(s) of config bundle {run['id'][:8]} "
                                  f"into {dest} (run ")
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o700
    assert restored_inputs(dest, bench) == bench.expected_files()
    assert stat.S_IMODE(os.lstat(dest / "openwatch.env").st_mode) == 0o600
    [restore] = bench.ok("list", "--kind", "restore", "--json")
    assert (restore["status"], restore["parent_id"], restore["kind"]) == ("succeeded", run["id"], "restore")
    details = restore["details"]
    assert (details["config"], details["to"], details["members"], details["read_from"]) == (
        True, str(dest), run["details"]["members"], "local")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["restored"]  # no staging folder left


def test_restore_refuses_a_folder_that_is_not_empty_and_takes_an_empty_one(bench: Bench, tmp_path: Path) -> None:
    run = bench.backup()
    full, empty = tmp_path / "full", tmp_path / "empty"
    full.mkdir()
    (full / "keep.txt").write_text("the operator's file\n")
    empty.mkdir(mode=0o755)

    refused = bench.cli("restore", run["id"], "--to", str(full))
    nowhere = bench.cli("restore", run["id"], "--to", "")  # not the working folder
    taken = bench.cli("restore", run["id"], "--to", str(empty))

    assert (refused.returncode, refused.stdout) == (10, "")
    assert refused.stderr == (f"error: restore folder {full} is not empty: give a new folder (configuration is never "
                              "restored over existing files)\n")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    assert (nowhere.returncode, nowhere.stderr) == (
        2, "error: --to needs the path of a new folder, e.g. --to /root/openwatch-config\n")
    assert (full / "keep.txt").read_text() == "the operator's file\n"
    assert taken.returncode == 0, taken.stderr
    assert stat.S_IMODE(os.lstat(empty).st_mode) == 0o700
    assert restored_inputs(empty, bench) == bench.expected_files()
    assert len(bench.ok("list", "--kind", "restore", "--json")) == 1  # the refusal recorded no run


def test_list_prints_the_member_names_and_nothing_else(bench: Bench) -> None:
    run = bench.backup()

    plain = bench.cli("restore", run["id"], "--list")
    as_json = bench.ok("restore", run["id"], "--list", "--json")

    assert (plain.returncode, plain.stderr) == (0, "")
    names = plain.stdout.splitlines()
    assert names == as_json
    assert sorted(names) == sorted(["openwatch.env", *bench.expected_files()])
    assert bench.ok("list", "--kind", "restore", "--json") == []  # read-only: no run


def test_live_configuration_is_never_restored_in_place(bench: Bench, tmp_path: Path) -> None:
    config = bench.backup()
    database = bench.ok("backup", "--kind", "schema", "--json")

    bare = bench.cli("restore", config["id"])
    confirm = bench.cli("restore", config["id"], "--confirm", "postgres")
    both = bench.cli("restore", config["id"], "--list", "--to", str(tmp_path / "x"))
    to_database = bench.cli("restore", database["id"], "--to", str(tmp_path / "y"))
    list_database = bench.cli("restore", database["id"], "--list")

    for done in (bare, confirm, both, to_database, list_database):
        assert (done.returncode, done.stdout, done.stderr.count("\n")) == (10, "", 1), done.stderr
    assert bare.stderr == confirm.stderr == (
        f"error: backup {config['id']} is a config bundle: restore it into a new folder with --to DIR (live "
        "configuration is never overwritten in place), or --list it\n")
    assert "--to or --list (one of them) restores a config bundle" in both.stderr
    assert to_database.stderr == list_database.stderr == (
        f"error: --to and --list are only for config bundles; backup {database['id']} is of kind schema: restore "
        "it with --confirm DBNAME or --into NEWDB\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "etc", "passphrase"]


def _stopped_at(point: str, pause: Path, sig: signal.Signals, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, kill_points.AT: point, kill_points.FILE: str(pause)}
    process = subprocess.Popen([str(CLI), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pause.exists() and pause.read_text() == point):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"never reached {point}"
            time.sleep(0.02)
        os.kill(process.pid, sig)
        if sig is signal.SIGTERM:
            pause.unlink()  # the handler runs once the paused step carries on
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_kill_mid_restore_leaves_nothing_or_a_folder_named_partial(bench: Bench, tmp_path: Path) -> None:
    run = bench.backup()
    area = tmp_path / "area"
    area.mkdir()

    termed = _stopped_at("config_restore_extracted", tmp_path / "pause", signal.SIGTERM,
                         "restore", run["id"], "--to", str(area / "termed"))
    assert termed.returncode == 130, termed.stderr
    assert list(area.iterdir()) == []  # SIGTERM: the extracted staging folder is removed again
    [cancelled] = bench.ok("list", "--kind", "restore", "--json")
    assert cancelled["status"] == "cancelled"

    killed = _stopped_at("config_restore_extracted", tmp_path / "pause", signal.SIGKILL,
                         "restore", run["id"], "--to", str(area / "killed"))
    assert killed.returncode == -signal.SIGKILL
    restores = bench.ok("list", "--kind", "restore", "--json")
    partial = area / f"killed.partial-{restores[0]['id'][:8]}"
    assert sorted(area.iterdir()) == [partial]  # DIR itself never appears half-written
    assert restores[0]["details"]["restoring_to"] == str(partial)
    assert restores[0]["id"] in bench.ok("sweep", "--json")["abandoned"]
    assert bench.ok("list", "--kind", "restore", "--json")[0]["status"] == "abandoned"


def test_verify_and_restore_read_the_s3_copy_when_the_local_file_is_gone(
        bench: Bench, tmp_path: Path, moto_endpoint: str, bucket: str) -> None:
    s3 = s3_env(moto_endpoint, bucket)
    run = bench.ok("backup", "--kind", "config", "--json", env=s3)
    copied = bench.cli("offsite", run["id"], env=s3)
    assert copied.returncode == 0, copied.stderr
    bench.artifact(run).unlink()

    verify = bench.ok("verify", run["id"], "--json", env=s3)
    restored = bench.ok("restore", run["id"], "--to", str(tmp_path / "from-s3"), "--json", env=s3)

    assert (verify["status"], verify["details"]["read_from"]) == ("succeeded", "s3")
    assert verify["details"]["verify"]["checks"]["members"] == run["details"]["members"]
    assert (restored["status"], restored["details"]["read_from"]) == ("succeeded", "s3")
    assert restored_inputs(tmp_path / "from-s3", bench) == bench.expected_files()

