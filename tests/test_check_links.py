"""check_links: the checklist's fix commands as actions, with run prefixes resolved on a real catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openwatch_backup.api.check_links import checklist_out, parse_actions
from openwatch_backup.operations.checklist import CheckItem, ItemStatus


def _actions(fix: str, recorder: Any) -> list[tuple[str, str, str | None]]:
    return [(a.command, a.verb, a.run_id) for a in parse_actions(fix, {}, recorder)]


def test_fix_commands_become_actions_with_full_run_ids(backup_env: Any, make_service: Any) -> None:
    service = make_service(backup_env.url, Path(backup_env.dir))
    backup = service.recorder.create("full", "cli")
    verify = service.recorder.create("verify", "cli", parent_id=backup)
    short_backup, short_verify = str(backup)[:8], str(verify)[:8]
    recorder = service.recorder

    assert _actions(f"run `openwatch-backup verify {short_backup}`", recorder) == [
        (f"openwatch-backup verify {short_backup}", "verify", str(backup))]
    assert _actions(f"see `openwatch-backup show {short_verify}`; fix the cause and verify it again "
                    f"(`openwatch-backup verify {short_backup} --deep`), or take a new backup", recorder) == [
        (f"openwatch-backup show {short_verify}", "show", str(verify)),
        (f"openwatch-backup verify {short_backup} --deep", "verify", str(backup))]
    assert _actions(f"run `openwatch-backup offsite {short_backup.upper()}`", recorder) == [
        (f"openwatch-backup offsite {short_backup.upper()}", "offsite", str(backup))]
    # A full id resolves to itself; the --copy option's value is not taken for the run.
    assert _actions(f"run `openwatch-backup verify {backup} --copy s3`", recorder)[0][2] == str(backup)
    # No run named: the placeholder RUN, options with values, no argument at all.
    assert _actions("run `openwatch-backup backup`, then `openwatch-backup verify RUN`", recorder) == [
        ("openwatch-backup backup", "backup", None), ("openwatch-backup verify RUN", "verify", None)]
    assert _actions("run `openwatch-backup drill --scenario host`", recorder) == [
        ("openwatch-backup drill --scenario host", "drill", None)]
    assert _actions("run `openwatch-backup backup --kind config`", recorder) == [
        ("openwatch-backup backup --kind config", "backup", None)]
    assert _actions("fix the path or OPENWATCH_BACKUP_CONFIG_PATHS; the next check takes a bundle", recorder) == []


def test_unknown_prefix_gives_no_run_and_the_text_is_kept(backup_env: Any, make_service: Any) -> None:
    service = make_service(backup_env.url, Path(backup_env.dir))
    backup = service.recorder.create("full", "cli")
    unknown = "0123abcd" if not str(backup).startswith("0123abcd") else "fedc9876"
    fix = f"run `openwatch-backup verify {unknown}`"
    items = [CheckItem("backup_verified", "The backup reads back", "each backup", ItemStatus.FAIL, "failed", fix),
             CheckItem("drill", "Restore drill", "quarterly", ItemStatus.OK, "passed")]
    out = checklist_out(service.recorder, items)
    assert out[0].fix == fix  # the CLI's words, unchanged
    assert [a.model_dump() for a in out[0].actions] == [
        {"command": f"openwatch-backup verify {unknown}", "verb": "verify", "run_id": None}]
    assert out[1].actions == []
    assert out[1].model_dump()["status"] == "ok"
