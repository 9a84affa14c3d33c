"""Streaming AES-256-CBC in exactly the format of `openssl enc -aes-256-cbc -salt -pbkdf2` (OpenSSL 3 defaults).

The guide tells an admin to open a config bundle with
`openssl enc -d -aes-256-cbc -salt -pbkdf2 -in FILE -pass file:PASSFILE`, on a host with nothing of ours, so the
bytes must be what that command expects:

    b"Salted__" | salt (8 random bytes) | AES-256-CBC(key, iv, PKCS#7-padded plaintext)

with key (32 bytes) and iv (16 bytes) the first and second part of PBKDF2-HMAC-SHA256(passphrase, salt,
10,000 iterations, 48 bytes). openssl uses SHA-256 and 10,000 iterations when `-md`/`-iter` are not given.

CBC has no integrity: a wrong passphrase usually, not always, shows as bad padding at the very end, and a flipped
byte in the middle decrypts to garbage without any error. secrets/integrity.py (key id, sha256, HMAC) is what
tells those apart; the errors here are the last line of defence. Everything is done in-process with
`cryptography` (no openssl subprocess, so the passphrase never reaches an argv), and memory stays bounded: the
cipher keeps at most one block back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.padding import PKCS7, PaddingContext

from openwatch_backup.errors import ArtifactUnreadable

MAGIC = b"Salted__"
SALT_SIZE = 8
HEADER_SIZE = len(MAGIC) + SALT_SIZE  # 16
ITERATIONS = 10_000  # openssl enc -pbkdf2 without -iter
KEY_SIZE = 32
IV_SIZE = 16
BLOCK_SIZE = 16
CHUNK_SIZE = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class DecryptError(ArtifactUnreadable):
    """The ciphertext cannot be decrypted: no openssl header, a broken length, or bad padding."""

    code = "decrypt_failed"


class MissingHeader(DecryptError):
    """The file does not start with `Salted__` and a salt: not an `openssl enc -salt` file, or cut short."""


class TruncatedCiphertext(DecryptError):
    """The ciphertext is not a whole number of 16-byte blocks (or has none): the file was cut short."""


class BadPadding(DecryptError):
    """The last block does not unpad: the passphrase is wrong, or the end of the file is damaged."""


def derive_key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """The AES key and IV that `openssl enc -pbkdf2` derives from this passphrase and salt."""
    if len(salt) != SALT_SIZE:
        raise ValueError(f"the openssl salt is {SALT_SIZE} bytes, not {len(salt)}")
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=KEY_SIZE + IV_SIZE, salt=salt, iterations=ITERATIONS)
    material = kdf.derive(passphrase)
    return material[:KEY_SIZE], material[KEY_SIZE:]


def _cipher(passphrase: bytes, salt: bytes) -> Cipher[modes.CBC]:
    key, iv = derive_key_iv(passphrase, salt)
    return Cipher(algorithms.AES256(key), modes.CBC(iv))


class Encryptor:
    """Plaintext in, openssl-format ciphertext out; the 16-byte header comes with the first output."""

    def __init__(self, passphrase: bytes, salt: bytes | None = None) -> None:
        if not passphrase:
            raise ValueError("an empty passphrase encrypts nothing")
        self.salt = os.urandom(SALT_SIZE) if salt is None else salt
        self._cipher: CipherContext = _cipher(passphrase, self.salt).encryptor()
        self._padder: PaddingContext = PKCS7(BLOCK_SIZE * 8).padder()
        self._header: bytes = MAGIC + self.salt
        self._finished = False

    def _with_header(self, data: bytes) -> bytes:
        header, self._header = self._header, b""
        return header + data if header else data

    def update(self, data: bytes) -> bytes:
        if self._finished:
            raise ValueError("the encryptor is finalized")
        return self._with_header(self._cipher.update(self._padder.update(data)))

    def finalize(self) -> bytes:
        """The last block (padding included). An empty plaintext still gives header + one block, as openssl does."""
        if self._finished:
            raise ValueError("the encryptor is finalized")
        self._finished = True
        tail = self._cipher.update(self._padder.finalize()) + self._cipher.finalize()
        return self._with_header(tail)


class Decryptor:
    """openssl-format ciphertext in, plaintext out. Reads the salt from the first 16 bytes, however they arrive.

    `name` appears in error messages (a file name or key; never the passphrase).
    """

    def __init__(self, passphrase: bytes, name: str = "the encrypted file") -> None:
        self._passphrase = passphrase
        self._name = name
        self._head = b""
        self._cipher: CipherContext | None = None
        self._unpadder: PaddingContext = PKCS7(BLOCK_SIZE * 8).unpadder()
        self._body_size = 0
        self._finished = False
        self.salt: bytes | None = None

    def _start(self, header: bytes) -> None:
        if header[: len(MAGIC)] != MAGIC:
            raise MissingHeader(
                f"{self._name} does not start with openssl's 'Salted__' header: it is not a bundle made by "
                "`openssl enc -salt`, or its start is damaged; use another copy")
        self.salt = header[len(MAGIC):]
        self._cipher = _cipher(self._passphrase, self.salt).decryptor()

    def update(self, data: bytes) -> bytes:
        if self._finished:
            raise ValueError("the decryptor is finalized")
        if self._cipher is None:
            self._head += data
            if len(self._head) < HEADER_SIZE:
                return b""
            header, data = self._head[:HEADER_SIZE], self._head[HEADER_SIZE:]
            self._head = b""
            self._start(header)
        assert self._cipher is not None
        self._body_size += len(data)
        return self._unpadder.update(self._cipher.update(data))

    def finalize(self) -> bytes:
        if self._finished:
            raise ValueError("the decryptor is finalized")
        self._finished = True
        if self._cipher is None:
            raise MissingHeader(
                f"{self._name} is {len(self._head)} bytes, shorter than openssl's 16-byte header: it was cut "
                "short or is not a bundle; use another copy")
        if self._body_size == 0 or self._body_size % BLOCK_SIZE:
            raise TruncatedCiphertext(
                f"{self._name} holds {self._body_size} bytes of ciphertext, not a whole number of 16-byte "
                "AES blocks: the file was cut short; use another copy")
        try:
            return self._unpadder.update(self._cipher.finalize()) + self._unpadder.finalize()
        except ValueError:
            raise BadPadding(
                f"{self._name} does not decrypt (bad padding): the passphrase is wrong, or the end of the file "
                "is damaged; check OPENWATCH_BACKUP_PASSPHRASE_FILE, or use another copy") from None


def encrypt_stream(src: Readable, dst: BinaryIO, passphrase: bytes, salt: bytes | None = None,
                   chunk_size: int = CHUNK_SIZE) -> int:
    """Encrypts src to dst in chunks (memory stays at about one chunk). Returns the ciphertext's size."""
    return _pump(Encryptor(passphrase, salt), src, dst, chunk_size)


def decrypt_stream(src: Readable, dst: BinaryIO, passphrase: bytes, name: str = "the encrypted file",
                   chunk_size: int = CHUNK_SIZE) -> int:
    """Decrypts src to dst in chunks. Returns the plaintext's size; raises a DecryptError subclass at the end.

    All but the last block reach dst before a padding error can be known (CBC tells only at the end), so a
    caller writing a real file writes to a temporary one and discards it on error.
    """
    return _pump(Decryptor(passphrase, name), src, dst, chunk_size)


def _pump(cipher: Encryptor | Decryptor, src: Readable, dst: BinaryIO, chunk_size: int) -> int:
    """src through cipher into dst, a chunk at a time; the number of bytes written."""
    written = 0
    while chunk := src.read(chunk_size):
        out = cipher.update(chunk)
        dst.write(out)
        written += len(out)
    out = cipher.finalize()
    dst.write(out)
    return written + len(out)


def decrypt_chunks(src: Readable, passphrase: bytes, name: str = "the encrypted file",
                   chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The plaintext of src as chunks, for a reader that pulls (a tar listing) without a file in between.

    The DecryptError, if any, comes when the last chunk is pulled: a consumer must read to the end (a tar
    reader that stops at the end-of-archive blocks must drain the rest) before trusting what it saw.
    """
    decryptor = Decryptor(passphrase, name)
    while chunk := src.read(chunk_size):
        if out := decryptor.update(chunk):
            yield out
    if out := decryptor.finalize():
        yield out
