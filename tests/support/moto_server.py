"""moto's S3 server over real HTTP on 127.0.0.1, and what the S3 tests build on it.

Fixtures (tests/conftest.py registers them for every test module): `moto_endpoint` (one server per
session), `aws_env` (test credentials in the environment, no ~/.aws, no instance metadata: nothing leaves
127.0.0.1), `bucket` (a fresh bucket per test), `proxy` (a fault-injecting proxy in front of moto). Plain
helpers: `raw_client` (boto3 straight to moto, to look at what really is stored) and `s3_storage` (our
S3Storage with small parts and few retries, so faults are quick to provoke).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from openwatch_backup.storage.s3 import S3Config, S3Storage
from tests.support.fault_proxy import FaultProxy

ACCESS_KEY = "owb-test-access-key"
SECRET_KEY = "owb-Test-Secret-Key-0123456789abcdef"  # tests assert it never shows in a message
REGION = "us-east-1"
PREFIX = "owb-test"
MIB = 1 << 20


@pytest.fixture(scope="session", name="moto_endpoint")
def moto_endpoint_fixture() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # here: every test session loads this module, few use S3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _credential_env(access_key: str, secret_key: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def use_credentials(monkeypatch: pytest.MonkeyPatch, access_key: str, secret_key: str) -> None:
    """Put these credentials (and only these) where boto3's chain looks first."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _credential_env(access_key, secret_key).items():
        monkeypatch.setenv(name, value)


@pytest.fixture(name="aws_env")
def aws_env_fixture(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    use_credentials(monkeypatch, ACCESS_KEY, SECRET_KEY)
    return monkeypatch


def raw_client(endpoint: str) -> Any:
    """A plain boto3 client to moto itself (never through a fault proxy), for setup and for looking."""
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)


@pytest.fixture(name="bucket")
def bucket_fixture(moto_endpoint: str, aws_env: pytest.MonkeyPatch) -> str:
    name = f"owb-{uuid.uuid4().hex[:16]}"
    raw_client(moto_endpoint).create_bucket(Bucket=name)
    return name


def s3_storage(endpoint: str, bucket_name: str, **tuning: Any) -> S3Storage:
    settings: dict[str, Any] = {"prefix": PREFIX, "region": REGION, "endpoint_url": endpoint,
                                "addressing_style": "path", "min_part_size": 5 * MIB, "max_attempts": 4,
                                "connect_timeout": 2, "read_timeout": 10, **tuning}
    return S3Storage(S3Config(bucket=bucket_name, **settings))


def stored(endpoint: str, bucket_name: str, key: str) -> tuple[bytes, dict[str, str]]:
    """The bytes and user metadata moto holds for our key."""
    answer = raw_client(endpoint).get_object(Bucket=bucket_name, Key=f"{PREFIX}/{key}")
    return answer["Body"].read(), answer.get("Metadata", {})


def open_uploads(endpoint: str, bucket_name: str) -> list[str]:
    """Keys of the multipart uploads moto still holds open in the bucket."""
    answer = raw_client(endpoint).list_multipart_uploads(Bucket=bucket_name)
    return [u["Key"] for u in answer.get("Uploads", [])]


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's moto server (tests/support/fault_proxy.py)."""
    fault_proxy = FaultProxy(moto_endpoint)
    try:
        yield fault_proxy
    finally:
        fault_proxy.close()
