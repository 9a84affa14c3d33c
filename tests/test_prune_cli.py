"""Prune's settings (environment and backup_settings overrides) and the CLI's prune, pin and unpin: exit
statuses, one-line errors and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner, Result

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.cli import app
from openwatch_backup.errors import ConfigError
from openwatch_backup.service import BackupService
from tests.support.prune import Env, decisions, listing, make_env, sql

pytestmark = [pytest.mark.slow,  # verify leaks pg_restore's pipes (pinned by an xfail in test_drill_check.py)
              pytest.mark.filterwarnings("ignore:unclosed file <_io.Buffered:ResourceWarning")]


@pytest.fixture
def one_to_prune(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[Env, BackupRun, BackupRun]:
    """Floor 1: an old verified backup the plan deletes, and a new one it keeps."""
    env = make_env(backup_env, make_service, monkeypatch, verified_floor=1)
    monkeypatch.setenv("OPENWATCH_BACKUP_VERIFIED_FLOOR", "1")  # make_env cleared it; the CLI reads it
    return env, env.backup(days=40), env.backup()


# --- settings --------------------------------------------------------------------------------------------------


def set_override(url: str, key: str, value: Any) -> None:
    sql(url, "INSERT INTO backup_settings (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
        "EXCLUDED.value", key, Jsonb(value))


def test_backup_settings_override_the_environment(one_to_prune: tuple[Env, BackupRun, BackupRun]) -> None:
    env, old, _ = one_to_prune
    set_override(env.url, "retention.days", 60)

    run = env.service.prune()

    assert run.details["policy"]["retention_days"] == 60
    assert decisions(run)[str(old.id)] == ("keep", "within 60 days")


def test_a_bad_override_fails_the_prune_with_one_line(one_to_prune: tuple[Env, BackupRun, BackupRun]) -> None:
    env, old, _ = one_to_prune
    set_override(env.url, "retention.verified_floor", 0)

    with pytest.raises(ConfigError) as info:
        env.service.prune(apply=True)

    assert info.value.message == ("backup_settings retention.verified_floor: Input should be greater than or "
                                  "equal to 1 (got 0); store a value from 1 to 1,000 on the admin page's settings "
                                  "(PUT /settings), or delete the key to use OPENWATCH_BACKUP_VERIFIED_FLOOR")
    run = env.service.list_runs(limit=1, kind="prune")[0]
    assert (run.status, run.error_code) == ("failed", "config")
    assert all((env.dir / k).exists() for k in env.keys(old))


# --- CLI -------------------------------------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_cli_prune_shows_then_applies(one_to_prune: tuple[Env, BackupRun, BackupRun]) -> None:
    env, old, new = one_to_prune

    shown = invoke("prune")
    assert shown.exit_code == 0, shown.output
    assert "dry run: 1 backup(s) and 0 leftover(s) would be deleted" in shown.stdout
    assert "older than 30 days" in shown.stdout
    assert listing(env.dir) == sorted(env.keys(old) + env.keys(new))

    dry = invoke("prune", "--json")
    assert dry.exit_code == 0
    run = json.loads(dry.stdout)
    assert (run["kind"], run["status"], run["details"]["apply"]) == ("prune", "succeeded", False)

    applied = invoke("prune", "--apply", "--json")
    assert applied.exit_code == 0
    run = json.loads(applied.stdout)
    assert (run["details"]["summary"]["backups_deleted"], sorted(run["details"]["deleted"])) == (
        1, sorted(env.keys(old)))
    assert listing(env.dir) == sorted(env.keys(new))


def test_cli_pin_and_unpin(one_to_prune: tuple[Env, BackupRun, BackupRun]) -> None:
    env, old, _ = one_to_prune
    short = str(old.id)[:8]

    pinned = invoke("pin", short, "--json")
    assert pinned.exit_code == 0, pinned.output
    assert json.loads(pinned.stdout)["pinned"] is True
    assert decisions(env.service.prune())[str(old.id)] == ("keep", "pinned")

    unpinned = invoke("unpin", short)
    assert (unpinned.exit_code, unpinned.stdout.split(":")[0]) == (0, f"unpinned full backup {old.id}")
    assert env.run(old).pinned is False

    verify_run = env.service.list_runs(limit=1, kind="verify")[0]
    refused = invoke("pin", str(verify_run.id))
    assert refused.exit_code == 6
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"error: run {str(verify_run.id)[:8]} is not a successful backup (kind verify")
    assert invoke("pin", "0000000000").exit_code == 6


def test_cli_refuses_a_floor_of_zero(one_to_prune: tuple[Env, BackupRun, BackupRun],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWATCH_BACKUP_VERIFIED_FLOOR", "0")

    result = invoke("prune", "--apply")

    assert result.exit_code == 2
    assert result.stderr == ("error: OPENWATCH_BACKUP_VERIFIED_FLOOR: Input should be greater than or equal to 1 "
                             "(got '0')\n")
