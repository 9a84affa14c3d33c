"""Verify a Redis snapshot: the stored bytes (sha256), then the RDB inside them (header and CRC64).

One pass over the stored `.rdb.zst`: the stored bytes are hashed (the manifest's sha256), zstd undone, and the
RDB streamed into `redis-check-rdb /dev/stdin` where that program exists (it checks the header, every key and
the trailing CRC64, in C), else through core/rdb.py's header and CRC64 check (pure Python, about 10 MB/s).
A redis-check-rdb older than the file's format ("Can't handle RDB format version") is not a verdict on the
file: the Python check reads it again instead. Nothing decompressed is written to disk.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from typing import IO, Any

from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.rdb import RdbChecker, rdb_version
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult, failed
from openwatch_backup.operations.context import OperationContext

CHECK_PROGRAM = "redis-check-rdb"
TOO_NEW = "Can't handle RDB format version"
CHECK_TIMEOUT = 600


def verify_rdb(ctx: OperationContext, manifest: Manifest, key: str, checks: dict[str, Any]) -> VerifyResult:
    """sha256 of the stored file, then the RDB's header and checksum; checks records how it was checked."""
    started = time.monotonic()
    program = shutil.which(CHECK_PROGRAM)
    digest, problem, how = _read(ctx, manifest, key, program)
    if problem is not None and how == "too new":
        digest, problem, how = _read(ctx, manifest, key, None)
    checks["read_seconds"] = round(time.monotonic() - started, 3)
    checks["sha256"] = digest
    checks["rdb_check"] = how
    if digest != manifest.sha256:
        return failed(False, VerifyReason.CHECKSUM, f"{manifest.artifact} has sha256 {digest}, the manifest says "
                      f"{manifest.sha256}", checks)
    if problem is not None:
        # Bytes that decompress but fail the RDB's own CRC64 are altered: a checksum failure, like a sha256 one.
        reason = VerifyReason.CHECKSUM if "CRC" in problem else VerifyReason.UNREADABLE
        return failed(False, reason, f"{manifest.artifact}: {problem}", checks)
    return VerifyResult(deep=False, checks=checks)


def _read(ctx: OperationContext, manifest: Manifest, key: str,
          program: str | None) -> tuple[str, str | None, str]:
    """(sha256 of the stored bytes, the RDB's problem or None, how it was checked)."""
    with ctx.storage.open_reader(key) as raw:
        reader = HashingReader(raw)
        chunks = decoded_chunks(reader, wrapper=manifest.wrapper, gunzip=False)
        try:
            if program is None:
                problem, how = _python_check(chunks), "crc64"
            else:
                problem, how = _program_check(program, chunks)
        except UnreadableArtifact as exc:
            problem, how = str(exc), "zstd"
        reader.drain()
        return reader.hexdigest(), problem, how


def _python_check(chunks: Iterable[bytes]) -> str | None:
    checker = RdbChecker()
    for chunk in chunks:
        checker.update(bytes(chunk))
    return checker.problem()


def _program_check(program: str, chunks: Iterable[bytes]) -> tuple[str | None, str]:
    """Feed the RDB to redis-check-rdb; its verdict, or (problem, "too new") when it cannot read this format."""
    head = b""
    with tempfile.TemporaryFile() as output:  # a file, not a pipe: its output can never block it
        process = subprocess.Popen([program, "/dev/stdin"], stdin=subprocess.PIPE, stdout=output,
                                   stderr=subprocess.STDOUT)
        assert process.stdin is not None
        accepting = True
        try:
            for chunk in chunks:  # keep decompressing after it stopped reading: zstd's own check runs to the end
                if len(head) < 9:
                    head += bytes(chunk[:9 - len(head)])
                if accepting and chunk:
                    try:
                        process.stdin.write(chunk)
                    except BrokenPipeError:
                        accepting = False
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            code = process.wait(timeout=CHECK_TIMEOUT)
        except BaseException:  # a stream that does not decompress, a cancel: the program goes too
            process.kill()
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            process.wait()
            raise
        text = _tail(output)
    if rdb_version(head) is None:
        return "it does not start with an RDB header (REDIS and a 4-digit version)", CHECK_PROGRAM
    if code == 0 and "RDB looks OK" in text:
        return None, CHECK_PROGRAM
    if TOO_NEW in text:
        return f"{CHECK_PROGRAM}: {TOO_NEW}", "too new"
    return f"{CHECK_PROGRAM} rejects it ({_error_line(text) or f'exit status {code}'})", CHECK_PROGRAM


def _tail(output: IO[bytes], limit: int = 64 * 1024) -> str:
    size = output.seek(0, 2)
    output.seek(max(0, size - limit))
    return output.read().decode("utf-8", "replace")


def _error_line(text: str) -> str:
    """The line after redis-check-rdb's `--- RDB ERROR DETECTED ---`: where and what."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "RDB ERROR DETECTED" in line and index + 1 < len(lines):
            return lines[index + 1][:300]
    return lines[-1][:300] if lines else ""
