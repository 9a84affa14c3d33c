"""The master key of the newest config bundle, for the secrets proof (operations/secrets_proof.py).

Which bundle: the newest present (succeeded, not pruned) config bundle whose latest verify did not fail. It is
verified here before its key is used, with the checks `verify` of a bundle makes: the passphrase's key id, the
ciphertext's size, sha256 and HMAC (operations/config_verify.bundle_integrity), then a decrypting read of every
tar member to the tar's end. So the key comes from a verified bundle even when no verify run has looked at the
newest one yet; preferring an older bundle that a verify run once passed would use a master key the operator
may since have rotated (OpenWatch's reencrypt_credentials.py), and fail a database that fits the newer one.
A bundle whose latest verify failed is passed over for the next older one.

The bundle is read from the local file while it is there, else its S3 copy (operations/read_source.py); the
plaintext only streams through memory. The key found is added to ctx.redact before anything else happens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import artifact_key, manifest_key
from openwatch_backup.core.verify_result import VerifyResult
from openwatch_backup.errors import BackupError, ManifestError
from openwatch_backup.operations.config_verify import bundle_integrity, decrypted
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.presence import is_present, present_artifact
from openwatch_backup.operations.read_source import choose_copy
from openwatch_backup.secrets.bundle_read import master_key_in_bundle
from openwatch_backup.storage.factory import local_storage

_CANDIDATES = 50  # config bundles looked at, newest first (retention keeps 10 by default)


class BundleUnusable(BackupError):
    """A config bundle exists but its master key cannot be read: no passphrase, a wrong one, a damaged file."""

    code = "config_bundle_unusable"


@dataclass(frozen=True)
class BundleKey:
    run: BackupRun
    master_key: str | None  # None: the bundle holds no master key (no openwatch.env, no .env with one)
    member: str | None  # the member it came from
    verified_before: bool  # a verify run had passed this bundle (it is checked here in any case)

    def __repr__(self) -> str:  # never the key
        return f"BundleKey(run={self.run.id}, member={self.member!r}, verified_before={self.verified_before})"


def _latest_verdict(ctx: OperationContext, run: BackupRun) -> bool | None:
    """True/False: the latest verify that judged the bundle passed/failed it; None: none did (a verify that
    could not run, e.g. cancelled, says nothing about the bundle)."""
    for verify in ctx.recorder.list(limit=10, kind="verify", parent_id=run.id, finished_only=True):
        if verify.status == RunStatus.SUCCEEDED.value:
            return True
        if verify.status == RunStatus.FAILED.value and (verify.error_code or "").startswith("verify_"):
            return False
    return None


def newest_bundle(ctx: OperationContext) -> tuple[BackupRun, bool] | None:
    """The bundle to read the key from and whether a verify run had passed it; None when there is none."""
    for run in ctx.recorder.list(limit=_CANDIDATES, kind=BackupKind.CONFIG.value, status=RunStatus.SUCCEEDED.value):
        if not is_present(run):
            continue
        verdict = _latest_verdict(ctx, run)
        if verdict is not False:
            return run, bool(verdict)
    return None


def master_key_from_newest_bundle(ctx: OperationContext) -> BundleKey | None:
    """The master key in the newest usable config bundle; None when no config bundle exists.
    BundleUnusable (one line: which bundle, why, the fix) when one exists but cannot be read, which includes
    "no passphrase is set": the proof is then skipped with that line, not failed."""
    found = newest_bundle(ctx)
    if found is None:
        return None
    run, verified_before = found
    member, key = _read_key(ctx, run)
    if key is not None:
        ctx.redact.add(key)
    return BundleKey(run=run, master_key=key, member=member, verified_before=verified_before)


def master_key_of(ctx: OperationContext, run: BackupRun) -> BundleKey:
    """The master key in this bundle (recover proves the bundle it restored, not the newest one)."""
    member, key = _read_key(ctx, run)
    if key is not None:
        ctx.redact.add(key)
    return BundleKey(run=run, master_key=key, member=member, verified_before=_latest_verdict(ctx, run) is True)


def _read_key(ctx: OperationContext, run: BackupRun) -> tuple[str | None, str | None]:
    if ctx.offsite is not None and ctx.storage is ctx.offsite:
        # The drill or verify reads its dump from S3; the bundle is still read from its local file when it is there.
        ctx = dataclasses.replace(ctx, storage=local_storage(ctx.settings))
    reading = choose_copy(ctx, run)
    if reading.missing is not None:
        raise BundleUnusable(f"config bundle {run.id}: {reading.missing}")
    artifact = present_artifact(run)
    try:
        manifest = Manifest.from_json(reading.ctx.storage.read_bytes(manifest_key(artifact)),
                                      source=manifest_key(artifact))
    except ManifestError as exc:
        raise BundleUnusable(f"config bundle {run.id}: {exc.message}") from None
    if manifest.sha256 != run.sha256 or manifest.run_id != str(run.id):
        raise BundleUnusable(f"config bundle {run.id}: its manifest describes another file than the catalog "
                             f"recorded; run `openwatch-backup verify {run.id}`")
    checked = bundle_integrity(reading.ctx, manifest, artifact_key(artifact), {})
    if isinstance(checked, VerifyResult):
        raise BundleUnusable(f"config bundle {run.id}: {checked.message}")
    try:
        with reading.ctx.storage.open_reader(artifact_key(artifact)) as raw:
            return master_key_in_bundle(decrypted(raw, checked, manifest.artifact))
    except BackupError as exc:  # unreadable, or changed while it was read
        raise BundleUnusable(f"config bundle {run.id}: {exc.message}") from None
