"""A set `catalog rebuild` recreated from its members' manifests gets, at the sweeper's next pass, the status its
members say: failed (set_incomplete) when no database dump is among them, succeeded (outcome "rebuilt") when one
is; the members found are recorded, once. Real PostgreSQL, real files, real sets (service/sets.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.service import BackupService
from openwatch_backup.service.sets import close_dead_sets
from tests.support.prune import Env, listing, make_env, sql
from tests.test_sets import change_config, config_settings, keys_of, member_runs, take_set


@pytest.fixture
def env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Env:
    return make_env(backup_env, make_service, monkeypatch, **config_settings(tmp_path))


@pytest.mark.slow
def test_a_rebuilt_set_says_what_its_members_say(env: Env, tmp_path: Path) -> None:
    whole = take_set(env)
    change_config(tmp_path, "sample key, second version\n")
    lost = take_set(env)  # its dump's files go below: only its config bundle's manifest is left to rebuild from
    whole_members, lost_members = member_runs(env, whole.id), member_runs(env, lost.id)
    assert [[m.kind for m in ms] for ms in (whole_members, lost_members)] == [["full", "config"]] * 2
    lost_dump, lost_config = lost_members
    for key in keys_of(lost_dump):
        (env.dir / key).unlink()
    sql(env.url, "DELETE FROM backup_copies")
    sql(env.url, "DELETE FROM backup_runs")
    env.service.rebuild_catalog()
    assert [env.service.get_run(str(s.id)).status for s in (whole, lost)] == ["succeeded", "succeeded"]

    settled = close_dead_sets(env.service)

    assert sorted(settled) == sorted([str(whole.id), str(lost.id)])
    failed = env.service.get_run(str(lost.id))
    assert (failed.status, failed.error_code, failed.error) == (
        "failed", "set_incomplete", "set incomplete: rebuilt from manifests with no database dump among its members "
                                    "(config)")
    assert failed.details["members"] == {str(lost_config.id): {"kind": "config", "status": "succeeded"}}
    assert failed.details["outcome"] == "partial"
    good = env.service.get_run(str(whole.id))
    assert (good.status, good.error, good.details["outcome"]) == ("succeeded", None, "rebuilt")
    assert good.details["members"] == {str(m.id): {"kind": m.kind, "status": "succeeded"} for m in whole_members}
    assert close_dead_sets(env.service) == []  # settled once
    assert listing(env.dir) == sorted([*keys_of(whole_members[0]), *keys_of(whole_members[1]),
                                       *keys_of(lost_config)])  # nothing deleted by settling
