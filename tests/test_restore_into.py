"""`restore --into`: the database it creates is recorded on the run before it exists, so a killed run's
half-restored database is dropped by `sweep`; names it must not take, and options that contradict it, are
refused (issue 9, failures 4 and 8)."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import RestoreRefused
from openwatch_backup.operations.restore import RestoreRequest
from openwatch_backup.source.scratch import scratch_name
from tests.support.restore_helpers import DatabaseFactory, Lab, cli_env, database_exists, run_cli
from tests.support.restore_kill import run_row, start_paused, sweep_json

pytestmark = pytest.mark.usefixtures("restore_env")


def test_a_killed_into_restore_is_dropped_by_sweep(lab: Lab, make_database: DatabaseFactory, tmp_path: Path) -> None:
    backup = lab.backup()
    target = make_database.track(make_database.new_name("into"))
    env = cli_env(lab.url, lab.backup_dir)
    cli = start_paused(["restore", str(backup.id), "--into", target], env, ["checking"], tmp_path / "pause")
    try:
        cli.wait_for("checking")  # created and filled, not yet checked
        assert database_exists(lab.pg, target)
        restore_id = str(lab.only_restore_run().id)
        assert run_row(lab.url, restore_id)[2]["databases_created"] == [target]
        cli.kill()
    finally:
        cli.stop()
    assert database_exists(lab.pg, target)  # half-restored, left by the kill

    report = sweep_json(env)

    assert target in report["databases"]  # type: ignore[operator]
    assert not database_exists(lab.pg, target)
    status, code, details = run_row(lab.url, restore_id)
    assert (status, code) == ("abandoned", "abandoned")
    assert details["databases_created"] == []  # gone: the name is free for the operator again
    with lab.pg.connect() as conn:
        conn.execute(f'CREATE DATABASE "{target}"')  # the operator reuses the name
    assert target not in sweep_json(env)["databases"]  # type: ignore[operator]
    assert database_exists(lab.pg, target)


def test_sweep_keeps_a_succeeded_into_database_and_one_it_did_not_create(
        lab: Lab, make_database: DatabaseFactory) -> None:
    backup = lab.backup()
    restored = make_database.track(make_database.new_name("into"))
    operators = make_database("operators")
    assert lab.service.restore(str(backup.id), RestoreRequest(into=restored)).status == "succeeded"
    with pytest.raises(RestoreRefused):
        lab.service.restore(str(backup.id), RestoreRequest(into=operators.rsplit("/", 1)[1]))

    report = lab.service.sweep()

    assert report.databases == []
    assert database_exists(lab.pg, restored)
    assert database_exists(lab.pg, operators.rsplit("/", 1)[1])


@pytest.mark.parametrize("purpose", ["restore", "verify", "drill"])
def test_into_a_scratch_name_is_refused(lab: Lab, purpose: str) -> None:
    backup = lab.backup()
    name = scratch_name(purpose, backup.id)

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(into=name))

    assert caught.value.message == (f"--into {name}: names starting with owbscratch_ are this tool's scratch "
                                    "databases (the sweeper drops them); choose another name")
    assert not database_exists(lab.pg, name)
    assert lab.only_restore_run().error_code == "restore_refused"


def test_confirm_with_into_is_refused_from_the_cli(lab: Lab, make_database: DatabaseFactory) -> None:
    backup = lab.backup()
    target = make_database.track(make_database.new_name("into"))

    done = run_cli("restore", str(backup.id), "--confirm", lab.name, "--into", target,
                   env=cli_env(lab.url, lab.backup_dir))

    message = (f"--confirm {lab.name} and --into {target} contradict each other: --into creates a new database "
               f"and needs no --confirm; --confirm {lab.name} alone replaces the live one")
    assert (done.returncode, done.stdout, done.stderr) == (10, "", f"error: {message}\n")
    assert not database_exists(lab.pg, target)
    with psycopg.connect(lab.url) as conn:
        row = conn.execute("SELECT status, error_code FROM backup_runs WHERE kind = 'restore'").fetchone()
    assert row == ("failed", "restore_refused")


def test_sigterm_mid_into_restore_drops_what_it_created(lab: Lab, make_database: DatabaseFactory,
                                                         tmp_path: Path) -> None:
    """SIGTERM (timeout, docker stop, systemd) ends the run like Ctrl-C: exit 130, cancelled, nothing left."""
    backup = lab.backup()
    target = make_database.track(make_database.new_name("into"))
    cli = start_paused(["restore", str(backup.id), "--into", target], cli_env(lab.url, lab.backup_dir),
                       ["checking"], tmp_path / "pause")
    try:
        cli.wait_for("checking")
        assert database_exists(lab.pg, target)
        cli.proc.send_signal(signal.SIGTERM)
        code, _, err = cli.finish(timeout=60)
    finally:
        cli.stop()

    run = lab.only_restore_run()
    assert code == 130
    assert err == f"error: {run.error}\n"
    assert (run.status, run.error_code) == ("cancelled", "cancelled")
    assert not database_exists(lab.pg, target)
    assert run_row(lab.url, str(run.id))[2]["databases_created"] == []


def test_sweep_never_drops_the_live_database_whatever_a_run_row_says(lab: Lab) -> None:
    """A catalog row (forged, or carried over by a restore) naming the live database as created by a failed
    run: the sweep leaves the live database alone and clears the record."""
    run_id = lab.service.recorder.create("restore", "cli", details={"databases_created": [lab.name]})
    lab.service.recorder.finish_unsuccessfully(run_id, RunStatus.FAILED, "restore_failed", "forged")

    report = lab.service.sweep()

    assert report.databases == []
    assert database_exists(lab.pg, lab.name)
    assert lab.service.get_run(str(run_id)).details["databases_created"] == []
