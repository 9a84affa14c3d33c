"""Restore some tables' rows into the live database: checked names, one transaction, committed only
once the whole file's sha256 matched the manifest.

pg_restore cannot be stopped from committing: with --single-transaction it commits as soon as it has
the entries it wants, which may be long before the end of the file (and so before the hash is known).
So pg_restore only turns the archive into SQL (`-f -`), and a psql we feed runs that SQL inside a
`BEGIN` we sent. `COMMIT` is written after the last stored byte was hashed and matched. A mismatch,
any error, or a kill of this process at any instant closes psql's input without a COMMIT: PostgreSQL
rolls the transaction back and the live tables are as they were.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator

from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks, needs_gunzip
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.errors import RestoreFailed, RestoreRefused
from openwatch_backup.executors.base import ClientFeeder, ClientProcess
from openwatch_backup.executors.local import describe_exit
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.restore_stream import ARTIFACT_PREFIX, StreamStats
from openwatch_backup.operations.verify import client_for

_READ = 1 << 20
# `pg_restore --list` lines: "215; 0 16390 TABLE DATA public hosts postgres" (the owner last, may be empty).
_ENTRY = re.compile(r"^\d+; \d+ \d+ (?P<desc>TABLE DATA|TABLE) (?P<schema>\S+) (?P<rest>.*)$")
_SHOWN = 20


class _ArchiveReader:
    """pg_restore reading from a pipe we write; its stdout goes, block by block, to `sink` (a thread)."""

    def __init__(self, ctx: OperationContext, argv: list[str], sink: Callable[[bytes], None]) -> None:
        read_end, self._write_end = os.pipe()
        try:
            self.proc: ClientProcess = ctx.executor.start(argv, {}, stdin=read_end)
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)
        self._pump = threading.Thread(target=self._forward, args=(sink,), name="pg_restore-out", daemon=True)
        self._pump.start()

    def _forward(self, sink: Callable[[bytes], None]) -> None:
        while block := self.proc.read(_READ):
            sink(block)

    def write(self, data: bytes) -> bool:
        """False once pg_restore stopped reading (it has what it needs, or it failed: its status says)."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._write_end, view):]
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def finish(self) -> int:
        with contextlib.suppress(OSError):
            os.close(self._write_end)
        self._pump.join()
        code = self.proc.wait()
        self.proc.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        with contextlib.suppress(Exception):
            self.finish()


def _chunks(manifest: Manifest, reader: HashingReader) -> Iterator[bytes]:
    try:
        yield from decoded_chunks(reader, wrapper=manifest.wrapper,
                                  gunzip=needs_gunzip(manifest.format, manifest.compression))
    except UnreadableArtifact as exc:
        raise RestoreFailed(f"{manifest.artifact} is unreadable: {exc}") from None


def archive_tables(ctx: OperationContext, manifest: Manifest, *, data: bool) -> set[str]:
    """The table names the archive holds rows for (data=True) or definitions of, from `pg_restore --list`."""
    client = client_for(manifest, "pg_restore", ctx)
    listing: list[bytes] = []
    lister = _ArchiveReader(ctx, [client.path, "--list"], listing.append)
    try:
        with ctx.storage.open_reader(f"{ARTIFACT_PREFIX}/{manifest.artifact}") as raw:
            for chunk in _chunks(manifest, HashingReader(raw)):
                if not lister.write(chunk):
                    break  # the table of contents is at the start: pg_restore has read it
    except BaseException:
        lister.kill()
        raise
    code = lister.finish()
    if code != 0:
        raise RestoreFailed(ctx.redact(describe_exit("pg_restore --list", code, lister.proc.stderr_tail())))
    wanted = "TABLE DATA" if data else "TABLE"
    names = set()
    for line in b"".join(listing).decode("utf-8", "replace").splitlines():
        match = _ENTRY.match(line)
        if match and match.group("desc") == wanted:
            names.add(match.group("rest").rsplit(" ", 1)[0])  # drop the owner
    return names


def check_table_names(ctx: OperationContext, manifest: Manifest, tables: tuple[str, ...], *, data_only: bool) -> None:
    """Refuse names the archive does not hold, before anything (the safety backup included) starts."""
    held = archive_tables(ctx, manifest, data=data_only)
    missing = [t for t in tables if t not in held]
    if not missing:
        return
    shown = sorted(held)[:_SHOWN]
    more = f" and {len(held) - _SHOWN} more (`pg_restore --list` shows them)" if len(held) > _SHOWN else ""
    holds = f"it holds {', '.join(shown)}{more}" if held else "it holds no table rows"
    what = "rows" if data_only else "definition"
    raise RestoreRefused(f"backup {manifest.run_id} holds no table {missing[0]!r} ({what}); {holds}; "
                         "give bare table names as listed")


class _Sql:
    """psql running what pg_restore writes, inside our own BEGIN; it commits only when told."""

    def __init__(self, ctx: OperationContext, manifest: Manifest, dbname: str) -> None:
        client = client_for(manifest, "psql", ctx)
        env = ctx.target.with_dbname(dbname).libpq_env()
        self.feeder: ClientFeeder = ctx.executor.feed(
            [client.path, "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", f"--dbname={dbname}"], env)
        self.alive = self.feeder.write(b"BEGIN;\n")

    def take(self, block: bytes) -> None:
        if self.alive:  # once psql stopped (an error), drain pg_restore so it is not blocked
            try:
                self.alive = self.feeder.write(block)
            except (ValueError, OSError):  # its stdin closed under us: psql is being killed
                self.alive = False


def restore_rows(ctx: OperationContext, manifest: Manifest, dbname: str, tables: tuple[str, ...], *,
                 data_only: bool, on_bytes: Callable[[int], None] | None = None,
                 before_commit: Callable[[], None] | None = None) -> StreamStats:
    started = time.monotonic()
    argv = [client_for(manifest, "pg_restore", ctx).path, "--no-owner", "--no-privileges", "--file=-"]
    argv += ["--data-only"] if data_only else []
    argv += [f"--table={name}" for name in tables]
    raw = ctx.storage.open_reader(f"{ARTIFACT_PREFIX}/{manifest.artifact}")
    reader = HashingReader(raw)
    sql: _Sql | None = None
    converter: _ArchiveReader | None = None
    try:
        sql = _Sql(ctx, manifest, dbname)
        converter = _ArchiveReader(ctx, argv, sql.take)
        accepting = True
        for chunk in _chunks(manifest, reader):
            if accepting:
                accepting = converter.write(chunk)
            if on_bytes is not None:
                on_bytes(reader.size)
        reader.drain()  # the hash covers every stored byte, whatever pg_restore needed
        converted = converter.finish()
        # The file first: another file's bytes are the cause of whatever pg_restore or psql made of them.
        if reader.hexdigest() != manifest.sha256:
            raise RestoreFailed(f"{manifest.artifact} is not the file this backup wrote (sha256 {reader.hexdigest()}, "
                                f"manifest {manifest.sha256}); the restore was rolled back, nothing changed")
        if converted != 0:
            raise RestoreFailed(ctx.redact(describe_exit("pg_restore", converted, converter.proc.stderr_tail())))
        if not sql.alive:
            raise RestoreFailed(_psql_failure(ctx, sql.feeder))
        if before_commit is not None:
            before_commit()
        if not sql.feeder.write(b"\nCOMMIT;\n"):
            raise RestoreFailed(_psql_failure(ctx, sql.feeder))
        if sql.feeder.finish() != 0:
            raise RestoreFailed(_psql_failure(ctx, sql.feeder))
    except BaseException:
        # psql first: its input ends without COMMIT (PostgreSQL rolls back), and a pump blocked writing to it
        # is released, so pg_restore's pump can be joined.
        if sql is not None:
            sql.feeder.kill()
        if converter is not None:
            converter.kill()
        raise
    finally:
        raw.close()
    return StreamStats(stored_bytes=reader.size, sha256=reader.hexdigest(), seconds=time.monotonic() - started)


def _psql_failure(ctx: OperationContext, feeder: ClientFeeder) -> str:
    code = feeder.finish()
    return ctx.redact(describe_exit("psql", code, feeder.stderr_tail()) + "; the restore was rolled back, nothing "
                      "changed")

