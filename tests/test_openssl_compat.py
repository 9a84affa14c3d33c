"""Our encryption against the real openssl CLI: the guide's command opens what we write, we open what it writes.

The passphrase always reaches openssl as `-pass file:PATH`, never in argv, exactly as the guide tells an admin
to do on a host with nothing of ours. The tar layer on top (`| tar xz`) is proven with the bundle itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from openwatch_backup.secrets.integrity import (
    CiphertextIntegrity,
    IntegrityReason,
    Sealer,
    SealingWriter,
    check,
    encrypt_sealed,
    key_id,
)
from openwatch_backup.secrets.openssl_enc import BadPadding, Decryptor, Encryptor, TruncatedCiphertext, decrypt_stream
from openwatch_backup.secrets.passphrase import read_passphrase_file

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed")

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = b"correct horse battery staple"
WRONG = b"wrong horse"
SALT = bytes.fromhex("0001020304050607")
SIZES = [0, 1, 15, 16, 17, 1024 * 1024 + 3]


def content(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def passfile(folder: Path, passphrase: bytes, name: str = "passphrase") -> Path:
    path = folder / name
    path.write_bytes(passphrase + b"\n")
    path.chmod(0o600)
    return path


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", "enc", "-aes-256-cbc", "-salt", "-pbkdf2", *map(str, args)], input=stdin,
                          capture_output=True, timeout=60, check=False)


def sealed_file(folder: Path, data: bytes, passphrase: bytes = PASSPHRASE) -> tuple[Path, CiphertextIntegrity]:
    path = folder / "config_20261130_020000.tar.gz.enc"
    with path.open("wb") as out:
        integrity = encrypt_sealed(io.BytesIO(data), out, passphrase)
    return path, integrity


def verify(path: Path, integrity: CiphertextIntegrity, passphrase: bytes = PASSPHRASE) -> tuple[str | None, str | None]:
    with path.open("rb") as stream:
        result = check(stream, integrity, passphrase, name=path.name)
    return (result.reason.value if result.reason else None), result.failed_check


@pytest.mark.parametrize("size", SIZES)
def test_openssl_decrypts_what_we_encrypt(tmp_path: Path, size: int) -> None:
    data = content(size)
    bundle, integrity = sealed_file(tmp_path, data)
    assert bundle.read_bytes()[:8] == b"Salted__"
    opened = openssl("-d", "-in", bundle, "-pass", f"file:{passfile(tmp_path, PASSPHRASE)}")
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == data
    assert verify(bundle, integrity) == (None, None)


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_what_openssl_encrypts(tmp_path: Path, size: int) -> None:
    data = content(size)
    plain, bundle = tmp_path / "plain", tmp_path / "bundle.enc"
    plain.write_bytes(data)
    made = openssl("-in", plain, "-out", bundle, "-pass", f"file:{passfile(tmp_path, PASSPHRASE)}")
    assert made.returncode == 0, made.stderr
    out = io.BytesIO()
    with bundle.open("rb") as stream:
        assert decrypt_stream(stream, out, PASSPHRASE, chunk_size=4096) == size
    assert out.getvalue() == data


def test_the_same_bytes_as_openssl_for_the_same_salt(tmp_path: Path) -> None:
    """With -S, OpenSSL 3 writes the ciphertext without the `Salted__` + salt header; the rest is identical."""
    data = content(1000)
    made = openssl("-S", SALT.hex(), "-pass", f"file:{passfile(tmp_path, PASSPHRASE)}", stdin=data)
    assert made.returncode == 0, made.stderr
    encryptor = Encryptor(PASSPHRASE, SALT)
    assert encryptor.update(data) + encryptor.finalize() == b"Salted__" + SALT + made.stdout


def test_a_passphrase_file_means_the_same_to_us_and_to_openssl(tmp_path: Path) -> None:
    """First line only, the carriage return of a Windows line end kept: what `-pass file:` does."""
    path = tmp_path / "passphrase"
    path.write_bytes(b"  spaced pass\r\nnot part of it\n")
    path.chmod(0o600)
    ours = read_passphrase_file(path).value
    assert ours == b"  spaced pass\r"
    bundle, _ = sealed_file(tmp_path, b"payload", ours)
    opened = openssl("-d", "-in", bundle, "-pass", f"file:{path}")
    assert (opened.returncode, opened.stdout) == (0, b"payload")
    made = openssl("-pass", f"file:{path}", stdin=b"theirs")
    decryptor = Decryptor(ours)
    assert decryptor.update(made.stdout) + decryptor.finalize() == b"theirs"


def test_a_wrong_passphrase_fails_on_every_layer(tmp_path: Path) -> None:
    data = content(5000)
    bundle, integrity = sealed_file(tmp_path, data)
    # 1. The key id names it before anything is read or decrypted.
    assert verify(bundle, integrity, WRONG) == ("passphrase", "key_id")
    # 2. The HMAC alone (a manifest whose key id said otherwise) does not match under the wrong passphrase.
    wrong_id = CiphertextIntegrity(integrity.size, integrity.sha256, integrity.hmac_sha256, integrity.hmac_salt,
                                   key_id(WRONG))
    assert verify(bundle, wrong_id, WRONG) == ("checksum", "hmac")
    # 3. Decryption fails at the padding: here with a fixed salt, where this pair is known to (a random salt
    # passes the padding check by chance once in about 256 tries, and then gives garbage).
    fixed = tmp_path / "fixed.enc"
    encryptor = Encryptor(PASSPHRASE, SALT)
    fixed.write_bytes(encryptor.update(data) + encryptor.finalize())
    with pytest.raises(BadPadding):
        decrypt_stream(io.BytesIO(fixed.read_bytes()), io.BytesIO(), WRONG)
    refused = openssl("-d", "-in", fixed, "-pass", f"file:{passfile(tmp_path, WRONG, 'wrong')}")
    assert refused.returncode != 0
    assert b"bad decrypt" in refused.stderr


def test_a_flipped_byte_is_a_checksum_failure_that_openssl_itself_misses(tmp_path: Path) -> None:
    data = content(64 * 1024)
    bundle, integrity = sealed_file(tmp_path, data)
    damaged = bytearray(bundle.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    bundle.write_bytes(bytes(damaged))
    assert verify(bundle, integrity) == ("checksum", "sha256")
    opened = openssl("-d", "-in", bundle, "-pass", f"file:{passfile(tmp_path, PASSPHRASE)}")
    assert opened.returncode == 0  # CBC has no integrity: this is why the manifest holds sha256 and HMAC
    assert len(opened.stdout) == len(data)
    assert opened.stdout != data


def test_a_truncated_file_is_unreadable(tmp_path: Path) -> None:
    bundle, integrity = sealed_file(tmp_path, content(64 * 1024))
    bundle.write_bytes(bundle.read_bytes()[:-5])
    assert verify(bundle, integrity) == ("unreadable", "size")
    with pytest.raises(TruncatedCiphertext):
        decrypt_stream(io.BytesIO(bundle.read_bytes()), io.BytesIO(), PASSPHRASE)
    opened = openssl("-d", "-in", bundle, "-pass", f"file:{passfile(tmp_path, PASSPHRASE)}")
    assert opened.returncode != 0


def test_a_bundle_openssl_made_can_be_sealed_and_then_checks_out(tmp_path: Path) -> None:
    """A bundle made by hand with the guide's command gets a manifest from its stored bytes."""
    plain, bundle = tmp_path / "plain", tmp_path / "bundle.enc"
    plain.write_bytes(content(3000))
    assert openssl("-in", plain, "-out", bundle, "-pass", f"file:{passfile(tmp_path, PASSPHRASE)}").returncode == 0
    sealer = Sealer(PASSPHRASE)
    sealer.update(bundle.read_bytes())
    integrity = sealer.finish()
    assert verify(bundle, integrity) == (None, None)
    assert verify(bundle, integrity, WRONG) == (IntegrityReason.PASSPHRASE.value, "key_id")


# Encrypts TOTAL bytes from a generator-like source to stdout (into openssl -d), sealing on the way, and
# reports the peak RSS growth over a warmed-up baseline. ru_maxrss is in KiB on Linux.
STREAM_SCRIPT = """
import hashlib, io, json, random, resource, sys
from openwatch_backup.secrets.integrity import encrypt_sealed
TOTAL = int(sys.argv[1])
BLOCK = random.Random(7).randbytes(1024 * 1024 + 13)

class Source:
    def __init__(self, total):
        self.left = total
        self.sha256 = hashlib.sha256()  # of the plaintext, to compare with what openssl gives back
    def read(self, size=-1):
        n = min(self.left, len(BLOCK) if size < 0 else size, len(BLOCK))
        self.left -= n
        self.sha256.update(BLOCK[:n])
        return BLOCK[:n]

encrypt_sealed(Source(3 * 1024 * 1024), io.BytesIO(), b"warm up")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
source = Source(TOTAL)
integrity = encrypt_sealed(source, sys.stdout.buffer, open(sys.argv[2], "rb").read().rstrip(b"\\n"))
sys.stdout.flush()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
json.dump({"growth_kib": after - before, "size": integrity.size, "sha256": source.sha256.hexdigest()},
          open(sys.argv[3], "w"))
"""


@pytest.mark.slow
def test_200_mib_stream_through_openssl_in_bounded_memory(tmp_path: Path) -> None:
    total = 200 * 1024 * 1024 + 5
    script, report = tmp_path / "stream.py", tmp_path / "report.json"
    script.write_text(STREAM_SCRIPT)
    pw = passfile(tmp_path, PASSPHRASE)
    producer = subprocess.Popen([sys.executable, str(script), str(total), str(pw), str(report)], cwd=REPO,
                                stdout=subprocess.PIPE)
    assert producer.stdout is not None
    consumer = subprocess.Popen(["openssl", "enc", "-d", "-aes-256-cbc", "-salt", "-pbkdf2", "-pass", f"file:{pw}"],
                                stdin=producer.stdout, stdout=subprocess.PIPE)
    producer.stdout.close()  # openssl holds the pipe now
    assert consumer.stdout is not None
    got = hashlib.sha256()
    received = 0
    with consumer.stdout:
        while chunk := consumer.stdout.read(1024 * 1024):
            got.update(chunk)
            received += len(chunk)
    assert consumer.wait(timeout=60) == 0
    assert producer.wait(timeout=60) == 0
    assert received == total
    measured = json.loads(report.read_text())
    assert got.hexdigest() == measured["sha256"]
    assert measured["size"] == 16 + (total // 16 + 1) * 16
    assert measured["growth_kib"] < 24 * 1024, measured  # 200 MiB went through; a few 1 MiB chunks stayed


def test_a_streamed_tar_gz_pushed_through_the_sealing_writer_opens_with_the_guides_command(tmp_path: Path) -> None:
    """The layer under the bundle: tarfile pushes into SealingWriter; `openssl enc -d ... | tar xz` gets it back."""
    source = tmp_path / "keys"
    source.mkdir()
    (source / "id_ed25519").write_bytes(content(411))
    (source / "id_ed25519").chmod(0o600)
    bundle = tmp_path / "config_20261130_020000.tar.gz.enc"
    with bundle.open("wb") as out:
        writer = SealingWriter(out.write, PASSPHRASE)
        with tarfile.open(fileobj=writer, mode="w|gz") as tar:  # type: ignore[call-overload]
            tar.add(source, arcname="keys")
        integrity = writer.finish()
    assert verify(bundle, integrity) == (None, None)

    restored = tmp_path / "restored"
    restored.mkdir()
    pw = passfile(tmp_path, PASSPHRASE)
    opened = subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         'openssl enc -d -aes-256-cbc -salt -pbkdf2 -in "$1" -pass "file:$2" | tar xz -C "$3"', "guide",
         str(bundle), str(pw), str(restored)], capture_output=True, timeout=60, check=False)
    assert opened.returncode == 0, opened.stderr
    assert (restored / "keys" / "id_ed25519").read_bytes() == content(411)
    assert (restored / "keys" / "id_ed25519").stat().st_mode & 0o777 == 0o600
