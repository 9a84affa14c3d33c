"""`openwatch-backup adopt DIR`: take over the backups the guide's own script wrote (issue 13, item 4).

Every file under DIR is classified by name (core/adopt_names.py), then read whole (operations/adopt_inspect.py):
one that is not one of the guide's backups, or does not read, is skipped with its one-line reason. Each other file
becomes an ordinary backup run of its kind (full, config, redis, volume) whose created_at is when the guide took
it, so list, verify, restore and retention treat it as one of ours; its copy is verified at once (a recorded
quick verify), so retention counts it among the verified backups. The source files are never moved or changed.

Idempotent: a file whose sha256 a succeeded adopted run records (in the catalog's details, pruned or not, or in
the manifest of a succeeded run or of one the catalog does not know: `catalog rebuild` leaves the details out) is
"already adopted" and adds nothing. Identical bytes are one backup (pg_dump stamps each archive with its time).

Kill safety (decision 11): the adopt run (kind `adopt`) records which file it is adopting, and as which run,
before that run writes a byte; each adopted run records its `.partial` file before writing it, like every backup.
A kill leaves runs the sweeper marks abandoned (a CLI run whose process is gone), whose `.partial` it removes, and
whose committed file (killed after the commit, before the catalog row) `prune --apply` deletes as a failed run's
leftover. The next adopt takes the file again: only a succeeded run counts as adopted.
"""

from __future__ import annotations

import typing
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, select

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import catalog_errors
from openwatch_backup.core.adopt_names import LOGS, GuideFile, NotAdoptable, classify, taken_at
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import MANIFEST_SUFFIX, PARTIAL_SUFFIX
from openwatch_backup.errors import BackupError, ConfigError, ManifestError
from openwatch_backup.operations.adopt_copy import Candidate, Facts, copy_candidate
from openwatch_backup.operations.adopt_inspect import (
    HashedFile,
    describe_failure,
    inspect_config,
    inspect_dump,
    inspect_redis,
    inspect_volume,
)
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.families import list_families
from openwatch_backup.operations.heartbeat import heartbeat
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.secrets import passphrase as passphrases

_TABLE = typing.cast(Table, BackupRun.__table__)
ADOPTED = "adopted"
ALREADY = "already adopted"
SKIPPED = "skipped"
WOULD = "would adopt"


@dataclass(frozen=True)
class Outcome:
    source: str
    status: str  # adopted, already adopted, skipped, would adopt (a dry run)
    kind: str | None = None
    run_id: str | None = None  # the adopted run (or the one that adopted it before)
    reason: str | None = None  # why it was skipped
    taken_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class AdoptReport:
    folder: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "files": [o.as_dict() for o in self.outcomes],
                **{key: self.count(status) for key, status in (("adopted", ADOPTED), ("already_adopted", ALREADY),
                                                               ("skipped", SKIPPED), ("would_adopt", WOULD))}}


def check_folder(ctx: OperationContext, folder: Path) -> Path:
    """The folder to read, refused when it is not one or lies inside our own store (our files are no guide's)."""
    resolved = folder.expanduser().resolve()
    if not resolved.is_dir():
        raise ConfigError(f"{folder} is not a folder: give the folder the guide's script writes to "
                          "(e.g. /opt/openwatch/backups)")
    store = Path(ctx.settings.dir).expanduser().resolve()
    if resolved != store and resolved.is_relative_to(store):
        raise ConfigError(f"{folder} is inside OPENWATCH_BACKUP_DIR ({store}): those are openwatch-backup's own "
                          "files; give the folder the guide's script writes to")
    return resolved


def guide_files(folder: Path) -> list[Path]:
    """Every file under folder but openwatch-backup's own (manifests, `.partial` files, an artifact beside its
    manifest: OPENWATCH_BACKUP_DIR may be the guide's folder), hidden files and the script's logs."""
    found = []
    for path in sorted(folder.rglob("*")):
        name = path.name
        if not path.is_file() or name.startswith(".") or name in LOGS:
            continue
        if name.endswith((MANIFEST_SUFFIX, PARTIAL_SUFFIX)) or path.with_name(name + MANIFEST_SUFFIX).exists():
            continue
        found.append(path)
    return found


def adopted_before(ctx: OperationContext, engine: Engine) -> dict[str, str]:
    """sha256 of each file adopted before -> the run that adopted it: succeeded adopted runs of the catalog
    (pruned ones too: retention took them, adopting them again would undo that), and the manifests in storage of
    succeeded runs or of runs the catalog does not know (a catalog rebuild recreates a run without its details'
    `adopted`; the manifest keeps it)."""
    digest = _TABLE.c.details[ADOPTED]["sha256"].astext
    with catalog_errors(ctx.target.describe()), engine.connect() as conn:
        statuses = {str(i): str(s) for i, s in conn.execute(select(_TABLE.c.id, _TABLE.c.status))}
        rows = conn.execute(select(_TABLE.c.id, digest).where(_TABLE.c.details.has_key(ADOPTED))).all()
    succeeded = RunStatus.SUCCEEDED.value
    found = {str(d): str(i) for i, d in rows if d and statuses.get(str(i)) == succeeded}
    for obj in list_families(ctx.storage):
        if not obj.key.endswith(MANIFEST_SUFFIX):
            continue
        with suppress(ManifestError, BackupError):
            manifest = Manifest.from_json(ctx.storage.read_bytes(obj.key), source=obj.key)
            if manifest.adopted is not None and statuses.get(manifest.run_id, succeeded) == succeeded:
                found.setdefault(manifest.adopted.sha256, manifest.run_id)
    return found


class _Passphrase:
    """The configured passphrase, read once when the first bundle needs it (or the line saying why there is none)."""

    def __init__(self, ctx: OperationContext) -> None:
        self._ctx = ctx
        self._read = False
        self.value: bytes | None = None
        self.problem: str | None = None

    def get(self) -> bytes | None:
        if not self._read:
            self._read = True
            try:
                found = passphrases.configured(self._ctx.settings)
            except ConfigError as exc:
                self.problem = exc.message
                return None
            if found is None:
                self.problem = (f"no passphrase for config bundles is set: set {passphrases.FILE_SETTING} to a "
                                "file (mode 600) holding the passphrase the guide's openssl used")
            else:
                self.value = found.value
                self._ctx.redact.add(found.value.decode("utf-8", "surrogateescape"))
        return self.value


def inspect(ctx: OperationContext, path: Path, found: GuideFile, secret: _Passphrase) -> Candidate:
    """The file read whole; NotAdoptable (with its reason) when it is not a whole backup of its family."""
    if path.stat().st_size == 0:
        raise NotAdoptable("it is empty")
    hashed = HashedFile(path)
    try:
        facts: Facts
        if found.family == "postgres":
            facts = inspect_dump(ctx, path, hashed)
        elif found.family == "config":
            facts = inspect_config(hashed, path.name, secret.get(), secret.problem)
        elif found.family == "redis":
            facts = inspect_redis(hashed)
        else:
            facts = inspect_volume(hashed)
        sha256, size = hashed.finish()
    finally:
        hashed.close()
    return Candidate(path=path, found=found, taken_at=taken_at(found, path.stat().st_mtime), sha256=sha256,
                     size=size, facts=facts)


def _adopt_one(ctx: OperationContext, engine: Engine, adopt_run: uuid.UUID, candidate: Candidate,
               passphrase: bytes | None) -> str:
    """The candidate as a backup run of its kind, created at its taken_at, copied, recorded, verified."""
    run_id = ctx.recorder.create(candidate.kind.value, "cli", f"adopt {str(adopt_run)[:8]}", parent_id=adopt_run,
                                 details={"request": candidate.request(), ADOPTED: candidate.adopted().model_dump()})
    with catalog_errors(ctx.target.describe()), engine.begin() as conn:
        # The run is when the guide took the backup: list orders it and retention ages it by that.
        conn.execute(_TABLE.update().where(_TABLE.c.id == run_id).values(created_at=candidate.taken_at))
    ctx.recorder.progress(adopt_run, "adopting", details={"current": {"source": str(candidate.path),
                                                                      "run": str(run_id)}})
    kill_point("adopt_run_created")
    if not ctx.recorder.claim(run_id):
        raise BackupError(f"run {run_id} was taken by another process")
    with heartbeat(ctx.recorder, run_id, ctx.settings.heartbeat_seconds):
        copy_candidate(ctx, run_id, candidate, passphrase)
    _verify(ctx, run_id)
    return str(run_id)


def _verify(ctx: OperationContext, backup_id: uuid.UUID) -> None:
    """A recorded quick verify of the stored copy, as `openwatch-backup verify RUN` runs it."""
    from openwatch_backup.operations.verify_run import run_verify

    verify_id = ctx.recorder.create("verify", "cli", "adopt", parent_id=backup_id, details={"request": {"deep": False}})
    with heartbeat(ctx.recorder, verify_id, ctx.settings.heartbeat_seconds):
        run_verify(ctx, verify_id, ctx.recorder.get(str(backup_id)), deep=False)


def adopt_folder(ctx: OperationContext, engine: Engine, folder: Path, adopt_run: uuid.UUID | None) -> AdoptReport:
    """Adopt every guide backup under folder as runs of adopt_run (claimed by the caller); adopt_run None: a dry
    run, which reads and checks every file and records nothing."""
    report = AdoptReport(folder=str(folder))
    seen = adopted_before(ctx, engine)
    secret = _Passphrase(ctx)
    for path in guide_files(folder):
        source = str(path)
        try:
            found = classify(path.name)
            candidate = inspect(ctx, path, found, secret)
        except NotAdoptable as exc:
            report.outcomes.append(Outcome(source, SKIPPED, reason=str(exc)))
            continue
        except (BackupError, OSError) as exc:  # unreadable file, no pg_restore: this file only
            report.outcomes.append(Outcome(source, SKIPPED, reason=describe_failure(exc)))
            continue
        when = candidate.taken_at.isoformat()
        if candidate.sha256 in seen:
            report.outcomes.append(Outcome(source, ALREADY, candidate.kind.value, seen[candidate.sha256],
                                           taken_at=when))
            continue
        if adopt_run is None:
            report.outcomes.append(Outcome(source, WOULD, candidate.kind.value, taken_at=when))
            seen[candidate.sha256] = "(this dry run)"
            continue
        try:
            run_id = _adopt_one(ctx, engine, adopt_run, candidate, secret.value)
        except BackupError as exc:
            report.outcomes.append(Outcome(source, SKIPPED, candidate.kind.value, reason=exc.message))
            continue
        seen[candidate.sha256] = run_id
        report.outcomes.append(Outcome(source, ADOPTED, candidate.kind.value, run_id, taken_at=when))
        ctx.recorder.add_details(adopt_run, {"adopted_runs": [o.run_id for o in report.outcomes
                                                              if o.status == ADOPTED]})
    return report
