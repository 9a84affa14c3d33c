"""A streamed upload to S3: bytes pushed by write() leave in parts, never staged whole.

Small streams (under one part) become one PutObject at commit. Larger ones become a multipart upload
created when the first part is full. At most `inflight` parts are held in memory at once (the producer
waits for a free slot), so memory stays near (inflight + 1) x part size whatever the object size.
Every part carries its SHA256 checksum, which S3 checks on arrival. The object's metadata holds the
whole-stream sha256 (known up front when the caller passes it, as an off-site copy of a verified file does;
otherwise set by a server-side copy after completion). After completion a HEAD must show that size and that
sha256, or the object is deleted and the commit fails. Any failure, and abort(), abort the multipart upload.
"""

from __future__ import annotations

import base64
import hashlib
import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from openwatch_backup.errors import StorageError, StorageIntegrityError

MIB = 1 << 20
MIN_PART = 5 * MIB  # S3's smallest non-final part
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000
PLANNED_PARTS = 9_000  # headroom: a stream somewhat larger than its size hint still fits
SHA256_META = "sha256"
# What a store without SHA256 checksum support answers to them. Never BadDigest or a checksum mismatch: those say
# the bytes were damaged on the way, and are failures.
_CHECKSUM_REFUSALS = {"NotImplemented", "InvalidArgument", "InvalidRequest"}


def part_size_for(size_hint: int | None, minimum: int) -> int:
    """The part size for a stream of about size_hint bytes: whole MiB, at least `minimum`, <= 9,000 parts."""
    base = max(minimum, MIN_PART)
    if not size_hint or size_hint <= 0:
        return base
    needed = -(-size_hint // PLANNED_PARTS)
    return min(MAX_PART, max(base, -(-needed // MIB) * MIB))


def grown_part_size(part_number: int, base: int) -> int:
    """Part size for part `part_number` when a stream outgrows its hint: doubled each time the parts left halve.

    Parts 1-5,000 use base, the next 2,500 twice that, and so on, so a stream never needs part 10,001 before
    reaching hundreds of times its planned size. (S3 allows parts of different sizes.)
    """
    remaining, threshold, size = MAX_PARTS - part_number + 1, MAX_PARTS // 2, base
    while remaining <= threshold and threshold > 1:
        size, threshold = size * 2, threshold // 2
    return min(size, MAX_PART)


def b64_sha256(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass(frozen=True)
class UploadTarget:
    """Where and how the object is written; `extra` holds SSE and storage-class arguments."""

    bucket: str
    object_key: str
    location: str
    extra: dict[str, str]
    part_size: int
    inflight: int
    checksums: bool = True


class S3Writer:
    """ArtifactWriter for S3. `translate(exc, action)` turns any client exception into a StorageError."""

    def __init__(self, client: Any, target: UploadTarget, translate: Callable[[BaseException, str], StorageError],
                 *, key: str, sha256: str | None = None, on_upload: Callable[[str], None] | None = None) -> None:
        self.key = key
        # Told the multipart upload's id as soon as it exists, before any part is sent: an off-site copy records
        # it, so a process killed mid-upload leaves an upload the sweeper can find and abort.
        self._on_upload = on_upload
        self._client = client
        self._target = target
        self._translate = translate
        self._expected_sha256 = sha256
        self._hash = hashlib.sha256()
        self._size = 0
        # Part buffers are reused: at most `inflight` are uploading while one more fills, so memory is bounded
        # by (inflight + 1) x part size, and no part is copied on its way out.
        self._buffer = bytearray()
        self._filled = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._buffers = 0
        self._part_number = 0
        self._parts: dict[int, dict[str, Any]] = {}
        self._futures: list[Future[None]] = []
        self._failure: BaseException | None = None  # the first part failure, set by a worker thread
        self._checksums = target.checksums
        self._pool: ThreadPoolExecutor | None = None
        self.upload_id: str | None = None
        self._done = False
        self.abort_error: StorageError | None = None

    # --- the producer side
    def write(self, data: bytes) -> int:
        if self._done:
            raise StorageError(f"write to {self._target.location} after commit or abort")
        self._raise_part_failure()
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._size += len(view)
        while view:
            if self._filled == len(self._buffer):
                if self._filled:
                    self._send_part(self._buffer, self._filled)
                self._buffer, self._filled = self._take_buffer(self._current_part_size()), 0
            room = min(len(view), len(self._buffer) - self._filled)
            self._buffer[self._filled:self._filled + room] = view[:room]
            self._filled += room
            view = view[room:]
        return len(data)

    def _current_part_size(self) -> int:
        return grown_part_size(self._part_number + 1, self._target.part_size)

    def _take_buffer(self, size: int) -> bytearray:
        """A free part buffer of `size` bytes; waits for an uploaded part's buffer when all are in use."""
        while True:
            try:
                buffer = self._free.get_nowait()
            except queue.Empty:
                if self._buffers <= self._target.inflight:  # inflight uploading + this one filling
                    self._buffers += 1
                    return bytearray(size)
                try:
                    buffer = self._free.get(timeout=1)
                except queue.Empty:
                    self._raise_part_failure()
                    continue
            self._raise_part_failure()
            return buffer if len(buffer) == size else bytearray(size)  # a grown part size

    def _send_part(self, buffer: bytearray, length: int) -> None:
        if self.upload_id is None:
            self._create()
        if self._part_number >= MAX_PARTS:
            self._fail(StorageError(f"{self._target.location} needs more than {MAX_PARTS} parts; give the upload a "
                                    "size hint near the real size"))
        self._part_number += 1
        assert self._pool is not None
        self._futures.append(self._pool.submit(self._upload_part, self._part_number, buffer, length))

    def _create(self) -> None:
        args: dict[str, Any] = {"Bucket": self._target.bucket, "Key": self._target.object_key, **self._target.extra}
        if self._expected_sha256:
            args["Metadata"] = {SHA256_META: self._expected_sha256}
        if self._checksums:
            args["ChecksumAlgorithm"] = "SHA256"
        try:
            self.upload_id = self._with_checksum_fallback(self._client.create_multipart_upload, args,
                                                          "ChecksumAlgorithm")["UploadId"]
        except Exception as exc:
            self._done = True
            raise self._translate(exc, f"start the upload of {self._target.location}") from None
        self._pool = ThreadPoolExecutor(max_workers=self._target.inflight, thread_name_prefix="s3-part")
        if self._on_upload is not None:
            try:
                self._on_upload(self.upload_id)
            except BaseException:
                self.abort()  # not recorded: leave no upload nobody knows about
                raise

    def _upload_part(self, number: int, buffer: bytearray, length: int) -> None:
        data: bytes | bytearray = buffer if length == len(buffer) else bytes(memoryview(buffer)[:length])
        try:
            args: dict[str, Any] = {"Bucket": self._target.bucket, "Key": self._target.object_key,
                                    "UploadId": self.upload_id, "PartNumber": number, "Body": data,
                                    "ContentLength": len(data)}
            checksum = b64_sha256(data) if self._checksums else None
            if checksum:
                args["ChecksumSHA256"] = checksum
            try:
                answer = self._client.upload_part(**args)
            except BaseException as exc:
                self._failure = self._failure or exc
                raise
            if checksum and answer.get("ChecksumSHA256") not in (None, checksum):
                self._failure = self._failure or StorageIntegrityError(
                    f"part {number} of {self._target.location} arrived with another sha256 than was sent")
                raise self._failure
            part: dict[str, Any] = {"PartNumber": number, "ETag": answer["ETag"]}
            if checksum:
                part["ChecksumSHA256"] = checksum
            self._parts[number] = part
        finally:
            self._free.put(buffer)

    def _raise_part_failure(self) -> None:
        if self._failure is not None:  # O(1): write() asks this for every chunk
            self._fail(self._translate(self._failure, f"upload a part of {self._target.location}"))

    def _fail(self, error: StorageError) -> None:
        self.abort()
        if self.abort_error is not None:
            raise type(error)(f"{error.message}; {self.abort_error.message}") from None
        raise error

    # --- the end
    def commit(self) -> None:
        if self._done:
            raise StorageError(f"commit of {self._target.location} after commit or abort")
        sha256 = self._hash.hexdigest()
        if self._expected_sha256 and sha256 != self._expected_sha256:
            self._fail(StorageIntegrityError(
                f"the bytes sent to {self._target.location} have sha256 {sha256}, not the expected "
                f"{self._expected_sha256} (did the source change while it was read?); nothing was stored"))
        try:
            if self.upload_id is None:
                self._put_whole(sha256)
            else:
                if self._filled:
                    self._send_part(self._buffer, self._filled)
                self._buffer, self._filled = bytearray(), 0
                self._complete(sha256)
        except StorageError as exc:
            if self._done:  # a part failure already aborted the upload
                raise
            self._fail(exc)
        except Exception as exc:
            self._fail(self._translate(exc, f"upload {self._target.location}"))
        self._done = True
        self._shutdown()
        self._check_head(sha256)

    def _put_whole(self, sha256: str) -> None:
        data = bytes(memoryview(self._buffer)[:self._filled])
        self._buffer, self._filled = bytearray(), 0
        args: dict[str, Any] = {"Bucket": self._target.bucket, "Key": self._target.object_key, "Body": data,
                                "Metadata": {SHA256_META: sha256}, **self._target.extra}
        if self._checksums:
            args["ChecksumSHA256"] = b64_sha256(data)
        self._with_checksum_fallback(self._client.put_object, args, "ChecksumSHA256")

    def _with_checksum_fallback(self, call: Callable[..., dict[str, Any]], args: dict[str, Any],
                                checksum_arg: str) -> dict[str, Any]:
        """call(**args); an endpoint that refuses SHA256 checksums (an older S3-compatible store answers 400 or
        501 to the header) gets the request again without them, and so do this upload's parts. The whole-object
        sha256 in the metadata and the HEAD check still hold."""
        try:
            return call(**args)
        except Exception as exc:
            response = getattr(exc, "response", None)
            error = (response or {}).get("Error", {}) if isinstance(response, dict) else {}
            if checksum_arg not in args or error.get("Code") not in _CHECKSUM_REFUSALS:
                raise
        self._checksums = False
        return call(**{k: v for k, v in args.items() if k != checksum_arg})

    def _complete(self, sha256: str) -> None:
        for future in self._futures:
            if not future.cancelled():
                future.exception()  # wait for every part
        self._raise_part_failure()
        parts = [self._parts[n] for n in sorted(self._parts)]
        if len(parts) != self._part_number:
            raise StorageError(f"{self._target.location}: {self._part_number - len(parts)} part(s) never arrived")
        self._client.complete_multipart_upload(Bucket=self._target.bucket, Key=self._target.object_key,
                                               UploadId=self.upload_id, MultipartUpload={"Parts": parts})
        self.upload_id = None  # complete: nothing left to abort
        if not self._expected_sha256:
            # The sha256 was unknown when the upload began: a server-side copy onto itself sets the metadata.
            self._client.copy({"Bucket": self._target.bucket, "Key": self._target.object_key}, self._target.bucket,
                              self._target.object_key,
                              ExtraArgs={"Metadata": {SHA256_META: sha256}, "MetadataDirective": "REPLACE",
                                         **self._target.extra})

    def _check_head(self, sha256: str) -> None:
        try:
            head = self._client.head_object(Bucket=self._target.bucket, Key=self._target.object_key)
        except Exception as exc:
            raise self._translate(exc, f"check {self._target.location} after its upload") from None
        size, recorded = int(head["ContentLength"]), (head.get("Metadata") or {}).get(SHA256_META)
        if size == self._size and recorded == sha256:
            return
        try:
            self._client.delete_object(Bucket=self._target.bucket, Key=self._target.object_key)
        except Exception as exc:
            raise self._translate(exc, f"delete the bad upload {self._target.location}") from None
        raise StorageIntegrityError(f"{self._target.location} was stored as {size} bytes with sha256 {recorded}, "
                                    f"not {self._size} bytes with sha256 {sha256}; the object was deleted")

    def abort(self) -> None:
        """Drop the buffered bytes and the multipart upload. Never raises: a failed abort is kept in abort_error."""
        self._done = True
        self._buffer, self._filled = bytearray(), 0
        for future in self._futures:
            future.cancel()
        self._shutdown()
        if self.upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(Bucket=self._target.bucket, Key=self._target.object_key,
                                                UploadId=self.upload_id)
            self.upload_id = None
        except Exception as exc:
            cause = self._translate(exc, "abort").message.split(": ", 1)[-1].split(";")[0]
            self.abort_error = StorageError(f"its incomplete upload {self.upload_id} could not be aborted either "
                                            f"({cause}) and is left for the sweeper or the bucket's "
                                            "abort-incomplete-multipart lifecycle rule")

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
