"""Integrity of an encrypted config bundle: a key id, the ciphertext's sha256, and an HMAC keyed from the passphrase.

AES-256-CBC (openssl_enc.py) has no integrity of its own, so the manifest records, next to the bundle:

- `key_id`: 16 hex characters = PBKDF2-HMAC-SHA256(passphrase, KEY_ID_LABEL, 600,000 iterations, 8 bytes).
  The salt is a fixed label, so every bundle made with one passphrase has the same id (the status can say
  "the passphrase changed"), and a wrong passphrase is named (`passphrase`) before a byte is read or decrypted.
  600,000 iterations (OWASP's figure for PBKDF2-SHA256) make the id a slower guessing oracle than the bundle
  itself, whose openssl key takes 10,000. It is never the passphrase, nor a fast hash of it.
- `size` and `sha256` of the ciphertext as stored.
- `hmac_sha256`: HMAC-SHA256 over the ciphertext as stored, under PBKDF2-HMAC-SHA256(passphrase,
  HMAC_LABEL + hmac_salt, 600,000 iterations, 32 bytes), with `hmac_salt` 16 random bytes of this bundle.
  sha256 alone catches damage; the HMAC also catches a bundle and manifest replaced together by someone
  without the passphrase.

`check` runs them in the order the issue fixes: key id, then size, sha256, HMAC, so the reason says what to
fix: `passphrase` (use the right one), `unreadable` (cut short), `checksum` (damaged or altered bytes).
Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any, BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from openwatch_backup.errors import ManifestError
from openwatch_backup.secrets.openssl_enc import CHUNK_SIZE, Encryptor, Readable

KEY_ID_LABEL = b"openwatch-backup config bundle key id v1"
HMAC_LABEL = b"openwatch-backup config bundle hmac key v1\x00"
KDF_ITERATIONS = 600_000
KEY_ID_SIZE = 8
HMAC_KEY_SIZE = 32
HMAC_SALT_SIZE = 16

_HEX = re.compile(r"[0-9a-f]*")


def _pbkdf2(passphrase: bytes, salt: bytes, length: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=length, salt=salt, iterations=KDF_ITERATIONS)
    return kdf.derive(passphrase)


def key_id(passphrase: bytes) -> str:
    """The passphrase's public id (16 hex characters); equal ids mean the same passphrase."""
    return _pbkdf2(passphrase, KEY_ID_LABEL, KEY_ID_SIZE).hex()


def hmac_key(passphrase: bytes, salt: bytes) -> bytes:
    """The HMAC key of one bundle: its own salt, and a label so it never equals the key id or the openssl key."""
    if len(salt) != HMAC_SALT_SIZE:
        raise ValueError(f"the HMAC salt is {HMAC_SALT_SIZE} bytes, not {len(salt)}")
    return _pbkdf2(passphrase, HMAC_LABEL + salt, HMAC_KEY_SIZE)


class CiphertextMac:
    """Streaming HMAC-SHA256 over ciphertext bytes, in the order they are stored."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def update(self, data: bytes) -> None:
        self._mac.update(data)

    def hexdigest(self) -> str:
        return self._mac.hexdigest()


@dataclass(frozen=True)
class CiphertextIntegrity:
    """What the manifest records about one encrypted bundle. Nothing here reveals the passphrase."""

    size: int
    sha256: str
    hmac_sha256: str
    hmac_salt: str  # hex
    key_id: str

    def as_manifest(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256, "hmac_sha256": self.hmac_sha256,
                "hmac_salt": self.hmac_salt, "key_id": self.key_id}

    @classmethod
    def from_manifest(cls, data: Any) -> CiphertextIntegrity:
        """Validates the manifest's fields; a malformed one is a ManifestError, never a KeyError."""
        if not isinstance(data, dict):
            raise ManifestError("the manifest's encryption section is not an object: the manifest is damaged; "
                                "rebuild it or use another copy")
        lengths = {"sha256": 64, "hmac_sha256": 64, "hmac_salt": HMAC_SALT_SIZE * 2, "key_id": KEY_ID_SIZE * 2}
        for field, length in lengths.items():
            value = data.get(field)
            if not (isinstance(value, str) and len(value) == length and _HEX.fullmatch(value)):
                raise ManifestError(f"the manifest's encryption field {field!r} is missing or not {length} lowercase "
                                    "hex characters: the manifest is damaged; rebuild it or use another copy")
        size = data.get("size")
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
            raise ManifestError("the manifest's encryption field 'size' is missing or not a byte count: the "
                                "manifest is damaged; rebuild it or use another copy")
        return cls(size=size, sha256=data["sha256"], hmac_sha256=data["hmac_sha256"],
                   hmac_salt=data["hmac_salt"], key_id=data["key_id"])


class Sealer:
    """Measures ciphertext as it is written: size, sha256 and HMAC in one pass."""

    def __init__(self, passphrase: bytes, hmac_salt: bytes | None = None) -> None:
        self._salt = os.urandom(HMAC_SALT_SIZE) if hmac_salt is None else hmac_salt
        self._key_id = key_id(passphrase)
        self._mac = CiphertextMac(hmac_key(passphrase, self._salt))
        self._sha256 = hashlib.sha256()
        self._size = 0

    def update(self, data: bytes) -> None:
        self._size += len(data)
        self._sha256.update(data)
        self._mac.update(data)

    def finish(self) -> CiphertextIntegrity:
        return CiphertextIntegrity(size=self._size, sha256=self._sha256.hexdigest(),
                                   hmac_sha256=self._mac.hexdigest(), hmac_salt=self._salt.hex(),
                                   key_id=self._key_id)


def encrypt_sealed(src: Readable, dst: BinaryIO, passphrase: bytes,
                   chunk_size: int = CHUNK_SIZE) -> CiphertextIntegrity:
    """Encrypts src to dst (openssl format) and returns what the manifest records about the ciphertext."""
    writer = SealingWriter(dst, passphrase)
    while chunk := src.read(chunk_size):
        writer.write(chunk)
    return writer.finish()


class SealingWriter:
    """A write() sink that encrypts into `out` (openssl format) and measures the ciphertext on the way.

    For producers that push (tarfile writing a bundle): `write_bundle(paths, sink=writer.write)`, then
    `writer.finish()` writes the last block and returns what the manifest records. Nothing is buffered beyond
    the cipher's one block.
    """

    def __init__(self, out: Callable[[bytes], object] | IO[bytes], passphrase: bytes) -> None:
        self._out: Callable[[bytes], object] = out if callable(out) else out.write
        self._encryptor = Encryptor(passphrase)
        self._sealer = Sealer(passphrase)
        self._integrity: CiphertextIntegrity | None = None

    def _emit(self, data: bytes) -> None:
        if data:
            self._sealer.update(data)
            self._out(data)

    def write(self, data: bytes) -> int:
        if self._integrity is not None:
            raise ValueError("the sealing writer is finished")
        self._emit(self._encryptor.update(data if isinstance(data, bytes) else bytes(data)))
        return len(data)

    def finish(self) -> CiphertextIntegrity:
        if self._integrity is None:
            self._emit(self._encryptor.finalize())
            self._integrity = self._sealer.finish()
        return self._integrity


class IntegrityReason(StrEnum):
    """The verify reasons issue 11 names for a bundle's stored bytes."""

    # The key id differs from the bundle's: a wrong (or changed) passphrase. A reason's name, not a password.
    PASSPHRASE = "passphrase"  # noqa: S105
    UNREADABLE = "unreadable"  # shorter than recorded: cut short (also: does not decrypt, or a tar member fails)
    CHECKSUM = "checksum"  # longer than recorded, or the same size with other bytes (sha256 or HMAC differs)


@dataclass(frozen=True)
class IntegrityResult:
    reason: IntegrityReason | None
    failed_check: str | None  # "key_id", "size", "sha256" or "hmac": which comparison failed
    message: str

    @property
    def passed(self) -> bool:
        return self.reason is None


PASSED = IntegrityResult(None, None, "the key id, size, sha256 and HMAC match")


def check_passphrase(expected: CiphertextIntegrity, passphrase: bytes, name: str = "the bundle") -> IntegrityResult:
    """Key id only: tells a wrong passphrase apart from damage without reading the bundle."""
    if hmac.compare_digest(key_id(passphrase), expected.key_id):
        return PASSED
    return IntegrityResult(IntegrityReason.PASSPHRASE, "key_id",
                           f"the passphrase does not fit {name} (its key id differs): set "
                           "OPENWATCH_BACKUP_PASSPHRASE_FILE to the passphrase this bundle was made with")


def check(stream: Readable, expected: CiphertextIntegrity, passphrase: bytes, name: str = "the bundle",
          chunk_size: int = CHUNK_SIZE) -> IntegrityResult:
    """Key id, then size, sha256 and HMAC of the stored ciphertext, read once in chunks. Decrypts nothing."""
    fits = check_passphrase(expected, passphrase, name)
    if not fits.passed:
        return fits
    sealer = Sealer(passphrase, bytes.fromhex(expected.hmac_salt))
    while chunk := stream.read(chunk_size):
        sealer.update(chunk)
    actual = sealer.finish()
    if actual.size < expected.size:
        return IntegrityResult(IntegrityReason.UNREADABLE, "size",
                               f"{name} is {actual.size} bytes, {expected.size} were written: it was cut short; "
                               "use another copy")
    if actual.size > expected.size:
        return IntegrityResult(IntegrityReason.CHECKSUM, "size",
                               f"{name} is {actual.size} bytes, {expected.size} were written: bytes were added; "
                               "use another copy")
    if not hmac.compare_digest(actual.sha256, expected.sha256):
        return IntegrityResult(IntegrityReason.CHECKSUM, "sha256",
                               f"{name}'s sha256 differs from its manifest: the file is damaged; use another copy")
    if not hmac.compare_digest(actual.hmac_sha256, expected.hmac_sha256):
        return IntegrityResult(IntegrityReason.CHECKSUM, "hmac",
                               f"{name}'s HMAC differs from its manifest although its sha256 matches: the bundle "
                               "or its manifest was replaced without the passphrase; use another copy")
    return PASSED
