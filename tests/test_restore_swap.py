"""The swap of a full restore is one transaction (issue 9, failures 1 and 6).

Failure 1 as found: a session on the scratch database makes the second rename wait; a SIGKILL during that
wait left the live name missing (the first rename had committed on its own) and the old database with
ALLOW_CONNECTIONS false, so every command failed with "cannot reach the catalog database". Failure 6: the
same session, without a kill, gave psycopg's ObjectInUse as a multi-line `internal` error with exit 1.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.source.scratch import scratch_name
from openwatch_backup.source.swap import LOCK_TIMEOUT
from tests.support.restore_helpers import (
    CANARY,
    CATALOG,
    Lab,
    cli_env,
    content,
    database_exists,
    databases_named_after,
    modify,
)
from tests.support.restore_kill import PausedCli, allows_connections, run_row, start_paused, sweep_json

pytestmark = pytest.mark.usefixtures("restore_env")


def _restore_with_a_session_on_the_scratch_database(lab: Lab, backup: BackupRun, tmp_path: Path
                                                     ) -> tuple[PausedCli, psycopg.Connection, str, str]:
    lab.service.recorder.release_connections()
    env = cli_env(lab.url, lab.backup_dir)
    cli = start_paused(["restore", str(backup.id), "--confirm", lab.name, "--no-safety-backup",
                        "--terminate-connections"], env, ["catalog_copied"], tmp_path / "pause")
    cli.wait_for("catalog_copied")
    restore_id = str(lab.service.list_runs(kind="restore")[0].id)
    scratch = scratch_name("restore", lab.service.recorder.get(restore_id).id)
    holder = psycopg.connect(lab.pg.url_for(scratch), application_name="inspector", autocommit=True)
    cli.resume()
    return cli, holder, restore_id, scratch


def test_a_kill_while_the_swap_waits_leaves_the_live_database_whole(lab: Lab, tmp_path: Path) -> None:
    backup = lab.backup()
    modify(lab.url)  # the live database now differs from the backup: which one is live can be told apart
    before = content(lab.url, skip=(CATALOG, CANARY))
    cli, holder, restore_id, scratch = _restore_with_a_session_on_the_scratch_database(lab, backup, tmp_path)
    try:
        time.sleep(2)  # the second rename waits (PostgreSQL gives a session up to 5 s to leave)
        assert cli.proc.poll() is None, "the swap did not wait: the kill would not land inside it"
        assert database_exists(lab.pg, lab.name)  # no instant without the live name, even uncommitted
        cli.kill()
    finally:
        holder.close()
        cli.stop()

    # The whole old database under the live name, taking connections; nothing renamed.
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert allows_connections(lab.pg, lab.name) is True
    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert database_exists(lab.pg, scratch)

    env = cli_env(lab.url, lab.backup_dir)
    report = sweep_json(env)
    assert scratch in report["databases"]  # type: ignore[operator]
    assert not database_exists(lab.pg, scratch)
    status, code, _ = run_row(lab.url, restore_id)
    assert (status, code) == ("abandoned", "abandoned")


def test_a_session_on_the_scratch_database_fails_the_swap_with_one_typed_line(lab: Lab, tmp_path: Path) -> None:
    backup = lab.backup()
    modify(lab.url)  # the live database now differs from the backup: which one is live can be told apart
    before = content(lab.url, skip=(CATALOG, CANARY))
    cli, holder, restore_id, scratch = _restore_with_a_session_on_the_scratch_database(lab, backup, tmp_path)
    try:
        code, out, err = cli.finish()
    finally:
        holder.close()
        cli.stop()

    message = (f"1 other session(s) (inspector) connected to the restored database {scratch} blocked the swap; "
               f"nothing was changed ({lab.name} is as it was); close it and restore again")
    assert (code, out, err) == (8, "", f"error: {message}\n")
    status, error_code, _ = run_row(lab.url, restore_id)
    assert (status, error_code) == ("failed", "database_in_use")
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert allows_connections(lab.pg, lab.name) is True
    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert not database_exists(lab.pg, scratch)  # the failed restore dropped its own scratch database


@pytest.mark.parametrize("instant", ["swap_first_rename", "swap_before_commit"])
def test_sigterm_inside_the_swap_rolls_it_back(lab: Lab, tmp_path: Path, instant: str) -> None:
    backup = lab.backup()
    modify(lab.url)
    before = content(lab.url, skip=(CATALOG, CANARY))
    lab.service.recorder.release_connections()
    cli = start_paused(["restore", str(backup.id), "--confirm", lab.name, "--no-safety-backup",
                        "--terminate-connections"], cli_env(lab.url, lab.backup_dir), [instant], tmp_path / "pause")
    try:
        cli.wait_for(instant)  # inside the transaction: the live database is renamed, uncommitted
        cli.proc.send_signal(signal.SIGTERM)
        code, _, err = cli.finish(timeout=60)
    finally:
        cli.stop()

    run = lab.only_restore_run()
    assert code == 130
    assert err == f"error: {run.error}\n"
    assert (run.status, run.error_code, run.phase) == ("cancelled", "cancelled", "swapping")
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert allows_connections(lab.pg, lab.name) is True
    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert lab.leftovers() == []


def test_a_lock_on_the_scratch_database_times_the_swap_out(lab: Lab, tmp_path: Path) -> None:
    """Someone holds a lock on the restored database (an open transaction that commented on it): the swap
    gives up after its lock_timeout with one typed line instead of waiting for ever; the live database is
    untouched; the scratch database the failed run could not drop is the sweeper's."""
    backup = lab.backup()
    modify(lab.url)
    before = content(lab.url, skip=(CATALOG, CANARY))
    lab.service.recorder.release_connections()
    cli = start_paused(["restore", str(backup.id), "--confirm", lab.name, "--no-safety-backup",
                        "--terminate-connections"], cli_env(lab.url, lab.backup_dir), ["catalog_copied"],
                       tmp_path / "pause")
    holder = lab.pg.connect(autocommit=False)  # the maintenance database: nothing the swap terminates
    try:
        cli.wait_for("catalog_copied")
        restore_id = str(lab.service.list_runs(kind="restore")[0].id)
        scratch = scratch_name("restore", lab.service.recorder.get(restore_id).id)
        holder.execute(f'COMMENT ON DATABASE "{scratch}" IS \'under inspection\'')  # locked until rollback
        started = time.monotonic()
        cli.resume()
        code, out, err = cli.finish(timeout=120)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
        cli.stop()

    message = (f"the swap waited {LOCK_TIMEOUT} for a lock on {lab.name} or {scratch} and gave up; nothing was "
               "changed; restore again when they are idle")
    assert (code, out, err) == (8, "", f"error: {message}\n")
    assert waited < 60
    status, error_code, _ = run_row(lab.url, restore_id)
    assert (status, error_code) == ("failed", "database_in_use")
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert scratch in sweep_json(cli_env(lab.url, lab.backup_dir))["databases"]  # type: ignore[operator]
    assert not database_exists(lab.pg, scratch)


def test_a_connection_lost_inside_the_swap_leaves_it_undone_and_says_so(lab: Lab, tmp_path: Path) -> None:
    """The swap's own connection is ended by the server before its COMMIT: all or nothing, here nothing."""
    backup = lab.backup()
    modify(lab.url)
    before = content(lab.url, skip=(CATALOG, CANARY))
    lab.service.recorder.release_connections()
    cli = start_paused(["restore", str(backup.id), "--confirm", lab.name, "--no-safety-backup",
                        "--terminate-connections"], cli_env(lab.url, lab.backup_dir), ["swap_before_commit"],
                       tmp_path / "pause")
    try:
        cli.wait_for("swap_before_commit")
        with lab.pg.connect() as admin:
            # The session holding the live database's lock: the swap's, with both renames done, uncommitted.
            swapping = admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'object' AND classid = 'pg_database'::regclass "
                "AND objid = (SELECT oid FROM pg_database WHERE datname = %s) AND mode = 'AccessExclusiveLock' "
                "AND granted", (lab.name,)).fetchall()
            assert len(swapping) == 1, swapping
            admin.execute("SELECT pg_terminate_backend(%s)", (swapping[0][0],))
        cli.resume()
        code, out, err = cli.finish(timeout=120)
    finally:
        cli.stop()

    run = lab.only_restore_run()
    kept = run.details["swap"]["kept"]
    assert (code, out) == (8, "")
    assert err.startswith("error: the connection broke during the swap (")
    assert err.endswith(f"); it either committed whole or not at all: `openwatch-backup sweep` reports {kept} if "
                        f"the restored database is now {lab.name}\n")
    assert (run.status, run.error_code) == ("failed", "restore_failed")
    assert databases_named_after(lab.pg, lab.name) == [lab.name]
    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert lab.leftovers() == []
    assert sweep_json(cli_env(lab.url, lab.backup_dir))["kept_databases"] == []
