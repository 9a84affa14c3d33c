"""Verify a config bundle (issue 11): the passphrase, then the stored bytes, then every tar member.

In the issue's order, each failure with its own reason:
1. a passphrase is set and fits the bundle (its key id): else `passphrase`;
2. size, sha256 and HMAC of the ciphertext as stored (secrets/integrity.py): `unreadable` when cut short,
   `checksum` when altered;
3. it decrypts as a stream and every tar member reads to the end (list_members over decrypt_chunks): else
   `unreadable`. Nothing decrypted is written anywhere: the plaintext only flows through memory.

There is no database to restore a bundle into, so `verify --deep` of a config run does these same checks.
`bundle_integrity` (1 and 2) is also what a config restore runs before it writes a byte.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult, failed
from openwatch_backup.errors import ArtifactUnreadable, ConfigError, ManifestError, StorageIntegrityError
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.secrets import integrity
from openwatch_backup.secrets import passphrase as passphrases
from openwatch_backup.secrets.bundle_tar import list_members
from openwatch_backup.secrets.integrity import CiphertextIntegrity, IntegrityReason
from openwatch_backup.secrets.openssl_enc import CHUNK_SIZE, Readable, decrypt_chunks

_REASONS = {IntegrityReason.PASSPHRASE: VerifyReason.PASSPHRASE, IntegrityReason.CHECKSUM: VerifyReason.CHECKSUM,
            IntegrityReason.UNREADABLE: VerifyReason.UNREADABLE}


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle whose stored bytes passed: the passphrase that fits it and what its manifest recorded."""

    passphrase: bytes
    expected: CiphertextIntegrity


def _passphrase(ctx: OperationContext) -> bytes | str:
    """The configured passphrase's bytes, or the one line saying why there is none (never the value)."""
    try:
        found = passphrases.configured(ctx.settings)
    except ConfigError as exc:  # a file that is missing, empty, or writable by others
        return exc.message
    if found is None:
        return (f"no passphrase for config bundles is set: set {passphrases.FILE_SETTING} to a file (mode 600) "
                "holding the passphrase this bundle was made with")
    ctx.redact.add(found.value.decode("utf-8", "surrogateescape"))
    return found.value


def bundle_integrity(ctx: OperationContext, manifest: Manifest, key: str,
                     checks: dict[str, Any]) -> CheckedBundle | VerifyResult:
    """Checks 1 and 2 (passphrase; key id, size, sha256, HMAC of ctx.storage's copy). Decrypts nothing.
    Returns the checked bundle, or the failed result; `checks` gets key_id and key_id_matches."""
    if manifest.config is None:
        return failed(False, VerifyReason.MANIFEST, f"the manifest of {manifest.artifact} has no config section: "
                      "it does not describe a config bundle; rebuild the catalog from the manifests", checks)
    try:
        expected = CiphertextIntegrity.from_manifest(manifest.config.encryption)
    except ManifestError as exc:
        return failed(False, VerifyReason.MANIFEST, f"{manifest.artifact}: {exc.message}", checks)
    if expected.size != manifest.size_bytes or expected.sha256 != manifest.sha256:
        return failed(False, VerifyReason.MANIFEST, f"the manifest of {manifest.artifact} disagrees with itself "
                      "(the encryption section's size or sha256 differs from the file's): rebuild it or use "
                      "another copy", checks)
    checks["key_id"] = expected.key_id
    checks["size_bytes"] = ctx.storage.size(key)
    value = _passphrase(ctx)
    if isinstance(value, str):
        return failed(False, VerifyReason.PASSPHRASE, value, checks)
    with ctx.storage.open_reader(key) as raw:
        outcome = integrity.check(raw, expected, value, name=manifest.artifact)
    checks["key_id_matches"] = outcome.failed_check != "key_id"
    if outcome.reason is not None:
        return failed(False, _REASONS[outcome.reason], outcome.message, checks)
    return CheckedBundle(passphrase=value, expected=expected)


class SameBytes:
    """A reader that hashes what it hands out and, at its end, insists on the sha256 checked before: the file
    cannot change between the integrity check and the decrypting read without the decrypting read failing."""

    def __init__(self, raw: Readable, expected_sha256: str, name: str) -> None:
        self._raw, self._expected, self._name = raw, expected_sha256, name
        self._sha256 = hashlib.sha256()

    def read(self, size: int = CHUNK_SIZE, /) -> bytes:
        chunk = self._raw.read(size)
        if chunk:
            self._sha256.update(chunk)
        elif not hmac.compare_digest(self._sha256.hexdigest(), self._expected):
            raise StorageIntegrityError(f"{self._name} changed while it was read (its sha256 differs from the one "
                                        "just checked): run the command again")
        return chunk


def decrypted(raw: Readable, checked: CheckedBundle, name: str) -> Any:
    """The plaintext tar.gz of a checked bundle, as chunks pulled from `raw` (nothing written anywhere)."""
    return decrypt_chunks(SameBytes(raw, checked.expected.sha256, name), checked.passphrase, name)


def verify_bundle(ctx: OperationContext, manifest: Manifest, key: str, checks: dict[str, Any]) -> VerifyResult:
    """All three checks on ctx.storage's copy of the bundle; checks records key id, members and read seconds."""
    started = time.monotonic()
    checked = bundle_integrity(ctx, manifest, key, checks)
    if isinstance(checked, VerifyResult):
        return checked
    checks["sha256"] = checked.expected.sha256
    try:
        with ctx.storage.open_reader(key) as raw:
            members = list_members(decrypted(raw, checked, manifest.artifact))
    except StorageIntegrityError as exc:
        return failed(False, VerifyReason.CHECKSUM, exc.message, checks)
    except ArtifactUnreadable as exc:  # bad padding, a damaged gzip, a tar cut at a member
        named = exc.message if manifest.artifact in exc.message else f"{manifest.artifact}: {exc.message}"
        return failed(False, VerifyReason.UNREADABLE, named, checks)
    checks["read_seconds"] = round(time.monotonic() - started, 3)
    checks["members"] = len(members)
    assert manifest.config is not None  # bundle_integrity refused a manifest without one
    if len(members) != manifest.config.members:
        return failed(False, VerifyReason.MANIFEST, f"{manifest.artifact} holds {len(members)} members, its "
                      f"manifest says {manifest.config.members}: rebuild the manifest or use another copy", checks)
    return VerifyResult(deep=False, checks=checks)
