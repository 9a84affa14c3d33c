"""integrity: key id, size, sha256, HMAC of a bundle's ciphertext; checked in that order, each with its reason."""

from __future__ import annotations

import hashlib
import hmac
import io

import pytest

from openwatch_backup.errors import ManifestError
from openwatch_backup.secrets.integrity import (
    PASSED,
    CiphertextIntegrity,
    CiphertextMac,
    IntegrityReason,
    IntegrityResult,
    SealingWriter,
    check,
    check_passphrase,
    encrypt_sealed,
    hmac_key,
    key_id,
)
from openwatch_backup.secrets.openssl_enc import Decryptor

PASSPHRASE = b"correct horse battery staple"
WRONG = b"wrong horse"
DATA = b"config bundle plaintext " * 3000


def sealed(data: bytes = DATA, passphrase: bytes = PASSPHRASE) -> tuple[bytes, CiphertextIntegrity]:
    out = io.BytesIO()
    integrity = encrypt_sealed(io.BytesIO(data), out, passphrase, chunk_size=1000)
    return out.getvalue(), integrity


def run_check(blob: bytes, integrity: CiphertextIntegrity, passphrase: bytes = PASSPHRASE) -> IntegrityResult:
    return check(io.BytesIO(blob), integrity, passphrase, name="config_20261130_020000.tar.gz.enc", chunk_size=777)


def test_key_id_is_the_documented_pbkdf2_and_never_the_passphrase() -> None:
    expected = hashlib.pbkdf2_hmac("sha256", PASSPHRASE, b"openwatch-backup config bundle key id v1", 600_000, 8)
    assert key_id(PASSPHRASE) == expected.hex()
    assert len(key_id(PASSPHRASE)) == 16
    assert key_id(PASSPHRASE) != key_id(WRONG)
    assert key_id(PASSPHRASE) not in (PASSPHRASE.hex(), hashlib.sha256(PASSPHRASE).hexdigest()[:16])


def test_hmac_key_is_labelled_salted_and_distinct_from_the_openssl_key() -> None:
    salt = bytes(range(16))
    expected = hashlib.pbkdf2_hmac("sha256", PASSPHRASE, b"openwatch-backup config bundle hmac key v1\x00" + salt,
                                   600_000, 32)
    assert hmac_key(PASSPHRASE, salt) == expected
    assert hmac_key(PASSPHRASE, bytes(16)) != expected
    assert hmac_key(PASSPHRASE, salt)[:8].hex() != key_id(PASSPHRASE)
    with pytest.raises(ValueError, match="16 bytes, not 8"):
        hmac_key(PASSPHRASE, bytes(8))


def test_mac_streams_like_one_hmac() -> None:
    mac = CiphertextMac(b"k" * 32)
    for piece in (b"ab", b"", b"cdef"):
        mac.update(piece)
    assert mac.hexdigest() == hmac.new(b"k" * 32, b"abcdef", hashlib.sha256).hexdigest()


def test_sealing_records_size_sha256_hmac_salt_and_key_id_of_the_stored_bytes() -> None:
    blob, integrity = sealed()
    assert integrity.size == len(blob)
    assert integrity.sha256 == hashlib.sha256(blob).hexdigest()
    assert integrity.key_id == key_id(PASSPHRASE)
    key = hmac_key(PASSPHRASE, bytes.fromhex(integrity.hmac_salt))
    assert integrity.hmac_sha256 == hmac.new(key, blob, hashlib.sha256).hexdigest()
    decryptor = Decryptor(PASSPHRASE)
    assert decryptor.update(blob) + decryptor.finalize() == DATA
    assert sealed()[1].hmac_salt != integrity.hmac_salt  # each bundle its own salt


def test_manifest_round_trip_holds_no_secret() -> None:
    _, integrity = sealed()
    recorded = integrity.as_manifest()
    assert set(recorded) == {"size", "sha256", "hmac_sha256", "hmac_salt", "key_id"}
    assert CiphertextIntegrity.from_manifest(recorded) == integrity
    assert PASSPHRASE.decode() not in repr(recorded)


@pytest.mark.parametrize(("change", "field"), [
    ({"sha256": "AB" * 32}, "sha256"), ({"key_id": "12"}, "key_id"), ({"hmac_salt": None}, "hmac_salt"),
    ({"hmac_sha256": "zz" * 32}, "hmac_sha256"), ({"size": -1}, "size"), ({"size": True}, "size"),
    ({"size": "12"}, "size"),
])
def test_a_malformed_manifest_is_a_manifest_error_naming_the_field(change: dict[str, object], field: str) -> None:
    recorded = {**sealed(b"x")[1].as_manifest(), **change}
    with pytest.raises(ManifestError, match=f"encryption field '{field}'"):
        CiphertextIntegrity.from_manifest(recorded)
    with pytest.raises(ManifestError, match="not an object"):
        CiphertextIntegrity.from_manifest(["not", "a", "dict"])


def test_an_intact_bundle_passes() -> None:
    blob, integrity = sealed()
    assert run_check(blob, integrity) == PASSED
    assert PASSED.passed


def test_a_wrong_passphrase_is_named_before_anything_is_read() -> None:
    _, integrity = sealed()

    class Unread(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise AssertionError("the stream was read")

    result = check(Unread(), integrity, WRONG, name="config_20261130_020000.tar.gz.enc")
    assert result == IntegrityResult(
        IntegrityReason.PASSPHRASE, "key_id",
        "the passphrase does not fit config_20261130_020000.tar.gz.enc (its key id differs): set "
        "OPENWATCH_BACKUP_PASSPHRASE_FILE to the passphrase this bundle was made with")
    assert not result.passed
    assert check_passphrase(integrity, PASSPHRASE) == PASSED


def test_a_wrong_passphrase_wins_over_damage() -> None:
    blob, integrity = sealed()
    assert run_check(blob[:-10], integrity, WRONG).reason == IntegrityReason.PASSPHRASE


def test_a_flipped_byte_is_checksum() -> None:
    blob, integrity = sealed()
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0x40
    assert run_check(bytes(damaged), integrity) == IntegrityResult(
        IntegrityReason.CHECKSUM, "sha256",
        "config_20261130_020000.tar.gz.enc's sha256 differs from its manifest: the file is damaged; use another copy")


@pytest.mark.parametrize("cut", [1, 16, 5000])
def test_a_truncated_file_is_unreadable(cut: int) -> None:
    blob, integrity = sealed()
    assert run_check(blob[:-cut], integrity) == IntegrityResult(
        IntegrityReason.UNREADABLE, "size",
        f"config_20261130_020000.tar.gz.enc is {len(blob) - cut} bytes, {len(blob)} were written: it was cut "
        "short; use another copy")


def test_appended_bytes_are_checksum() -> None:
    blob, integrity = sealed()
    result = run_check(blob + b"\0" * 16, integrity)
    assert (result.reason, result.failed_check) == (IntegrityReason.CHECKSUM, "size")


def test_a_bundle_and_manifest_replaced_without_the_passphrase_fail_the_hmac() -> None:
    """Someone re-encrypts other content with another passphrase and fixes size and sha256, not the HMAC."""
    _, integrity = sealed()
    forged, _ = sealed(b"attacker's config", WRONG)
    forged_manifest = CiphertextIntegrity(size=len(forged), sha256=hashlib.sha256(forged).hexdigest(),
                                          hmac_sha256=integrity.hmac_sha256, hmac_salt=integrity.hmac_salt,
                                          key_id=integrity.key_id)
    result = run_check(forged, forged_manifest)
    assert (result.reason, result.failed_check) == (IntegrityReason.CHECKSUM, "hmac")
    assert "replaced without the passphrase" in result.message


@pytest.mark.parametrize("as_callable", [True, False])
def test_the_sealing_writer_encrypts_what_is_pushed_and_measures_it(as_callable: bool) -> None:
    out = io.BytesIO()
    writer = SealingWriter(out.write if as_callable else out, PASSPHRASE)
    for start in range(0, len(DATA), 777):  # tarfile writes in uneven pieces
        assert writer.write(memoryview(DATA[start:start + 777])) == len(DATA[start:start + 777])
    integrity = writer.finish()
    assert writer.finish() is integrity
    blob = out.getvalue()
    assert integrity.size == len(blob)
    assert integrity.key_id == key_id(PASSPHRASE)
    assert run_check(blob, integrity) == PASSED
    decryptor = Decryptor(PASSPHRASE)
    assert decryptor.update(blob) + decryptor.finalize() == DATA
    with pytest.raises(ValueError, match="finished"):
        writer.write(b"more")


def test_the_sealing_writer_of_nothing_is_one_block() -> None:
    out = io.BytesIO()
    integrity = SealingWriter(out, PASSPHRASE).finish()
    assert integrity.size == len(out.getvalue()) == 32
