"""Which files prune deletes besides planned backups, which it leaves alone, and how it repairs a stopped prune."""

from __future__ import annotations

from openwatch_backup.core.prune_files import RunFiles, StoredFile, classify_files, plan_repairs

M = ".manifest.json"


def files(*keys: str) -> list[StoredFile]:
    return [StoredFile(k, 10) for k in sorted(keys)]


def test_every_file_gets_one_verdict() -> None:
    runs = [
        RunFiles("ok", "succeeded", "postgres/ok.dump", "postgres/ok.dump"),
        RunFiles("live", "running", None, "postgres/live.dump"),
        RunFiles("dead", "abandoned", None, "postgres/dead.dump"),
        RunFiles("gone", "succeeded", "postgres/gone.dump", "postgres/gone.dump", pruned=True),
    ]
    stored = files("postgres/ok.dump", "postgres/ok.dump" + M, "postgres/live.dump.partial",
                   "postgres/dead.dump.partial", "postgres/dead.dump", "postgres/gone.dump" + M,
                   "postgres/other.dump", "postgres/other.dump" + M, "postgres/lonely.dump" + M,
                   "postgres/garbled.dump" + M, "postgres/notes.txt")
    owners = {"postgres/other.dump" + M: "not-in-catalog", "postgres/lonely.dump" + M: "also-unknown"}

    report = classify_files(stored, runs, owners.get)

    assert [(n.key, n.reason, n.run_id) for n in report.leftovers] == [
        ("postgres/dead.dump", "file of an unsuccessful run (abandoned)", "dead"),
        ("postgres/dead.dump.partial", ".partial of a run that is not running", "dead"),
        ("postgres/lonely.dump" + M, "manifest without its artifact", "also-unknown"),
    ]
    assert [(n.key, n.reason) for n in report.left_alone] == [
        ("postgres/live.dump.partial", "being written"),
        ("postgres/other.dump", "a backup the catalog does not know: `openwatch-backup catalog rebuild` adds it"),
        ("postgres/other.dump" + M, "a backup the catalog does not know: `openwatch-backup catalog rebuild` adds it"),
    ]
    assert [(n.key, n.reason) for n in report.foreign] == [
        ("postgres/garbled.dump" + M, "not ours (unreadable manifest): left alone"),
        ("postgres/notes.txt", "not ours: left alone"),
    ]
    assert [(n.key, n.run_id) for n in report.stale] == [("postgres/gone.dump" + M, "gone")]


def test_a_stopped_prune_is_completed_or_released() -> None:
    runs = [
        RunFiles("half", "succeeded", "postgres/half.dump", "postgres/half.dump", pruning="prune-1"),
        RunFiles("none", "succeeded", "postgres/none.dump", "postgres/none.dump", pruning="prune-1"),
        RunFiles("all", "succeeded", "postgres/all.dump", "postgres/all.dump", pruning="prune-1"),
        RunFiles("done", "succeeded", "postgres/done.dump", "postgres/done.dump", pruned=True, pruning="prune-1"),
    ]
    stored = files("postgres/half.dump" + M, "postgres/all.dump", "postgres/all.dump" + M)

    repairs = plan_repairs(stored, runs)

    assert [(r.run_id, r.action, r.delete_keys) for r in repairs] == [
        ("half", "complete", ("postgres/half.dump" + M,)),
        ("none", "complete", ()),
        ("all", "release", ()),
    ]
    # Files of rows being repaired are neither leftovers nor foreign.
    report = classify_files(stored, runs, lambda key: None)
    assert (report.leftovers, report.foreign, report.stale) == ([], [], [])
