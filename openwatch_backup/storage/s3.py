"""S3 and S3-compatible storage (AWS, MinIO, Ceph, Wasabi). The only module that imports boto3/botocore.

Credentials come only from boto3's own chain (environment, shared files, instance or container role); nothing
here takes, stores or prints one. Keys are the same relative paths as local storage's, below the configured
prefix. botocore retries in adaptive mode (backoff plus client-side rate limiting on SlowDown); whatever still
fails becomes a one-line StorageError subclass naming the cause (storage/s3_errors.py).
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, BinaryIO

import boto3
import botocore.config

from openwatch_backup.core.redact import Redactor
from openwatch_backup.errors import (
    StorageAccessDenied,
    StorageBucketMissing,
    StorageError,
    StorageIntegrityError,
    StorageObjectMissing,
)
from openwatch_backup.storage.base import StoredObject, write_whole
from openwatch_backup.storage.s3_download import open_stream
from openwatch_backup.storage.s3_errors import translate
from openwatch_backup.storage.s3_upload import MIB, SHA256_META, S3Writer, UploadTarget, b64_sha256, part_size_for


@dataclass(frozen=True)
class S3Config:
    """What the factory reads from the settings, plus transfer tuning (not settings: tests and the bench)."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    addressing_style: str = "auto"
    storage_class: str | None = None
    sse: str = "none"
    kms_key_id: str | None = None
    max_attempts: int = 8  # in all, the first try included
    connect_timeout: float = 10
    read_timeout: float = 120
    min_part_size: int = 8 * MIB
    inflight_bytes: int = 64 * MIB
    concurrency: int = 8

    @property
    def location(self) -> str:
        """Where the copies are, as an operator writes it: s3://bucket/prefix."""
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def object_args(self) -> dict[str, str]:
        """Arguments every new object gets: encryption and storage class."""
        args: dict[str, str] = {}
        if self.sse != "none":
            args["ServerSideEncryption"] = self.sse
        if self.sse == "aws:kms" and self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        return args


@dataclass(frozen=True)
class RemoteObject:
    """What a HEAD tells: size, our whole-object sha256 (None when the object lacks it) and the ETag."""

    key: str
    size: int
    sha256: str | None
    etag: str
    modified: datetime


@dataclass(frozen=True)
class OpenUpload:
    """A multipart upload neither completed nor aborted: its key (below our prefix), id and start time."""

    key: str
    upload_id: str
    initiated: datetime


def _bare_403(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and str((response.get("Error") or {}).get("Code")) == "403"


def _check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or key.endswith("/") or any(p in ("..", ".", "") for p in parts):
        raise StorageError(f"refusing storage key {key!r}: keys are relative paths without '..'")
    return key


class S3Storage:
    name = "s3"

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._prefix = config.prefix.strip("/")
        self._session = boto3.session.Session()
        try:
            client_config = botocore.config.Config(
                region_name=config.region,
                retries={"mode": "adaptive", "total_max_attempts": config.max_attempts},
                connect_timeout=config.connect_timeout, read_timeout=config.read_timeout,
                # Every body we send carries its SHA256 in a signed x-amz-checksum-sha256 header that S3 checks,
                # so the SigV4 payload hash would hash each part a second time; botocore skips it over https.
                s3={"addressing_style": config.addressing_style, "payload_signing_enabled": False},
                max_pool_connections=max(10, config.concurrency + 2), tcp_keepalive=True,
                user_agent_appid="openwatch-backup")
            self._client: Any = self._session.client("s3", endpoint_url=config.endpoint_url, config=client_config)
        except Exception as exc:
            raise translate(exc, "set up the S3 client", endpoint=config.endpoint_url or "AWS", bucket=config.bucket,
                            redact=self._redactor()) from None
        self.endpoint: str = self._client.meta.endpoint_url

    # --- naming
    def _object_key(self, key: str) -> str:
        _check_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def location(self, key: str) -> str:
        return f"s3://{self.config.bucket}/{self._object_key(key)}"

    def _error(self, exc: BaseException, action: str) -> StorageError:
        return translate(exc, action, endpoint=self.endpoint, bucket=self.config.bucket, redact=self._redactor())

    def _redactor(self) -> Redactor:
        """Masks the credentials in use in any server text we pass on (looked up only when an error happens)."""
        try:
            credentials = self._session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials is not None else None
        except Exception:
            frozen = None
        return Redactor([frozen.secret_key, frozen.token] if frozen else [])

    # --- Storage protocol
    def check_writable(self) -> None:
        action = f"reach bucket s3://{self.config.bucket}"
        try:
            self._client.head_bucket(Bucket=self.config.bucket)
        except Exception as exc:
            error = self._error(exc, action)
            if isinstance(error, StorageObjectMissing):  # HEAD answers a bare 404: here it is the bucket
                error = StorageBucketMissing(f"cannot {action}: bucket {self.config.bucket!r} does not exist at "
                                             f"{self.endpoint}; create it or fix OPENWATCH_BACKUP_S3_BUCKET")
            raise error from None

    def free_bytes(self) -> int | None:
        return None

    def open_writer(self, key: str, *, size_hint: int | None = None, sha256: str | None = None,
                    on_upload: Callable[[str], None] | None = None) -> S3Writer:
        """A streamed upload. size_hint picks the part size (<= 10,000 parts); sha256, when known (a copy of a
        verified file), goes into the metadata up front and the stream must match it. on_upload is called with
        the multipart upload's id once it is created, before its first part (not at all for a one-part object)."""
        if self.exists(key):
            raise StorageError(f"{self.location(key)} already exists; refusing to overwrite an artifact")
        part_size = part_size_for(size_hint, self.config.min_part_size)
        target = UploadTarget(bucket=self.config.bucket, object_key=self._object_key(key), location=self.location(key),
                              extra=self.config.object_args(), part_size=part_size,
                              inflight=max(1, min(self.config.concurrency, self.config.inflight_bytes // part_size)))
        return S3Writer(self._client, target, self._error, key=key, sha256=sha256, on_upload=on_upload)

    def put_bytes(self, key: str, data: bytes) -> None:
        write_whole(self.open_writer(key, size_hint=len(data)), data)

    def read_bytes(self, key: str) -> bytes:
        with self.open_reader(key) as reader:
            return reader.read()

    def open_reader(self, key: str) -> BinaryIO:
        object_key = self._object_key(key)

        def get(**args: Any) -> dict[str, Any]:
            answer: dict[str, Any] = self._client.get_object(Bucket=self.config.bucket, Key=object_key, **args)
            return answer

        return open_stream(get, self._error, self.location(key))

    def head(self, key: str) -> RemoteObject:
        action = f"look up {self.location(key)}"
        try:
            answer = self._client.head_object(Bucket=self.config.bucket, Key=self._object_key(key))
        except Exception as exc:
            error = self._error(exc, action)
            if isinstance(error, StorageAccessDenied) and _bare_403(exc):
                error = self._explain_403(key, action) or error
            raise error from None
        return RemoteObject(key=key, size=int(answer["ContentLength"]),
                            sha256=(answer.get("Metadata") or {}).get(SHA256_META), etag=str(answer.get("ETag", "")),
                            modified=answer["LastModified"])

    def _explain_403(self, key: str, action: str) -> StorageError | None:
        """A HEAD's 403 has no body: wrong credentials, a wrong clock and a missing permission look the same.
        A one-byte GET of the same key gets an answer with a body that names the cause."""
        try:
            answer = self._client.get_object(Bucket=self.config.bucket, Key=self._object_key(key), Range="bytes=0-0")
        except Exception as exc:
            return self._error(exc, action)
        answer["Body"].close()
        return None

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except StorageObjectMissing:
            return False
        return True

    def size(self, key: str) -> int:
        return self.head(key).size

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Objects below prefix (a folder, as in local storage), sorted by key. A failed list is an error,
        never an empty answer."""
        below = self._object_key(prefix) + "/" if prefix else (f"{self._prefix}/" if self._prefix else "")
        found: list[StoredObject] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.config.bucket,
                                                                                 Prefix=below):
                for item in page.get("Contents", []):
                    name = str(item["Key"])
                    if name.endswith("/"):
                        continue  # a folder marker some tools create
                    found.append(StoredObject(key=name[len(self._prefix) + 1:] if self._prefix else name,
                                              size=int(item["Size"]), modified=item["LastModified"]))
        except Exception as exc:
            raise self._error(exc, f"list s3://{self.config.bucket}/{below}") from None
        found.sort(key=lambda o: o.key)
        return found

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.config.bucket, Key=self._object_key(key))
        except Exception as exc:
            raise self._error(exc, f"delete {self.location(key)}") from None

    # --- beyond the protocol: integrity and incomplete uploads
    def reread_sha256(self, key: str) -> tuple[int, str]:
        """Size and sha256 of the object's bytes as read back now (streamed, nothing kept)."""
        digest, size = hashlib.sha256(), 0
        with self.open_reader(key) as reader:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def verify_object(self, key: str, sha256: str, size: int) -> RemoteObject:
        """Re-read the object; raise StorageIntegrityError unless its bytes, its HEAD and its metadata all match
        the expected sha256 and size (a truncated or altered object)."""
        head = self.head(key)
        got_size, got_sha = self.reread_sha256(key)
        problems = []
        if head.size != size or got_size != size:
            problems.append(f"{got_size} bytes instead of {size}")
        if got_sha != sha256:
            problems.append(f"sha256 {got_sha} instead of {sha256}")
        if head.sha256 != sha256:
            problems.append(f"its metadata says sha256 {head.sha256}")
        if problems:
            raise StorageIntegrityError(f"{self.location(key)} does not match its backup: {'; '.join(problems)}")
        return head

    def incomplete_uploads(self) -> builtins.list[tuple[str, str]]:
        """(key, upload id) of every multipart upload below our prefix that was neither completed nor aborted."""
        return [(upload.key, upload.upload_id) for upload in self.open_uploads()]

    def open_uploads(self) -> builtins.list[OpenUpload]:
        """incomplete_uploads with when each began (the sweeper leaves young ones to whoever is uploading)."""
        below = f"{self._prefix}/" if self._prefix else ""
        found: builtins.list[OpenUpload] = []
        try:
            for page in self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.config.bucket,
                                                                                        Prefix=below):
                found.extend(OpenUpload(key=str(u["Key"])[len(below):], upload_id=str(u["UploadId"]),
                                        initiated=u["Initiated"]) for u in page.get("Uploads", []))
        except Exception as exc:
            raise self._error(exc, f"list the incomplete uploads of s3://{self.config.bucket}/{below}") from None
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.config.bucket, Key=self._object_key(key),
                                                UploadId=upload_id)
        except Exception as exc:
            raise self._error(exc, f"abort the incomplete upload of {self.location(key)}") from None


__all__ = ["OpenUpload", "RemoteObject", "S3Config", "S3Storage", "b64_sha256"]
