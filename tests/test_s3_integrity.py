"""What is read back from S3 is what was written, or the read fails: re-read checks, resumed downloads, part sizes."""

from __future__ import annotations

import hashlib
import os

import pytest

from openwatch_backup.errors import StorageIntegrityError, StorageUnreachable
from openwatch_backup.storage.s3_download import REOPEN_ATTEMPTS
from openwatch_backup.storage.s3_upload import MAX_PART, MAX_PARTS, MIB, grown_part_size, part_size_for
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.moto_server import PREFIX, raw_client, s3_storage

DATA = os.urandom(11 * MIB + 5)
SHA = hashlib.sha256(DATA).hexdigest()
KEY = "postgres/openwatch_20261130_020000.dump.zst"


@pytest.fixture
def uploaded(moto_endpoint: str, bucket: str) -> str:
    storage = s3_storage(moto_endpoint, bucket)
    writer = storage.open_writer(KEY, size_hint=len(DATA), sha256=SHA)
    writer.write(DATA)
    writer.commit()
    return bucket


def replace_behind_our_back(endpoint: str, bucket_name: str, data: bytes) -> None:
    """Rewrite the object as a broken tool or a tamperer would: other bytes, the same metadata."""
    raw_client(endpoint).put_object(Bucket=bucket_name, Key=f"{PREFIX}/{KEY}", Body=data, Metadata={"sha256": SHA})


def test_an_intact_copy_verifies(moto_endpoint: str, uploaded: str) -> None:
    head = s3_storage(moto_endpoint, uploaded).verify_object(KEY, SHA, len(DATA))
    assert (head.size, head.sha256) == (len(DATA), SHA)


def test_a_truncated_object_is_caught_by_the_reread(moto_endpoint: str, uploaded: str) -> None:
    replace_behind_our_back(moto_endpoint, uploaded, DATA[: 7 * MIB])
    with pytest.raises(StorageIntegrityError) as info:
        s3_storage(moto_endpoint, uploaded).verify_object(KEY, SHA, len(DATA))
    assert info.value.code == "storage_integrity"
    assert f"{7 * MIB} bytes instead of {len(DATA)}" in info.value.message


def test_an_altered_object_of_the_same_size_is_caught_by_the_reread(moto_endpoint: str, uploaded: str) -> None:
    altered = bytearray(DATA)
    altered[5 * MIB] ^= 0x01
    replace_behind_our_back(moto_endpoint, uploaded, bytes(altered))
    with pytest.raises(StorageIntegrityError) as info:
        s3_storage(moto_endpoint, uploaded).verify_object(KEY, SHA, len(DATA))
    assert info.value.message == (f"s3://{uploaded}/{PREFIX}/{KEY} does not match its backup: sha256 "
                                  f"{hashlib.sha256(altered).hexdigest()} instead of {SHA}")


def test_a_download_cut_mid_body_resumes_where_it_broke(proxy: FaultProxy, uploaded: str) -> None:
    cut = proxy.add(Fault("GET", KEY, action="cut_response"))
    digest = hashlib.sha256()
    with s3_storage(proxy.url, uploaded).open_reader(KEY) as reader:
        while chunk := reader.read(MIB):
            digest.update(chunk)
    assert cut.hits == 1
    assert [r.split(" ")[0] for r in proxy.requests] == ["GET", "GET"]  # the first cut, the second resumed
    assert digest.hexdigest() == SHA


def test_a_download_cut_every_time_fails_rather_than_ends_short(proxy: FaultProxy, uploaded: str) -> None:
    cut = proxy.add(Fault("GET", KEY, action="cut_response", times=100))

    def read_all() -> None:
        with s3_storage(proxy.url, uploaded).open_reader(KEY) as reader:
            while reader.read(MIB):
                pass

    with pytest.raises(StorageUnreachable) as info:
        read_all()
    assert cut.hits >= 1 + REOPEN_ATTEMPTS  # resumed while each answer brought bytes, then given up
    assert info.value.message.startswith(f"cannot read s3://{uploaded}/{PREFIX}/{KEY}: ")


@pytest.mark.parametrize(("size", "expected"), [
    (None, 8 * MIB), (0, 8 * MIB), (400 * MIB, 8 * MIB), (100 * 1024 * MIB, 12 * MIB),
    (5 * 1024 * 1024 * MIB, 583 * MIB)])
def test_part_size_keeps_within_ten_thousand_parts(size: int | None, expected: int) -> None:
    part = part_size_for(size, 8 * MIB)
    assert part == expected
    if size:
        assert -(-size // part) <= 9_000


def test_a_stream_outgrowing_its_hint_grows_its_parts_instead_of_running_out() -> None:
    base = 8 * MIB
    sizes = [grown_part_size(n, base) for n in range(1, MAX_PARTS + 1)]
    assert (sizes[0], sizes[4_999], sizes[5_000]) == (base, base, 2 * base)
    assert max(sizes) == MAX_PART
    assert sum(sizes) > 5 * MAX_PARTS * base  # over 5x what 10,000 parts of the base size hold (437 GiB for 8 MiB)


def test_memory_stays_at_inflight_plus_one_part_whatever_the_size(moto_endpoint: str, bucket: str) -> None:
    storage = s3_storage(moto_endpoint, bucket, inflight_bytes=10 * MIB)  # 5 MiB parts: 2 in flight
    writer = storage.open_writer("postgres/big.dump", size_hint=40 * MIB)
    digest = hashlib.sha256()
    for _ in range(40):
        block = os.urandom(MIB)
        digest.update(block)
        writer.write(block)
    writer.commit()
    assert writer._buffers <= 3  # 2 uploading + 1 filling, reused for all 8 parts
    head = storage.head("postgres/big.dump")
    assert (head.size, head.sha256) == (40 * MIB, digest.hexdigest())
