"""Uploads through a fault-injecting proxy in front of moto: what ends up stored, and what is left behind.

Each fault counts its hits, so a test proves the fault really happened before it judges the outcome.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from openwatch_backup.errors import StorageAccessDenied, StorageClockSkew, StorageError, StorageUnreachable
from openwatch_backup.storage.probe import probe
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.moto_server import open_uploads, raw_client, s3_storage, stored

MIB = 1 << 20
DATA = os.urandom(16 * MIB + 123)  # four 5 MiB parts: three full, one short


def upload(storage_url: str, bucket_name: str, key: str, data: bytes = DATA, **tuning: object) -> None:
    storage = s3_storage(storage_url, bucket_name, **tuning)
    writer = storage.open_writer(key, size_hint=len(data))
    try:
        for start in range(0, len(data), MIB):
            writer.write(data[start:start + MIB])
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def assert_stored_whole(moto_endpoint: str, bucket_name: str, key: str, data: bytes = DATA) -> None:
    body, metadata = stored(moto_endpoint, bucket_name, key)
    assert body == data
    assert metadata == {"sha256": hashlib.sha256(data).hexdigest()}
    assert open_uploads(moto_endpoint, bucket_name) == []


def test_slowdown_and_server_errors_on_parts_are_retried(proxy: FaultProxy, moto_endpoint: str,
                                                         bucket: str) -> None:
    slowdown = proxy.add(Fault("PUT", "partNumber=2", status=503, code="SlowDown", times=2))
    internal = proxy.add(Fault("PUT", "partNumber=3", status=500, code="InternalError",
                               message="We encountered an internal error. Please try again."))
    upload(proxy.url, bucket, "postgres/retried.dump")
    assert (slowdown.hits, internal.hits) == (2, 1)
    assert_stored_whole(moto_endpoint, bucket, "postgres/retried.dump")


def test_a_connection_reset_in_the_middle_of_a_part_is_retried(proxy: FaultProxy, moto_endpoint: str,
                                                               bucket: str) -> None:
    reset = proxy.add(Fault("PUT", "partNumber=2", action="reset_mid_body"))
    upload(proxy.url, bucket, "postgres/reset.dump")
    assert reset.hits == 1
    assert_stored_whole(moto_endpoint, bucket, "postgres/reset.dump")


def test_slowdown_that_never_ends_fails_and_aborts_the_upload(proxy: FaultProxy, moto_endpoint: str,
                                                              bucket: str) -> None:
    endless = proxy.add(Fault("PUT", "partNumber=3", status=503, code="SlowDown", times=1000))
    with pytest.raises(StorageUnreachable) as info:
        upload(proxy.url, bucket, "postgres/throttled.dump", max_attempts=3)
    assert endless.hits == 3
    assert "answered 503 SlowDown after 3 attempt(s)" in info.value.message
    assert "\n" not in info.value.message
    assert open_uploads(moto_endpoint, bucket) == []
    assert "Contents" not in raw_client(moto_endpoint).list_objects_v2(Bucket=bucket)


def test_endpoint_down_for_the_whole_upload(proxy: FaultProxy, moto_endpoint: str, bucket: str) -> None:
    proxy.down = True
    with pytest.raises(StorageUnreachable) as info:
        upload(proxy.url, bucket, "postgres/down.dump", max_attempts=2)
    assert info.value.code == "storage_unreachable"
    assert info.value.message.startswith("cannot look up s3://")
    assert f"the connection to {proxy.url} failed or was reset" in info.value.message
    assert open_uploads(moto_endpoint, bucket) == []


def test_endpoint_gone_mid_upload_leaves_an_upload_the_sweeper_can_abort(proxy: FaultProxy, moto_endpoint: str,
                                                                          bucket: str) -> None:
    storage = s3_storage(proxy.url, bucket, max_attempts=2)
    writer = storage.open_writer("postgres/cut.dump", size_hint=len(DATA))
    writer.write(DATA[: 6 * MIB])  # part 1 is on its way
    proxy.down = True

    def finish() -> None:  # a write may meet the failed part first, or else the commit does
        writer.write(DATA[6 * MIB:])
        writer.commit()

    with pytest.raises(StorageUnreachable) as info:
        finish()
    assert "is left for the sweeper" in info.value.message
    assert open_uploads(moto_endpoint, bucket) == ["owb-test/postgres/cut.dump"]
    proxy.down = False
    left = storage.incomplete_uploads()
    assert [key for key, _ in left] == ["postgres/cut.dump"]
    for key, upload_id in left:
        storage.abort_upload(key, upload_id)
    assert open_uploads(moto_endpoint, bucket) == []


def test_access_denied_on_list_is_an_error_not_an_empty_list(proxy: FaultProxy, bucket: str) -> None:
    storage = s3_storage(proxy.url, bucket)
    storage.put_bytes("postgres/a.manifest.json", b"{}")
    denied = proxy.add(Fault("GET", "list-type=2", status=403, code="AccessDenied", message="Access Denied"))
    with pytest.raises(StorageAccessDenied) as info:
        storage.list("postgres")
    assert denied.hits == 1
    assert info.value.code == "storage_access_denied"
    assert info.value.message.startswith(f"cannot list s3://{bucket}/owb-test/postgres/: access denied (AccessDenied)")


def test_clock_skew_is_named_even_on_a_bodiless_head(proxy: FaultProxy, bucket: str) -> None:
    """S3 answers a skewed HEAD with a bare 403; the server's Date header tells it from AccessDenied."""
    skew = proxy.add(Fault(None, "", status=403, code="RequestTimeTooSkewed", times=100, clock_offset=3600,
                           message="The difference between the request time and the current time is too large."))
    result = probe(s3_storage(proxy.url, bucket))
    assert skew.hits == 1  # the put step's HEAD: refused, not retried
    assert not result.ok
    failed = result.failed
    assert failed is not None
    assert (failed.name, failed.code) == ("put", StorageClockSkew.code)
    assert ("clock is more than 15 minutes off (RequestTimeTooSkewed; the server's clock is +60 min from ours)"
            in result.summary())


def test_a_bare_403_with_a_right_clock_stays_access_denied(proxy: FaultProxy, bucket: str) -> None:
    """The HEAD's bare 403 is explained by a one-byte GET, whose answer names AccessDenied."""
    denied = proxy.add(Fault(None, "", status=403, code="AccessDenied", times=100))
    with pytest.raises(StorageAccessDenied) as info:
        s3_storage(proxy.url, bucket).exists("postgres/a.dump")
    assert proxy.requests == [f"HEAD /{bucket}/owb-test/postgres/a.dump", f"GET /{bucket}/owb-test/postgres/a.dump"]
    assert denied.hits == 2
    assert info.value.message == (
        f"cannot look up s3://{bucket}/owb-test/postgres/a.dump: access denied (AccessDenied); these credentials need "
        "s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on bucket "
        f"'{bucket}' (check its policy, Object Lock and the KMS key)")


def test_a_stream_that_differs_from_its_expected_sha256_is_not_stored(moto_endpoint: str, bucket: str) -> None:
    storage = s3_storage(moto_endpoint, bucket)
    writer = storage.open_writer("postgres/changed.dump", size_hint=len(DATA), sha256="0" * 64)
    for start in range(0, len(DATA), MIB):
        writer.write(DATA[start:start + MIB])
    with pytest.raises(StorageError, match=f"not the expected {'0' * 64}") as info:
        writer.commit()
    assert info.value.code == "storage_integrity"
    assert not storage.exists("postgres/changed.dump")
    assert open_uploads(moto_endpoint, bucket) == []


def test_a_store_without_sha256_checksums_still_gets_a_verified_upload(proxy: FaultProxy, moto_endpoint: str,
                                                                        bucket: str) -> None:
    """An older S3-compatible store refuses the checksum header; the upload goes on without per-part checksums
    and still ends with the whole-file sha256 in the metadata and the HEAD check."""
    refused = proxy.add(Fault("POST", "?uploads", status=501, code="NotImplemented", header="x-amz-checksum-algorithm",
                              message="A header you provided implies functionality that is not implemented."))
    upload(proxy.url, bucket, "postgres/plain.dump")
    assert refused.hits == 1
    assert_stored_whole(moto_endpoint, bucket, "postgres/plain.dump")
    completed = next(i for i, r in enumerate(proxy.requests) if r.startswith("POST ") and "uploadId=" in r)
    assert len([r for r in proxy.requests[:completed] if "partNumber=" in r]) == 4  # each part sent once


def test_a_part_damaged_on_the_way_fails_and_is_never_retried_without_checksums(proxy: FaultProxy, moto_endpoint: str,
                                                                                 bucket: str) -> None:
    damaged = proxy.add(Fault("PUT", "partNumber=2", status=400, code="BadDigest", times=1000,
                              message="The SHA256 you specified did not match the calculated checksum."))
    with pytest.raises(StorageError) as info:
        upload(proxy.url, bucket, "postgres/damaged.dump")
    assert damaged.hits == 1
    assert info.value.message.startswith("cannot upload a part of s3://")
    assert "400 BadDigest" in info.value.message
    assert open_uploads(moto_endpoint, bucket) == []
