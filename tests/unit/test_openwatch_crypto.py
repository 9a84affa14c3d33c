"""OpenWatch's credential format (secrets/openwatch_crypto.py), checked against cryptography's primitives used
independently, the way OpenWatch's EncryptionService uses them."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openwatch_backup.sample.credentials import SAMPLE_MASTER_KEY, SampleVault
from openwatch_backup.secrets import openwatch_crypto
from openwatch_backup.secrets.bundle_read import env_values, key_in_members
from openwatch_backup.secrets.openwatch_crypto import (
    KeyDoesNotFit,
    KeyRing,
    MalformedCredential,
    decrypt,
    encrypt,
    stored_blob,
)

MASTER = "test-master-key-0123456789abcdef-0123456789"
SALT = bytes(range(16))
NONCE = bytes(range(100, 112))


def _reference_blob(master: str, plaintext: bytes) -> bytes:
    """OpenWatch's blob built by hand: hashlib's PBKDF2 (not cryptography's) and AESGCM."""
    key = hashlib.pbkdf2_hmac("sha256", master.encode("utf-8"), SALT, 100_000, 32)
    return SALT + NONCE + AESGCM(key).encrypt(NONCE, plaintext, None)


def test_round_trip_and_layout() -> None:
    plaintext = b'{"username": "svc", "password": "p\xc3\xa4ss"}'
    blob = encrypt(MASTER, plaintext)
    assert len(blob) == 16 + 12 + len(plaintext) + 16
    assert decrypt(MASTER, blob) == plaintext
    assert encrypt(MASTER, plaintext)[:28] != blob[:28]  # a fresh salt and nonce every time


def test_known_vector_both_ways() -> None:
    plaintext = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    expected = _reference_blob(MASTER, plaintext)
    assert KeyRing(MASTER).encrypt(plaintext, SALT, NONCE) == expected
    assert decrypt(MASTER, expected) == plaintext
    # Pinned bytes (ciphertext + tag), so a change to the reference itself cannot pass unnoticed.
    assert expected[:16] == SALT
    assert expected[16:28] == NONCE
    assert expected[28:].hex() == ("9db1b3f32fd1b3755bd9a3119d0ee220bd6f4ae4ebb4e24ff59ac55782d47b22"
                                   "6f9d8444a04c465c020a2d0dfc5e0b1c")


def test_wrong_key_is_typed() -> None:
    blob = encrypt(MASTER, b"secret")
    with pytest.raises(KeyDoesNotFit) as caught:
        decrypt(MASTER + "x", blob)
    assert caught.value.code == "credential_key_mismatch"
    assert "another OPENWATCH_MASTER_KEY" in caught.value.message
    assert MASTER not in caught.value.message
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(KeyDoesNotFit):
        decrypt(MASTER, flipped)


def test_short_blob_is_malformed() -> None:
    with pytest.raises(MalformedCredential) as caught:
        decrypt(MASTER, b"\x00" * 43)
    assert caught.value.message.startswith("the encrypted value is 43 bytes")


def test_key_ring_derives_once_per_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = openwatch_crypto.derive_key

    def counting(master: str, salt: bytes) -> bytes:
        calls.append(salt)
        return real(master, salt)

    monkeypatch.setattr(openwatch_crypto, "derive_key", counting)
    ring = KeyRing(MASTER)
    blobs = [ring.encrypt(b"x%d" % i, SALT, bytes([i]) * 12) for i in range(5)]
    assert [ring.decrypt(b) for b in blobs] == [b"x%d" % i for i in range(5)]
    assert calls == [SALT]
    assert "test-master" not in repr(ring)


def test_stored_forms() -> None:
    blob = encrypt(MASTER, b"pw")
    assert stored_blob(blob) == blob  # users.mfa_secret: the blob itself
    assert stored_blob(base64.b64encode(blob)) == blob  # credential_service: base64 text in bytea
    assert stored_blob(memoryview(base64.b64encode(blob))) == blob
    assert stored_blob(base64.b64encode(blob).decode()) == blob  # a text column
    assert stored_blob("\\x" + blob.hex()) == blob  # bytea written into OpenWatch's Text mfa_secret
    assert stored_blob(b"\\x" + blob.hex().encode()) == blob
    legacy = base64.b64encode(json.dumps({"username": "root", "password": "pw"}).encode())
    assert stored_blob(legacy) is None  # never encrypted: no evidence either way


def test_sample_vault_is_openwatch_format_and_deterministic() -> None:
    one, two = SampleVault(3), SampleVault(3)
    text = one.host_credentials("svc_openwatch", "password")
    assert text == two.host_credentials("svc_openwatch", "password")
    data = json.loads(decrypt(SAMPLE_MASTER_KEY, base64.b64decode(text)))
    assert (data["username"], bool(data["password"]), data["ssh_key"]) == ("svc_openwatch", True, None)
    assert len(SAMPLE_MASTER_KEY) >= 32
    secret = one.mfa_secret()
    assert len(decrypt(SAMPLE_MASTER_KEY, secret)) == 32
    with pytest.raises(KeyDoesNotFit):
        decrypt("another-master-key-of-at-least-32-chars", secret)


def test_env_members() -> None:
    snapshot = b"# header\nOPENWATCH_MASTER_KEY='it'\\''s k=1'\nPOSTGRES_PASSWORD=x\n"
    assert env_values(snapshot)["OPENWATCH_MASTER_KEY"] == "it's k=1"
    dotenv = b'export MASTER_KEY="a \\"b\\""\nSECRET_KEY=s # comment\n\n#MASTER_KEY=old\n'
    assert env_values(dotenv) == {"MASTER_KEY": 'a "b"', "SECRET_KEY": "s"}
    assert key_in_members({"srv/.env": dotenv, "openwatch.env": snapshot}) == ("openwatch.env", "it's k=1")
    assert key_in_members({"srv/.env": dotenv}) == ("srv/.env", 'a "b"')
    assert key_in_members({"openwatch.env": b"OPENWATCH_MASTER_KEY=\n", "srv/.env": b"OPENWATCH_MASTER_KEY=z\n"}) \
        == ("srv/.env", "z")
    assert key_in_members({"openwatch.env": b"MASTER_KEY=only-in-dotenv-style\n"}) == (None, None)
