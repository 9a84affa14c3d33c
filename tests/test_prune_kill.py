"""Kill-anywhere for prune (issue 9, decision 11): `openwatch-backup prune --apply` as a real CLI process, SIGKILLed
at every instant between two of its steps (the plan recorded, each backup marked, each file deleted, each
catalog update), then `sweep` and `prune --apply` again from the CLI.

After each kill and the re-run: the files left are exactly the plan's keep set, `pruned_at` is set for exactly
the backups the plan deletes, no run stays `running`, and the verified backup the plan keeps still verifies.

The process stops at a named instant through operations/kill_points.py (inert unless its test variables are
set): it writes the instant's name to a file and sleeps; the test then sends the SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.service import BackupService
from tests.support.prune import Env, listing, make_env, prune_killed_at

pytestmark = [pytest.mark.slow]

CLI = Path(sys.executable).with_name("openwatch-backup")
PAUSE_WAIT = 60.0
PARTIAL = "postgres/openwatch_20200101_000000.dump.zst.partial"


@dataclass
class Scene:
    env: Env
    deletes: list[BackupRun]  # verified backups, 40 and 50 days old: the plan deletes them
    kept: BackupRun  # the newest verified backup
    plan_keep_files: list[str]
    plan_delete_runs: set[str]


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


@pytest.fixture
def scene(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Scene:
    env = make_env(backup_env, make_service, monkeypatch, verified_floor=1)
    monkeypatch.setenv("OPENWATCH_BACKUP_VERIFIED_FLOOR", "1")  # make_env cleared it; the CLI reads it
    deletes = [env.backup(days=40), env.backup(days=50)]
    kept = env.backup()
    (env.dir / PARTIAL).write_bytes(b"half a dump")  # a leftover: deleted by the prune (or by sweep)
    dry = json.loads(cli("prune", "--json").stdout)  # the plan every later prune must carry out
    plan = dry["details"]["plan"]
    keep_files = sorted(k for d in plan if d["action"] == "keep" for k in d["keys"])
    assert keep_files == sorted(env.keys(kept))
    delete_runs = {d["run"] for d in plan if d["action"] == "delete"}
    assert delete_runs == {str(r.id) for r in deletes}
    return Scene(env, deletes, kept, keep_files, delete_runs)


def killed_at(point: str, pause_file: Path) -> None:
    """Run `prune --apply` until it reaches `point`, then SIGKILL it there."""
    prune_killed_at(point, pause_file, wait=PAUSE_WAIT)


def assert_truth(scene: Scene) -> None:
    env = scene.env
    assert listing(env.dir) == scene.plan_keep_files
    for run in [*scene.deletes, scene.kept]:
        row = env.run(run)
        if str(run.id) in scene.plan_delete_runs:
            assert (row.pruned_at is not None, "pruning" in row.details) == (True, True), row.details
        else:
            assert (row.pruned_at, "pruning" in row.details) == (None, False)
    runs = env.service.list_runs(limit=1000)
    assert [(r.kind, r.status) for r in runs if r.status in ("queued", "running")] == []
    checked, _ = env.service.verify(str(scene.kept.id))  # the kept verified backup is whole
    assert checked.status == "succeeded"


FIRST_KILLS = ["prune:queued", "prune:claimed", "prune:plan-recorded", "prune:marked", "prune:deleted:1",
               "prune:deleted:2", "prune:deleted:3", "prune:deleted:4", "prune:batch-recorded", "prune:deleted:5",
               "prune:checked"]


@pytest.mark.parametrize("point", FIRST_KILLS)
def test_a_prune_killed_anywhere_is_finished_by_sweep_and_the_next_prune(scene: Scene, point: str,
                                                                         tmp_path: Path) -> None:
    killed_at(point, tmp_path / "paused")
    prunes = scene.env.service.list_runs(limit=1, kind="prune")
    # What a SIGKILL leaves: nothing ran on the way out (queued: killed before its claim, as while waiting for
    # the lock).
    assert prunes[0].status == ("queued" if point == "prune:queued" else "running")

    swept = json.loads(cli("sweep", "--json").stdout)

    assert swept["abandoned"] == [str(prunes[0].id)]
    assert scene.env.run(prunes[0]).status == "abandoned"
    cli("prune", "--apply")
    assert_truth(scene)


# Kills during the repairs a re-run makes: the first kill leaves a backup half deleted (artifact gone, manifest
# there) and one marked but whole; each re-run is killed again inside its repair, then one runs to the end.
CHAINS = [
    ["prune:deleted:1", "prune:repairs-recorded", "prune:repair-recorded", "prune:deleted:1"],
    ["prune:deleted:3", "prune:deleted:1", "prune:plan-recorded"],
    ["prune:marked", "prune:repair-recorded", "prune:marked", "prune:deleted:4"],
]


@pytest.mark.parametrize("chain", CHAINS, ids=["->".join(c) for c in CHAINS])
def test_re_runs_killed_again_inside_their_repairs_still_end_in_the_plan(scene: Scene, chain: list[str],
                                                                         tmp_path: Path) -> None:
    for point in chain:
        killed_at(point, tmp_path / "paused")
    cli("sweep")
    cli("prune", "--apply")
    assert_truth(scene)


def test_a_kill_before_any_rerun_leaves_every_kept_file_in_place(scene: Scene, tmp_path: Path) -> None:
    """Between the kill and the re-run (what an operator sees meanwhile): kept files are all there, and the
    backups the killed prune marked are not offered to verify, restore or pin as if whole."""
    killed_at("prune:deleted:1", tmp_path / "paused")

    assert set(scene.plan_keep_files) <= set(listing(scene.env.dir))
    half = next(r for r in scene.deletes if not (scene.env.dir / scene.env.keys(r)[0]).exists())
    assert "pruning" in scene.env.run(half).details
    assert scene.env.service.manifest_of(scene.env.run(half)) is None


@pytest.mark.parametrize("seed", [11, 22, 33, 44])
def test_a_prune_killed_at_a_random_instant_is_finished_too(scene: Scene, seed: int) -> None:
    """No pause point: a SIGKILL at a random instant of a real `prune --apply`, within the time a dry run takes
    (an apply does more, so the kill lands before its end)."""
    started = time.monotonic()
    cli("prune")
    dry_seconds = time.monotonic() - started
    delay = random.Random(seed).uniform(0.2, 0.9) * dry_seconds
    process = subprocess.Popen([str(CLI), "prune", "--apply"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    # Almost always killed mid-apply; on a machine where the apply outran the dry run it finished first (exit
    # 0), and then the same truth must hold.
    assert process.wait(timeout=30) in (-signal.SIGKILL, 0), f"prune failed before the kill at {delay:.2f} s"

    cli("sweep")
    cli("prune", "--apply")
    assert_truth(scene)
