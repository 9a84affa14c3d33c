"""openssl_enc: the `openssl enc -aes-256-cbc -salt -pbkdf2` format, byte for byte, streamed, with typed errors.

The known answer below was made by the real CLI (OpenSSL 3.0):
  printf 'correct horse battery staple\\n' > kp; printf 'The quick brown fox jumps over the lazy dog' > kd
  openssl enc -aes-256-cbc -salt -pbkdf2 -S 0001020304050607 -in kd -pass file:kp | xxd -p
(with an explicit -S, OpenSSL 3 leaves out the `Salted__` + salt header; without -S it writes it, see
tests/test_openssl_compat.py). tests/test_openssl_compat.py runs the CLI itself; these run without it.
"""

from __future__ import annotations

import hashlib
import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwatch_backup.errors import ArtifactUnreadable
from openwatch_backup.secrets.openssl_enc import (
    BadPadding,
    Decryptor,
    Encryptor,
    MissingHeader,
    TruncatedCiphertext,
    decrypt_chunks,
    decrypt_stream,
    derive_key_iv,
    encrypt_stream,
)

PASSPHRASE = b"correct horse battery staple"
WRONG = b"wrong horse"
SALT = bytes(range(8))
PLAINTEXT = b"The quick brown fox jumps over the lazy dog"
OPENSSL_BODY = bytes.fromhex("acd1d3fbd6ac09040804d337df3b5519b1fc4c2f4cf70dc25362fe318657c9ca"
                             "a65168c3cfb07c497235efdb59aca515")
OPENSSL_KEY = bytes.fromhex("E6251DBBA64249B5BAAE4C8730F639874395138A60245089EC5198ED33273C4C")
OPENSSL_IV = bytes.fromhex("F7A12F5BD92260C54AF3849401DA9E56")


def encrypt(data: bytes, passphrase: bytes = PASSPHRASE, salt: bytes | None = SALT) -> bytes:
    encryptor = Encryptor(passphrase, salt)
    return encryptor.update(data) + encryptor.finalize()


def decrypt(data: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    decryptor = Decryptor(passphrase, name="bundle.tar.gz.enc")
    return decryptor.update(data) + decryptor.finalize()


def test_key_and_iv_are_openssls_and_pbkdf2_sha256_10000() -> None:
    assert derive_key_iv(PASSPHRASE, SALT) == (OPENSSL_KEY, OPENSSL_IV)
    material = hashlib.pbkdf2_hmac("sha256", PASSPHRASE, SALT, 10_000, 48)
    assert (material[:32], material[32:]) == (OPENSSL_KEY, OPENSSL_IV)


def test_known_answer_from_the_openssl_cli() -> None:
    assert encrypt(PLAINTEXT) == b"Salted__" + SALT + OPENSSL_BODY
    assert decrypt(b"Salted__" + SALT + OPENSSL_BODY) == PLAINTEXT


@pytest.mark.parametrize(("size", "blocks"), [(0, 1), (1, 1), (15, 1), (16, 2), (17, 2), (1024 * 1024 + 3, 65537)])
def test_header_salt_and_padded_length(size: int, blocks: int) -> None:
    encryptor = Encryptor(PASSPHRASE)
    out = encryptor.update(b"a" * size) + encryptor.finalize()
    assert out[:8] == b"Salted__"
    assert out[8:16] == encryptor.salt
    assert len(out) == 16 + 16 * blocks
    assert decrypt(out) == b"a" * size


def test_each_encryption_draws_a_new_salt() -> None:
    first, second = Encryptor(PASSPHRASE), Encryptor(PASSPHRASE)
    assert len(first.salt) == 8
    assert first.salt != second.salt


def test_the_header_comes_first_even_when_the_first_update_is_short() -> None:
    encryptor = Encryptor(PASSPHRASE, SALT)
    assert encryptor.update(b"abc") == b"Salted__" + SALT  # no whole block yet, but the header is due
    assert encryptor.update(b"d" * 13) == encrypt(b"abc" + b"d" * 13)[16:32]


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(min_value=0, max_value=260), max_size=8))
def test_any_chunking_gives_the_same_bytes(data: bytes, cuts: list[int]) -> None:
    whole = encrypt(data)
    bounds = sorted({0, *[c for c in cuts if c <= len(data)], len(data)})
    encryptor = Encryptor(PASSPHRASE, SALT)
    pieces = b"".join(encryptor.update(data[a:b]) for a, b in itertools.pairwise(bounds))
    assert pieces + encryptor.finalize() == whole

    cipher_bounds = sorted({0, *[c for c in cuts if c <= len(whole)], len(whole)})
    decryptor = Decryptor(PASSPHRASE)
    plain = b"".join(decryptor.update(whole[a:b]) for a, b in itertools.pairwise(cipher_bounds))
    assert plain + decryptor.finalize() == data


def test_byte_by_byte_through_the_header() -> None:
    whole = encrypt(PLAINTEXT)
    decryptor = Decryptor(PASSPHRASE)
    out = b"".join(decryptor.update(whole[i:i + 1]) for i in range(len(whole)))
    assert out + decryptor.finalize() == PLAINTEXT
    assert decryptor.salt == SALT


def test_streams_return_sizes_and_round_trip() -> None:
    data = bytes(range(256)) * 5000 + b"tail"
    encrypted = io.BytesIO()
    size = encrypt_stream(io.BytesIO(data), encrypted, PASSPHRASE, chunk_size=4096)
    assert size == len(encrypted.getvalue()) == 16 + (len(data) // 16 + 1) * 16
    plain = io.BytesIO()
    assert decrypt_stream(io.BytesIO(encrypted.getvalue()), plain, PASSPHRASE, chunk_size=1000) == len(data)
    assert plain.getvalue() == data


def test_a_wrong_passphrase_is_bad_padding_with_a_message_that_names_the_fix() -> None:
    with pytest.raises(BadPadding) as raised:
        decrypt(encrypt(PLAINTEXT), WRONG)
    assert str(raised.value) == (
        "bundle.tar.gz.enc does not decrypt (bad padding): the passphrase is wrong, or the end of the file is "
        "damaged; check OPENWATCH_BACKUP_PASSPHRASE_FILE, or use another copy")
    assert isinstance(raised.value, ArtifactUnreadable)
    assert raised.value.code == "decrypt_failed"
    assert PASSPHRASE.decode() not in str(raised.value)
    assert WRONG.decode() not in str(raised.value)


def test_a_flipped_byte_in_the_last_block_is_bad_padding() -> None:
    damaged = bytearray(encrypt(PLAINTEXT))
    damaged[-20] ^= 0x01  # the block before the last: CBC xors it into the last block's padding
    with pytest.raises(BadPadding):
        decrypt(bytes(damaged))


def test_a_flipped_byte_in_the_middle_decrypts_to_garbage_without_an_error() -> None:
    """Why integrity.py exists: CBC itself does not notice."""
    data = b"x" * 100
    damaged = bytearray(encrypt(data))
    damaged[20] ^= 0x01
    out = decrypt(bytes(damaged))
    assert len(out) == len(data)
    assert out != data


@pytest.mark.parametrize("data", [b"", b"Salted_", b"Salted__1234567"])
def test_shorter_than_the_header(data: bytes) -> None:
    with pytest.raises(MissingHeader) as raised:
        decrypt(data)
    assert str(raised.value) == (
        f"bundle.tar.gz.enc is {len(data)} bytes, shorter than openssl's 16-byte header: it was cut short or is "
        "not a bundle; use another copy")


def test_no_salted_header() -> None:
    with pytest.raises(MissingHeader) as raised:
        decrypt(OPENSSL_BODY)  # `openssl enc -S` output: no header
    assert str(raised.value).startswith("bundle.tar.gz.enc does not start with openssl's 'Salted__' header")


@pytest.mark.parametrize("cut", [1, 15, 17, 47])
def test_a_cut_that_breaks_the_block_length(cut: int) -> None:
    whole = encrypt(b"y" * 40)  # 16 + 48 bytes
    with pytest.raises(TruncatedCiphertext) as raised:
        decrypt(whole[:-cut])
    body = len(whole) - cut - 16
    assert str(raised.value) == (
        f"bundle.tar.gz.enc holds {body} bytes of ciphertext, not a whole number of 16-byte AES blocks: the "
        "file was cut short; use another copy")


def test_a_cut_on_a_block_boundary_is_bad_padding() -> None:
    whole = encrypt(b"y" * 40)
    with pytest.raises(BadPadding):
        decrypt(whole[:-16])


def test_finalized_contexts_refuse_more_work() -> None:
    encryptor = Encryptor(PASSPHRASE)
    encryptor.finalize()
    with pytest.raises(ValueError, match="finalized"):
        encryptor.update(b"x")
    with pytest.raises(ValueError, match="finalized"):
        encryptor.finalize()
    decryptor = Decryptor(PASSPHRASE)
    decryptor.update(encrypt(b""))
    decryptor.finalize()
    with pytest.raises(ValueError, match="finalized"):
        decryptor.update(b"x")


def test_refuses_an_empty_passphrase_and_a_wrong_salt_size() -> None:
    with pytest.raises(ValueError, match="empty passphrase"):
        Encryptor(b"")
    with pytest.raises(ValueError, match="8 bytes, not 7"):
        Encryptor(PASSPHRASE, b"1234567")


def test_decrypt_chunks_yields_the_plaintext_in_bounded_pieces() -> None:
    data = bytes(range(256)) * 1000
    pieces = list(decrypt_chunks(io.BytesIO(encrypt(data)), PASSPHRASE, chunk_size=4096))
    assert b"".join(pieces) == data
    assert max(map(len, pieces)) <= 4096


def test_decrypt_chunks_fails_when_the_last_piece_is_pulled() -> None:
    chunks = decrypt_chunks(io.BytesIO(encrypt(b"z" * 100)), WRONG, name="bundle.tar.gz.enc", chunk_size=32)
    first = next(chunks)  # garbage: CBC cannot tell before the end
    assert first != b"z" * len(first)
    with pytest.raises(BadPadding, match=r"^bundle\.tar\.gz\.enc does not decrypt"):
        list(chunks)
