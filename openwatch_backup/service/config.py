"""Config bundles as the API and the page show them: the versions (newest first) with their verify state, copies
and certificates; whether a passphrase is set (never its value); and the stored bundle to download as it is.

Functions over a BackupService rather than another service layer: they only read the catalog and storage, and the
API is their one caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.core.naming import artifact_key, is_safe_name
from openwatch_backup.errors import ConfigError, RunNotFound
from openwatch_backup.operations.presence import is_present
from openwatch_backup.secrets import passphrase as passphrases

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupCopy, BackupRun
    from openwatch_backup.service import BackupService
    from openwatch_backup.storage.base import Storage

CONFIG = BackupKind.CONFIG.value
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PassphraseState:
    """Whether config bundles can be taken: which setting gives the passphrase, or why none is usable."""

    set: bool
    source: str | None = None  # the setting's name (OPENWATCH_BACKUP_PASSPHRASE_FILE ...), never the value
    problem: str | None = None  # one line naming the setting and the fix (no passphrase, unreadable file ...)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyState:
    """The newest verify run of a bundle: passed, failed (with its reason), queued or running."""

    state: str
    run_id: str
    at: datetime | None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class ConfigVersion:
    run: BackupRun
    present: bool
    verify: VerifyState | None
    copies: list[BackupCopy] = field(default_factory=list)

    def certificates(self, now: datetime) -> list[dict[str, Any]]:
        """The manifest's certificates with the whole days left until each expires (negative: expired)."""
        out = []
        for cert in self.run.details.get("certificates") or []:
            days = None
            with contextlib.suppress(KeyError, TypeError, ValueError):  # a row written by hand: no count
                days = (datetime.fromisoformat(str(cert["not_after"])) - now).days
            out.append({"subject": cert.get("subject"), "member": cert.get("member"),
                        "not_after": cert.get("not_after"), "days_left": days})
        return out


def passphrase_state(service: BackupService) -> PassphraseState:
    """Reads the passphrase the way a config backup would, to say whether one would run; keeps only the name of
    the setting it came from."""
    try:
        found = passphrases.required(service.settings)  # its ConfigError is the line a config backup fails with
    except ConfigError as exc:
        return PassphraseState(set=False, source=_named_setting(service), problem=exc.message)
    return PassphraseState(set=True, source=found.source, warnings=found.warnings)

def require_passphrase(service: BackupService) -> None:
    """The one-line ConfigError a config backup would fail with, raised before one is queued."""
    state = passphrase_state(service)
    if not state.set:
        raise ConfigError(state.problem or f"no passphrase for config bundles is set: set {passphrases.FILE_SETTING}")


def _named_setting(service: BackupService) -> str | None:
    settings = service.settings
    if settings.passphrase_file is not None:
        return passphrases.FILE_SETTING
    return passphrases.VALUE_SETTING if settings.passphrase is not None else None


def _verify_state(run: BackupRun | None) -> VerifyState | None:
    if run is None:
        return None
    if run.status == RunStatus.SUCCEEDED.value:
        return VerifyState("passed", str(run.id), run.finished_at)
    if run.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value):
        return VerifyState(run.status, str(run.id), run.created_at)
    result = run.details.get("verify") or {}
    reason = result.get("reason") or run.error_code
    return VerifyState("failed", str(run.id), run.finished_at, reason=str(reason) if reason else None,
                       message=run.error)


def config_versions(service: BackupService, limit: int = 50) -> list[ConfigVersion]:
    """The config bundles taken (succeeded config runs), newest first, each with its newest verify and copies."""
    runs = service.recorder.list(limit=limit, kind=CONFIG, status=RunStatus.SUCCEEDED.value)
    copies = service.copies.of_runs(run.id for run in runs)
    versions = []
    for run in runs:
        verifies = service.recorder.list(limit=1, kind="verify", parent_id=run.id)
        versions.append(ConfigVersion(run=run, present=is_present(run), verify=_verify_state(verifies[0] if verifies
                                                                                               else None),
                                      copies=copies.get(run.id, [])))
    return versions


def active_config_backup(service: BackupService) -> BackupRun | None:
    """The config backup queued or running, if any (the one "Back up config now" would hand back)."""
    for status in (RunStatus.RUNNING.value, RunStatus.QUEUED.value):
        runs = service.recorder.list(limit=1, kind=CONFIG, status=status)
        if runs:
            return runs[0]
    return None


@dataclass(frozen=True)
class BundleDownload:
    """A stored bundle to stream as it is (still encrypted), from the copy a restore would read."""

    run: BackupRun
    name: str
    size: int
    copy: str  # local or s3
    storage: Storage
    key: str

    def chunks(self) -> Iterator[bytes]:
        with self.storage.open_reader(self.key) as reader:
            while chunk := reader.read(_CHUNK):
                yield chunk


def bundle_download(service: BackupService, ref: str) -> BundleDownload:
    """The bundle of a config run that is still there (local file, else the S3 copy); RunNotFound otherwise."""
    from openwatch_backup.operations.read_source import choose_copy

    run = service.get_run(ref)
    name = str(run.details.get("artifact", ""))
    # The recorded name must be a plain file name: a catalog row is not trusted to build a path.
    if run.kind != CONFIG or not is_present(run) or not is_safe_name(name):
        raise RunNotFound(f"run {run.id} is not a config bundle that is still stored; GET config lists them")
    reading = choose_copy(service.context, run)
    if reading.missing is not None:
        raise RunNotFound(f"the bundle of run {run.id} is in no copy: {reading.missing}")
    key = artifact_key(name)
    storage = reading.ctx.storage
    return BundleDownload(run=run, name=name, size=storage.size(key), copy=reading.copy.value, storage=storage,
                          key=key)


def record_download(service: BackupService, bundle: BundleDownload, by: str) -> None:
    """Who took the bundle last, on its run (the audit log has every download): a merge, not a read-modify-write."""
    service.recorder.add_details(bundle.run.id, {"last_download": {"by": by, "at": datetime.now(UTC).isoformat(),
                                                                   "copy": bundle.copy}})
