"""Kill-anywhere: `openwatch-backup restore` as a real process, SIGKILLed at every phase boundary and at
random instants; after each kill (issue 9, "prove it in general"):

- a whole database is under the live name (the old one's content, or the backup's once the swap committed),
  taking connections;
- `openwatch-backup sweep` removes every leftover: no scratch database of this catalog's runs, no
  half-restored --into database; the database a committed swap kept is reported, not dropped;
- the catalog tells the truth: no run is left running or queued, the killed restore is abandoned;
- no verified backup was lost: the backup still passes a full quick verify.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from tests.support.procs import children_named
from tests.support.restore_helpers import (
    CANARY,
    CATALOG,
    Content,
    DatabaseFactory,
    Lab,
    cli_env,
    content,
    database_exists,
    databases_named_after,
    modify,
)
from tests.support.restore_kill import allows_connections, run_row, start_paused, sweep_json, wait_for_children_gone

pytestmark = pytest.mark.usefixtures("restore_env")

# Phase boundaries of a full restore, in order; those after the swap's commit leave the backup live.
FULL_INSTANTS = ["verifying", "guards", "safety_backup", "restoring", "checking", "swapping", "catalog_copied",
                 "swap_first_rename", "swap_before_commit", "swapped"]
COMMITTED = {"swapped"}
INTO_INSTANTS = ["guards", "restoring", "checking"]
SEED = int(os.environ.get("OWB_KILL_SEED", "20261130"))  # another seed, other instants: the same assertions
_RNG = random.Random(SEED)
# After the run started. A full restore of the sample takes 1.5-5 s here, an --into one 0.8-2 s, depending on the
# load; a draw that comes too late finds the run finished, and then its success is what is checked.
FULL_DELAYS = [round(_RNG.uniform(0.05, 1.2), 2) for _ in range(4)]
INTO_DELAYS = [round(_RNG.uniform(0.05, 0.5), 2)]
# FINISHED: the kill comes after the run ended, the case a late random draw hits only sometimes.
FINISHED = pytest.param(None, -1.0, id="after-finish")
FULL_CASES = [pytest.param(i, 0.0, id=i) for i in FULL_INSTANTS] + \
    [pytest.param(None, d, id=f"random-{d}s") for d in FULL_DELAYS] + [FINISHED]
INTO_CASES = [pytest.param(i, 0.0, id=i) for i in INTO_INSTANTS] + \
    [pytest.param(None, d, id=f"random-{d}s") for d in INTO_DELAYS] + [FINISHED]


def _catalog_rows(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(i), str(k), str(s)) for i, k, s in conn.execute("SELECT id, kind, status FROM backup_runs")]


def _prepare(lab: Lab) -> tuple[BackupRun, Content, Content]:
    """A verified backup, then changes: which database is live can be told from its content."""
    backup = lab.backup()
    verified, _ = lab.service.verify(str(backup.id))
    assert verified.status == "succeeded"
    at_backup = content(lab.url, skip=(CATALOG, CANARY))
    modify(lab.url)
    before = content(lab.url, skip=(CATALOG, CANARY))
    assert before != at_backup
    lab.service.recorder.release_connections()  # the swap would end our pooled sessions anyway
    return backup, at_backup, before


def _kill(lab: Lab, args: list[str], tmp_path: Path, instant: str | None, delay: float) -> None:
    """Run the CLI, SIGKILL it at `instant` (or `delay` seconds after its run started, or after it ended when
    `delay` is negative), wait for its clients."""
    cli = start_paused(args, cli_env(lab.url, lab.backup_dir), [instant or "verifying"], tmp_path / "pause")
    try:
        cli.wait_for(instant or "verifying")  # the run is claimed (running) from here on
        if instant is None:
            cli.resume()
            if delay < 0:
                cli.proc.wait(timeout=300)
            time.sleep(max(delay, 0.0))
            if cli.proc.poll() is not None:  # a quiet machine: it finished first; the run must have succeeded
                _, err = cli.proc.communicate()
                assert cli.proc.returncode == 0, err
                return
        clients = children_named(cli.proc.pid, "pg_restore") + children_named(cli.proc.pid, "psql") + \
            children_named(cli.proc.pid, "pg_dump")
        cli.kill(may_have_exited=instant is None)  # a random instant may come just after the run finished
        wait_for_children_gone(clients)
    finally:
        cli.stop()


def _restore_status(lab: Lab) -> str:
    return next(s for _, k, s in _catalog_rows(lab.url) if k == "restore")


def _assert_after_sweep(lab: Lab, backup: BackupRun, swept: dict[str, object], *, committed: bool | None,
                        at_backup: Content, before: Content, may_have_finished: bool) -> None:
    # A whole database under the live name, taking connections.
    assert allows_connections(lab.pg, lab.name) is True
    live = content(lab.url, skip=(CATALOG, CANARY))
    if committed is None:  # a random instant: either, but whole
        committed = live == at_backup
    assert live == (at_backup if committed else before)
    # The catalog tells the truth: nothing left running or queued; the restore abandoned, or (a random kill
    # that landed after the run recorded its success, while the process was exiting) succeeded.
    rows = _catalog_rows(lab.url)
    assert [r for r in rows if r[2] in (RunStatus.RUNNING.value, RunStatus.QUEUED.value)] == []
    restores = [r for r in rows if r[1] == "restore"]
    assert len(restores) == 1, rows
    status, code, details = run_row(lab.url, restores[0][0])
    finished = status == RunStatus.SUCCEEDED.value and may_have_finished
    assert (status, code) == (("succeeded", None) if finished else ("abandoned", "abandoned"))
    assert details.get("databases_created", []) == []
    # Every leftover gone; the kept database of a committed swap kept, and named: by the sweep for a run that
    # died, by the run itself when it succeeded.
    assert lab.leftovers() == []
    names = databases_named_after(lab.pg, lab.name)
    kept = [n for n in names if n != lab.name]
    assert len(kept) == (1 if committed else 0), names
    for name in kept:
        assert allows_connections(lab.pg, name) is True
    if finished:
        assert swept["kept_databases"] == []
        # A swap names its kept database; a restore --into keeps none.
        assert details["restore"]["kept_database"] == (kept[0] if kept else None)  # type: ignore[index]
    else:
        assert swept["kept_databases"] == kept
        if committed:
            assert details["swap_completed"]["kept_database"] == kept[0]  # type: ignore[index]
    # No verified backup lost.
    again, _ = lab.service.verify(str(backup.id))
    assert again.status == "succeeded", again.error


@pytest.mark.parametrize(("instant", "delay"), FULL_CASES)
def test_full_restore_killed_anywhere(lab: Lab, tmp_path: Path, instant: str | None, delay: float) -> None:
    backup, at_backup, before = _prepare(lab)
    _kill(lab, ["restore", str(backup.id), "--confirm", lab.name, "--terminate-connections"], tmp_path, instant, delay)

    # At once after the kill, before any sweep: the live name already holds a whole database.
    assert database_exists(lab.pg, lab.name)
    swept = sweep_json(cli_env(lab.url, lab.backup_dir))

    _assert_after_sweep(lab, backup, swept, committed=(instant in COMMITTED) if instant else None,
                        at_backup=at_backup, before=before, may_have_finished=instant is None)


@pytest.mark.parametrize(("instant", "delay"), INTO_CASES)
def test_into_restore_killed_anywhere(lab: Lab, make_database: DatabaseFactory, tmp_path: Path,
                                      instant: str | None, delay: float) -> None:
    backup, at_backup, before = _prepare(lab)
    target = make_database.track(make_database.new_name("into"))
    _kill(lab, ["restore", str(backup.id), "--into", target], tmp_path, instant, delay)

    swept = sweep_json(cli_env(lab.url, lab.backup_dir))

    if instant is None and _restore_status(lab) == RunStatus.SUCCEEDED.value:  # done before the kill landed
        assert content(lab.pg.url_for(target), skip=(CATALOG, CANARY)) == at_backup
    else:
        assert not database_exists(lab.pg, target)  # half-restored or not yet created: gone after the sweep
    if instant in ("restoring", "checking"):
        assert swept["databases"] == [target]
    _assert_after_sweep(lab, backup, swept, committed=False, at_backup=at_backup, before=before,
                        may_have_finished=instant is None)
