"""OpenWatch's own credential encryption, byte for byte, so a restored database can be checked against a key.

OpenWatch (backend/app/encryption/service.py, EncryptionService with its default EncryptionConfig) stores every
credential and MFA secret as

    salt (16 random bytes) | nonce (12 random bytes) | AES-256-GCM ciphertext with its 16-byte tag

with the AES key = PBKDF2-HMAC-SHA256(master key as UTF-8, salt, 100,000 iterations, 32 bytes) and no
associated data. A blob shorter than 16 + 12 + 16 bytes is malformed (OpenWatch's InvalidDataError).

How the blob sits in a column differs by place (`stored_blob` undoes each):
- hosts.encrypted_credentials and unified_credentials.encrypted_* (bytea): the ASCII base64 of the blob
  (credential_service.py writes `base64.b64encode(blob).decode("ascii")`, the readers b64decode it);
- users.mfa_secret: the blob itself; in OpenWatch's Text column it can also read back as bytea's hex text `\\x...`.
Older hosts rows hold base64 of plain JSON, never encrypted (routes/admin/credentials.py "currently using
base64"): `stored_blob` reports those as plaintext, so they are no evidence for or against a key.

Each blob has its own salt, so each costs one 100,000-iteration PBKDF2 (~13 ms here): `KeyRing` caches the
derived key per salt, which matters only where salts repeat (the sample data reuses a few).
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from openwatch_backup.errors import BackupError

SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
ITERATIONS = 100_000
MIN_BLOB_SIZE = SALT_SIZE + NONCE_SIZE + TAG_SIZE


class CredentialDecryptError(BackupError):
    """An OpenWatch credential blob cannot be decrypted."""

    code = "credential_decrypt"


class KeyDoesNotFit(CredentialDecryptError):
    """The GCM tag does not verify: the blob was encrypted under another master key (or altered)."""

    code = "credential_key_mismatch"


class MalformedCredential(CredentialDecryptError):
    """Not an OpenWatch blob at all: shorter than salt + nonce + tag."""

    code = "credential_malformed"


def derive_key(master_key: str, salt: bytes) -> bytes:
    """The AES-256 key OpenWatch derives from its master key for a blob with this salt."""
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, iterations=ITERATIONS)
    return kdf.derive(master_key.encode("utf-8"))


class KeyRing:
    """One master key and its derived keys, cached per salt (PBKDF2 runs once for each distinct salt)."""

    def __init__(self, master_key: str) -> None:
        if not master_key:
            raise ValueError("an empty master key encrypts nothing")
        self._master_key = master_key
        self._keys: dict[bytes, bytes] = {}

    def __repr__(self) -> str:  # never the key
        return f"KeyRing({len(self._keys)} derived keys)"

    def key_for(self, salt: bytes) -> bytes:
        key = self._keys.get(salt)
        if key is None:
            key = self._keys[salt] = derive_key(self._master_key, salt)
        return key

    def encrypt(self, plaintext: bytes, salt: bytes | None = None, nonce: bytes | None = None) -> bytes:
        """OpenWatch's blob. salt and nonce are random unless given (the sample data gives them, to be
        reproducible; a nonce must never repeat under one salt)."""
        salt = os.urandom(SALT_SIZE) if salt is None else salt
        nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
        if len(salt) != SALT_SIZE or len(nonce) != NONCE_SIZE:
            raise ValueError(f"salt and nonce are {SALT_SIZE} and {NONCE_SIZE} bytes")
        return salt + nonce + AESGCM(self.key_for(salt)).encrypt(nonce, plaintext, None)

    def decrypt(self, blob: bytes) -> bytes:
        if len(blob) < MIN_BLOB_SIZE:
            raise MalformedCredential(f"the encrypted value is {len(blob)} bytes, shorter than salt + nonce + tag "
                                      f"({MIN_BLOB_SIZE}): it is not an OpenWatch credential")
        salt, nonce = blob[:SALT_SIZE], blob[SALT_SIZE:SALT_SIZE + NONCE_SIZE]
        ciphertext = blob[SALT_SIZE + NONCE_SIZE:]
        try:
            return AESGCM(self.key_for(salt)).decrypt(nonce, ciphertext, None)
        except InvalidTag:
            raise KeyDoesNotFit("the master key does not decrypt this credential (its GCM tag does not verify): "
                                "it was encrypted under another OPENWATCH_MASTER_KEY") from None


def encrypt(master_key: str, plaintext: bytes) -> bytes:
    """Encrypt as OpenWatch's EncryptionService.encrypt does (random salt and nonce)."""
    return KeyRing(master_key).encrypt(plaintext)


def decrypt(master_key: str, blob: bytes) -> bytes:
    """Decrypt as OpenWatch's EncryptionService.decrypt does; KeyDoesNotFit or MalformedCredential on failure."""
    return KeyRing(master_key).decrypt(blob)


def _is_base64_text(data: bytes) -> bool:
    return len(data) % 4 == 0 and bool(data) and all(c in _B64_ALPHABET for c in data)


_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def stored_blob(value: bytes | memoryview | str) -> bytes | None:
    """The blob inside a stored column value (see the module docstring), or None when the value is plaintext
    that was never encrypted (base64 of JSON: the legacy hosts format). Random bytes being all base64 letters
    by chance is negligible for a blob of 44 bytes or more."""
    if isinstance(value, str):
        if value.startswith("\\x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                pass
        data = value.encode("utf-8", "surrogateescape")
    else:
        data = bytes(value)
    if data.startswith(b"\\x") and all(c in b"0123456789abcdefABCDEF" for c in data[2:]) and len(data) % 2 == 0:
        return bytes.fromhex(data[2:].decode("ascii"))
    if not _is_base64_text(data):
        return data
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error:
        return data
    return None if _is_plain_json(decoded) else decoded


def _is_plain_json(data: bytes) -> bool:
    if not data.lstrip().startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return False
