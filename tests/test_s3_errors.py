"""Each S3 failure an operator meets becomes one line naming the cause and the fix, never a secret.

Credentials and permissions are judged by moto itself (its IAM authentication switched on for the test), TLS
by a real handshake against a plain-HTTP port, a missing bucket by moto's NoSuchBucket. DNS cannot be provoked
without traffic leaving 127.0.0.1, so that case is classified from the exception botocore raises for it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError
from moto.core.authorization import enable_iam_authentication
from urllib3.exceptions import NameResolutionError

from openwatch_backup.errors import (
    RunCancelled,
    StorageAccessDenied,
    StorageBucketMissing,
    StorageCredentialsError,
    StorageTLSError,
    StorageUnreachable,
)
from openwatch_backup.storage.probe import probe
from openwatch_backup.storage.s3_errors import translate
from tests.support.moto_server import REGION, SECRET_KEY, raw_client, s3_storage, use_credentials

WRITE_ONLY_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
     "Resource": "*"}]}


def one_line_without(secret: str, message: str) -> None:
    assert "\n" not in message
    assert secret not in message


@pytest.fixture
def iam_user(moto_endpoint: str, bucket: str) -> dict[str, str]:
    """An IAM user that may put and get objects but not list the bucket, with its access key."""
    iam: Any = boto3.client("iam", endpoint_url=moto_endpoint, region_name=REGION)
    name = f"owb-{bucket}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="write-only", PolicyDocument=json.dumps(WRITE_ONLY_POLICY))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


@pytest.fixture
def iam_enforced() -> Iterator[None]:
    with enable_iam_authentication():
        yield


def test_a_wrong_secret_key_is_one_line_without_the_secret(moto_endpoint: str, bucket: str, iam_user: dict[str, str],
                                                           aws_env: pytest.MonkeyPatch, iam_enforced: None) -> None:
    wrong = "Wr0ng-Secret-Key-That-Must-Not-Leak-0000"
    use_credentials(aws_env, iam_user["id"], wrong)
    with pytest.raises(StorageCredentialsError) as info:
        s3_storage(moto_endpoint, bucket).list("postgres")
    assert info.value.code == "storage_credentials"
    assert info.value.message.startswith(f"cannot list s3://{bucket}/owb-test/postgres/: the server refused the "
                                         "credentials (SignatureDoesNotMatch)")
    one_line_without(wrong, info.value.message)
    one_line_without(iam_user["secret"], info.value.message)


def test_an_unknown_access_key_is_named_without_the_secret(moto_endpoint: str, bucket: str,
                                                           aws_env: pytest.MonkeyPatch, iam_enforced: None) -> None:
    result = probe(s3_storage(moto_endpoint, bucket))
    failed = result.failed
    assert failed is not None
    assert (failed.name, failed.code) == ("put", "storage_credentials")
    assert "the server refused the credentials (InvalidAccessKeyId)" in result.summary()
    one_line_without(SECRET_KEY, result.summary())


def test_access_denied_on_list_is_an_error_never_no_backups(moto_endpoint: str, bucket: str, iam_user: dict[str, str],
                                                            aws_env: pytest.MonkeyPatch) -> None:
    raw_client(moto_endpoint).put_object(Bucket=bucket, Key="owb-test/postgres/a.manifest.json", Body=b"{}")
    use_credentials(aws_env, iam_user["id"], iam_user["secret"])
    storage = s3_storage(moto_endpoint, bucket)
    with enable_iam_authentication():
        assert storage.read_bytes("postgres/a.manifest.json") == b"{}"  # the user may read: only listing is denied
        with pytest.raises(StorageAccessDenied) as info:
            storage.list("postgres")
    assert info.value.message.startswith(f"cannot list s3://{bucket}/owb-test/postgres/: access denied (AccessDenied)")
    one_line_without(iam_user["secret"], info.value.message)


def test_no_credentials_anywhere(moto_endpoint: str, bucket: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageCredentialsError) as info:
        s3_storage(moto_endpoint, bucket).list()
    assert info.value.message == (f"cannot list s3://{bucket}/owb-test/: no usable S3 credentials were found; set "
                                  "them in boto3's chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials "
                                  "(AWS_PROFILE), or an instance or container role")


def test_a_missing_bucket_is_named(moto_endpoint: str, aws_env: pytest.MonkeyPatch) -> None:
    storage = s3_storage(moto_endpoint, "owb-no-such-bucket")
    with pytest.raises(StorageBucketMissing) as listed:
        storage.list()
    assert listed.value.message == (f"cannot list s3://owb-no-such-bucket/owb-test/: bucket 'owb-no-such-bucket' does "
                                    f"not exist at {moto_endpoint} (NoSuchBucket); create it or fix "
                                    "OPENWATCH_BACKUP_S3_BUCKET")
    with pytest.raises(StorageBucketMissing):
        storage.check_writable()
    result = probe(storage)
    assert result.failed is not None
    assert (result.failed.name, result.failed.code) == ("put", "storage_no_bucket")


def test_tls_to_a_plain_http_port_is_a_tls_error(moto_endpoint: str, bucket: str,
                                                 aws_env: pytest.MonkeyPatch) -> None:
    https = moto_endpoint.replace("http://", "https://")
    result = probe(s3_storage(https, bucket, max_attempts=1))
    failed = result.failed
    assert failed is not None
    assert (failed.name, failed.code) == ("put", StorageTLSError.code)
    assert f"TLS with {https} failed" in (failed.message or "")


def test_a_closed_port_is_unreachable(bucket: str, aws_env: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(StorageUnreachable) as info:
        s3_storage(f"http://127.0.0.1:{port}", bucket, max_attempts=1).check_writable()
    assert info.value.message == (f"cannot reach bucket s3://{bucket}: the connection to http://127.0.0.1:{port} "
                                  "refused; check that the endpoint is up and reachable "
                                  "(OPENWATCH_BACKUP_S3_ENDPOINT_URL)")


def test_dns_failure_is_named_dns() -> None:
    cause = NameResolutionError("minio.example", None, socket.gaierror(-2, "Name or service not known"))  # type: ignore[arg-type]
    error = translate(EndpointConnectionError(endpoint_url="https://minio.example/b", error=cause), "list s3://b/",
                      endpoint="https://minio.example", bucket="b")
    assert isinstance(error, StorageUnreachable)
    assert error.message.startswith("cannot list s3://b/: the name of https://minio.example does not resolve (DNS)")


def test_server_text_is_passed_through_the_redactor() -> None:
    response = {"Error": {"Code": "InvalidArgument", "Message": f"bad header near {SECRET_KEY}"},
                "ResponseMetadata": {"HTTPStatusCode": 400}}
    exc = type("ClientError", (Exception,), {})("x")
    exc.response = response  # type: ignore[attr-defined]
    from openwatch_backup.core.redact import Redactor

    error = translate(exc, "put s3://b/k", endpoint="http://e", bucket="b", redact=Redactor([SECRET_KEY]))
    assert error.message == "cannot put s3://b/k: the server answered 400 InvalidArgument: bad header near ***"


def test_missing_credentials_class_is_translated() -> None:
    error = translate(NoCredentialsError(), "list s3://b/", endpoint="http://e", bucket="b")
    assert isinstance(error, StorageCredentialsError)


def test_our_own_error_raised_inside_a_boto3_call_passes_through() -> None:
    """A SIGTERM's RunCancelled, raised by the signal handler while boto3 works, keeps its code and exit 130."""
    cancelled = RunCancelled("cancelled by SIGTERM (kill, timeout, docker stop or systemd)")
    with pytest.raises(RunCancelled) as info:
        translate(cancelled, "set up the S3 client", endpoint="AWS", bucket="b")
    assert info.value is cancelled
