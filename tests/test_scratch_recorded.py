"""Deep verify and drill record their scratch database on the run before creating it (decision 11), so a
SIGKILLed run's database is found by its record as well as by its name, and `sweep` drops it and clears the
record; a run that ends normally leaves neither the database nor the record (issue 9, failure 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openwatch_backup.source.scratch import scratch_name
from tests.support.restore_helpers import Lab, cli_env, database_exists
from tests.support.restore_kill import run_row, start_paused, sweep_json

pytestmark = pytest.mark.usefixtures("restore_env")


@pytest.mark.parametrize(("command", "kind"), [(["verify", "--deep"], "verify"), (["drill"], "drill")])
def test_a_killed_deep_restore_leaves_a_recorded_database_that_sweep_drops(
        lab: Lab, tmp_path: Path, command: list[str], kind: str) -> None:
    backup = lab.backup()
    env = cli_env(lab.url, lab.backup_dir)
    args = [command[0], str(backup.id), *command[1:]] if kind == "verify" else command
    cli = start_paused(args, env, [f"{kind}_scratch_created"], tmp_path / "pause")
    try:
        cli.wait_for(f"{kind}_scratch_created")
        run = lab.service.list_runs(kind=kind)[0]
        name = scratch_name(kind, run.id)
        assert run_row(lab.url, str(run.id))[2]["databases_created"] == [name]
        assert database_exists(lab.pg, name)
        cli.kill()
    finally:
        cli.stop()
    assert database_exists(lab.pg, name)

    report = sweep_json(env)

    assert name in report["databases"]  # type: ignore[operator]
    assert not database_exists(lab.pg, name)
    status, _, details = run_row(lab.url, str(run.id))
    assert status == "abandoned"
    assert details["databases_created"] == []


def test_a_finished_deep_verify_leaves_no_database_and_no_record(lab: Lab) -> None:
    backup = lab.backup()
    run, _ = lab.service.verify(str(backup.id), deep=True)
    assert run.status == "succeeded", run.error
    assert run.details["databases_created"] == []
    assert not database_exists(lab.pg, scratch_name("verify", run.id))
