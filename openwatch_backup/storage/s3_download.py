"""A streaming read of an S3 object: bytes flow from the GET into the caller's pipeline, no temporary copy.

A connection that breaks mid-object is reopened at the byte where it broke (Range + If-Match on the ETag, so
an object replaced meanwhile is an error rather than a splice of two objects), a few times, before the read
fails. A body that ends before its Content-Length is a failed read, never a short success.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

from openwatch_backup.errors import StorageError, StorageUnreachable

REOPEN_ATTEMPTS = 3
READ_BUFFER = 1 << 20


class S3RawReader(io.RawIOBase):
    """Raw reader over get_object. `get(**range_args)` returns the get_object answer."""

    def __init__(self, get: Callable[..., dict[str, Any]], translate: Callable[[BaseException, str], StorageError],
                 location: str) -> None:
        super().__init__()
        self._get = get
        self._translate = translate
        self._location = location
        self._pos = 0
        answer = self._open()
        self.size = int(answer["ContentLength"])
        self.etag = str(answer.get("ETag", ""))
        self.metadata: dict[str, str] = dict(answer.get("Metadata") or {})

    def _open(self, **args: Any) -> dict[str, Any]:
        try:
            answer = self._get(**args)
        except Exception as exc:
            raise self._translate(exc, f"read {self._location}") from None
        self._body = answer["Body"]
        return answer

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view) or self._pos >= self.size:
            return 0
        failures = 0
        error: Exception | None
        while True:
            try:
                data = self._body.read(min(len(view), self.size - self._pos))
            except StorageError:
                raise
            except Exception as exc:
                data, error = b"", exc
            else:
                error = None
                if data:
                    view[: len(data)] = data
                    self._pos += len(data)
                    return len(data)
            failures += 1
            if failures > REOPEN_ATTEMPTS:
                if error is not None:
                    raise self._translate(error, f"read {self._location}") from None
                raise StorageUnreachable(f"cannot read {self._location}: the connection ended at byte {self._pos} "
                                         f"of {self.size} {failures} times; try again")
            self._reopen()

    def _reopen(self) -> None:
        self._close_body()
        self._open(Range=f"bytes={self._pos}-", IfMatch=self.etag)

    def _close_body(self) -> None:
        # A broken connection may fail to close; it is being replaced or dropped anyway.
        with contextlib.suppress(Exception):
            self._body.close()

    def close(self) -> None:
        if not self.closed:
            self._close_body()
        super().close()


def open_stream(get: Callable[..., dict[str, Any]], translate: Callable[[BaseException, str], StorageError],
                location: str) -> io.BufferedReader:
    return io.BufferedReader(S3RawReader(get, translate, location), buffer_size=READ_BUFFER)
