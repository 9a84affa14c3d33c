"""What prune does with files that are not a kept or planned backup (pure, stdlib only).

Every stored key under the backups' prefix falls into exactly one bin:
  - a file of a successful, unpruned backup: the retention plan decides (core/retention.py);
  - a file of a pruned backup that is still there (a crash or a failed delete): repair deletes it;
  - work in progress (a running run's `.partial`, files of a running run): left alone;
  - a leftover of a run that is no longer running: a `.partial`, the files of a failed run, a manifest
    whose artifact is gone: deleted only when prune is applied, and listed;
  - a backup the catalog does not know (a manifest and its artifact): left alone, `catalog rebuild` adds it;
  - anything else: not ours, reported and never deleted.
A backup row marked `pruning` by a prune that stopped part-way is completed (files partly or wholly gone)
or released for planning again (every file still there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

MANIFEST_SUFFIX = ".manifest.json"  # core/naming.py's suffixes, repeated so this module stands alone
PARTIAL_SUFFIX = ".partial"
RUNNING = ("queued", "running")


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int


@dataclass(frozen=True)
class RunFiles:
    """What the catalog says about one backup run's files."""

    run_id: str
    status: str
    artifact_key: str | None  # the committed artifact (successful runs)
    in_progress_key: str | None  # the artifact the run was writing (any run that got that far)
    pruned: bool = False
    pruning: str | None = None  # the prune run that recorded its intent to delete this backup

    @property
    def keys(self) -> tuple[str, ...]:
        key = self.artifact_key or self.in_progress_key
        return (key, key + MANIFEST_SUFFIX) if key else ()


@dataclass(frozen=True)
class FileNote:
    key: str
    size: int
    reason: str
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "size_bytes": self.size, "reason": self.reason, "run": self.run_id}


@dataclass
class FileReport:
    leftovers: list[FileNote] = field(default_factory=list)
    foreign: list[FileNote] = field(default_factory=list)
    left_alone: list[FileNote] = field(default_factory=list)
    stale: list[FileNote] = field(default_factory=list)  # files of pruned backups


@dataclass(frozen=True)
class Repair:
    run_id: str
    action: str  # "complete" (delete what is left, record pruned_at) or "release" (plan it again)
    delete_keys: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run_id, "action": self.action, "delete_keys": list(self.delete_keys),
                "reason": self.reason}


def plan_repairs(files: Sequence[StoredFile], runs: Sequence[RunFiles]) -> list[Repair]:
    """Finish what a prune that stopped part-way started (rows marked pruning, not yet pruned)."""
    present = {f.key for f in files}
    repairs = []
    for run in runs:
        if run.pruning is None or run.pruned:
            continue
        there = tuple(k for k in run.keys if k in present)
        if run.keys and len(there) == len(run.keys):
            repairs.append(Repair(run.run_id, "release", (), f"prune {run.pruning[:8]} stopped before deleting "
                                  "anything: planned again"))
        else:
            repairs.append(Repair(run.run_id, "complete", there, f"prune {run.pruning[:8]} stopped part-way: "
                                  f"{len(there)} file(s) left to delete"))
    return repairs


def classify_files(files: Sequence[StoredFile], runs: Sequence[RunFiles],
                   manifest_run: Callable[[str], str | None]) -> FileReport:
    """Sort the keys no successful backup owns. `manifest_run(key)` reads a manifest's run id (None: unreadable);
    it is called only for manifests no catalog row names."""
    by_id = {r.run_id: r for r in runs}
    owned = {k for r in runs if r.status == "succeeded" and not r.pruned and r.pruning is None for k in r.keys}
    # Rows marked pruning: plan_repairs handles their files.
    owned |= {k for r in runs if r.pruning is not None and not r.pruned for k in r.keys}
    pruned = {k: r.run_id for r in runs if r.pruned for k in r.keys}
    active = {k: r.run_id for r in runs if r.status in RUNNING for k in r.keys}
    failed = {k: r for r in runs if r.status not in (*RUNNING, "succeeded") for k in r.keys}
    present = {f.key: f for f in files}
    report = FileReport()
    handled: set[str] = set()
    for file in files:
        if file.key in owned or file.key in handled:
            continue
        if file.key in pruned:
            report.stale.append(FileNote(file.key, file.size, "file of a pruned backup", pruned[file.key]))
        elif file.key.endswith(PARTIAL_SUFFIX):
            base = file.key.removesuffix(PARTIAL_SUFFIX)
            if base in active:
                report.left_alone.append(FileNote(file.key, file.size, "being written", active[base]))
            else:
                owner = failed.get(base)
                report.leftovers.append(FileNote(file.key, file.size, ".partial of a run that is not running",
                                                 owner.run_id if owner else None))
        elif file.key in active:
            report.left_alone.append(FileNote(file.key, file.size, "of a running run", active[file.key]))
        elif file.key in failed:
            owner = failed[file.key]
            report.leftovers.append(FileNote(file.key, file.size, f"file of an unsuccessful run ({owner.status})",
                                             owner.run_id))
        elif file.key.endswith(MANIFEST_SUFFIX):
            _classify_manifest(file, present, by_id, manifest_run, report, handled)
        elif file.key + MANIFEST_SUFFIX in present:
            continue  # judged with its manifest
        else:
            report.foreign.append(FileNote(file.key, file.size, "not ours: left alone"))
    for notes in (report.leftovers, report.foreign, report.left_alone, report.stale):
        notes.sort(key=lambda n: n.key)
    return report


def _classify_manifest(file: StoredFile, present: dict[str, StoredFile], by_id: dict[str, RunFiles],
                       manifest_run: Callable[[str], str | None], report: FileReport, handled: set[str]) -> None:
    artifact_file = present.get(file.key.removesuffix(MANIFEST_SUFFIX))
    pair = [file] + ([artifact_file] if artifact_file else [])
    handled.update(f.key for f in pair)
    run_id = manifest_run(file.key)
    run = by_id.get(run_id) if run_id else None
    if run_id is None:
        report.foreign.extend(FileNote(f.key, f.size, "not ours (unreadable manifest): left alone") for f in pair)
    elif run is not None and run.status in RUNNING:
        report.left_alone.extend(FileNote(f.key, f.size, "of a running run", run_id) for f in pair)
    elif run is not None and run.status != "succeeded":
        report.leftovers.extend(FileNote(f.key, f.size, f"file of an unsuccessful run ({run.status})", run_id)
                                for f in pair)
    elif artifact_file is None and (run is None or run.pruned):
        report.leftovers.append(FileNote(file.key, file.size, "manifest without its artifact", run_id))
    elif run is None:
        report.left_alone.extend(FileNote(f.key, f.size, "a backup the catalog does not know: "
                                          "`openwatch-backup catalog rebuild` adds it", run_id) for f in pair)
    else:
        report.left_alone.extend(FileNote(f.key, f.size, "names a backup stored under another name", run_id)
                                 for f in pair)
