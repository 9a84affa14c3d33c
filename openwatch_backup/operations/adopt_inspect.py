"""Read one of the guide's backup files before adopting it: is it whole, and what must its manifest say?

Nothing is written and no run is recorded here: a file that fails is skipped with the one line NotAdoptable
carries, and the catalog never sees a failed "backup" for it. Each family is read to its end:
  - a dump: `pg_restore --list` (a custom-format archive, its pg_dump and server versions, its database), then
    `pg_restore --data-only` of the counted tables and alembic_version, whose COPY lines give the row counts
    and OpenWatch's migration head as the dump holds them (what deep verify and a restore then check);
  - a config bundle: decrypted with the configured passphrase and every tar member read (nothing is written);
  - a Redis dump.rdb: its header and CRC64 (core/rdb.py);
  - a volume tarball: gunzip and every tar member header, to the end-of-archive marker.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from openwatch_backup.core.adopt_names import NotAdoptable
from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks
from openwatch_backup.core.pipeline import CHUNK_SIZE
from openwatch_backup.core.rdb import RdbChecker, rdb_version
from openwatch_backup.core.tar_members import TarCounter
from openwatch_backup.errors import ArtifactUnreadable, BackupError
from openwatch_backup.executors.base import ClientTool
from openwatch_backup.executors.local import error_line
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.secrets.bundle_tar import list_members
from openwatch_backup.secrets.openssl_enc import decrypt_chunks
from openwatch_backup.settings import COUNTED_TABLES
from openwatch_backup.source.connection import connect

MIGRATIONS_TABLE = "alembic_version"


@dataclass(frozen=True)
class DumpFacts:
    database: str
    server_version: str
    pg_dump_version: str
    row_counts: dict[str, int]
    alembic_head: str | None


@dataclass(frozen=True)
class VolumeFacts:
    members: int
    tar_bytes: int


@dataclass(frozen=True)
class RedisFacts:
    rdb_version: int
    rdb_size: int


@dataclass(frozen=True)
class ConfigFacts:
    members: list[str] = field(default_factory=list)


class HashedFile:
    """A guide file read once for its check and its sha256 together: every byte read is hashed, and finish()
    reads what the check left (a table of contents read, a tar's trailing blocks), so the digest is the file's."""

    def __init__(self, path: Path) -> None:
        self._src = path.open("rb")
        self._sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        chunk = self._src.read(size)
        self._sha256.update(chunk)
        self.size += len(chunk)
        return chunk

    def finish(self) -> tuple[str, int]:
        while self.read():
            pass
        return self._sha256.hexdigest(), self.size

    def close(self) -> None:
        self._src.close()


def _chunks(src: BinaryIO | HashedFile) -> Iterator[bytes]:
    while chunk := src.read(CHUNK_SIZE):
        yield chunk


def _pg_restore(ctx: OperationContext) -> tuple[ClientTool, str]:
    """pg_restore for the live server's major version (the guide dumps that server), and that version: the dump
    names its own pg_dump version only once read, by this very client."""
    with connect(ctx.target, ctx.redact) as conn:
        number = int(conn.info.server_version)
    version = f"{number // 10000}.{number % 10000}"
    return ctx.executor.find_client("pg_restore", number // 10000, version), version


def _feed(ctx: OperationContext, argv: list[str], src: BinaryIO | HashedFile, on_line: Callable[[bytes], None],
          what: str) -> None:
    """Stream src into argv's stdin (stopping when it has read what it wants); NotAdoptable if it fails."""
    feeder = ctx.executor.feed(argv, {}, on_line=on_line)
    try:
        for chunk in _chunks(src):
            if not feeder.write(chunk):
                break  # --list read the table of contents and exited
    except BaseException:
        feeder.kill()
        raise
    code = feeder.finish()
    if code != 0:
        raise NotAdoptable(f"{what} cannot read it ({ctx.redact(error_line(feeder.stderr_tail())) or f'exit {code}'})"
                           ": it is not a whole pg_dump -Fc archive")


def _header(lines: list[bytes]) -> dict[str, str]:
    """`;     Format: CUSTOM` and the like, from the head of `pg_restore --list`."""
    found: dict[str, str] = {}
    for raw in lines:
        line = raw.decode("utf-8", "replace")
        if not line.startswith(";"):
            break
        name, colon, value = line.lstrip("; ").partition(":")
        if colon:
            found.setdefault(name.strip(), value.strip())
    return found


class CopyCounter:
    """Fed the lines of `pg_restore --data-only --file=-`: the rows of each wanted `COPY public.<table> ... FROM
    stdin;` section (one line a row: COPY's text format escapes newlines inside values), and the values of the
    one-column tables in `keep` (alembic_version). Holds no other data line."""

    def __init__(self, wanted: tuple[str, ...], keep: tuple[str, ...]) -> None:
        self._wanted, self._keep = wanted, keep
        self._table: str | None = None
        self.rows: dict[str, int] = {}
        self.kept: dict[str, list[str]] = {}

    def __call__(self, line: bytes) -> None:
        if self._table is not None:
            if line == b"\\.":
                self._table = None
            elif self._table in self.rows:
                self.rows[self._table] += 1
                if self._table in self.kept:
                    self.kept[self._table].append(line.decode("utf-8", "replace"))
        elif line.startswith(b"COPY ") and line.endswith(b"FROM stdin;"):
            schema, _, rest = line[len(b"COPY "):].partition(b".")
            self._table = rest.split(b" ", 1)[0].decode("utf-8", "replace").strip('"')
            if schema == b"public" and (self._table in self._wanted or self._table in self._keep):
                self.rows.setdefault(self._table, 0)
                if self._table in self._keep:
                    self.kept.setdefault(self._table, [])


def inspect_dump(ctx: OperationContext, path: Path, hashed: HashedFile) -> DumpFacts:
    client, live_version = _pg_restore(ctx)
    listing: list[bytes] = []
    with path.open("rb") as head:  # --list reads the head only: the data pass below reads (and hashes) it all
        _feed(ctx, [client.path, "--list"], head, listing.append, "pg_restore --list")
    header = _header(listing)
    if header.get("Format") != "CUSTOM":
        raise NotAdoptable(f"it is a pg_dump archive of format {header.get('Format', 'unknown')}, not custom (-Fc): "
                           "only the guide's custom-format dumps are adopted")
    # All the data, not --table: read from a pipe, pg_restore skips the blocks it is not asked for without
    # decompressing them, and a dump cut short in another table's data would pass.
    counter = CopyCounter(COUNTED_TABLES, (MIGRATIONS_TABLE,))
    _feed(ctx, [client.path, "--data-only", "--file=-"], hashed, counter, "pg_restore --data-only")
    heads = sorted(counter.kept.get(MIGRATIONS_TABLE, []))
    return DumpFacts(database=header.get("dbname", ctx.target.dbname),
                     server_version=header.get("Dumped from database version", ""),
                     # verify and restore pick their client by it: never empty
                     pg_dump_version=header.get("Dumped by pg_dump version") or live_version,
                     row_counts={t: counter.rows[t] for t in COUNTED_TABLES if t in counter.rows},
                     alembic_head=",".join(heads) or None)


def inspect_config(hashed: HashedFile, name: str, passphrase: bytes | None,
                   passphrase_problem: str | None) -> ConfigFacts:
    if passphrase is None:
        raise NotAdoptable(passphrase_problem or "no passphrase for config bundles is set")
    try:
        members = list_members(decrypt_chunks(hashed, passphrase, name))
    except ArtifactUnreadable as exc:
        raise NotAdoptable(f"the configured passphrase does not open it, or it is damaged ({exc.message}); set "
                           "OPENWATCH_BACKUP_PASSPHRASE_FILE to the passphrase the guide's openssl used") from None
    return ConfigFacts(members=members)


def inspect_redis(hashed: HashedFile) -> RedisFacts:
    checker = RdbChecker()
    for chunk in _chunks(hashed):
        checker.update(chunk)
    size = checker.size
    version = rdb_version(checker.head)
    if version is None:
        raise NotAdoptable("it is not an RDB file (no REDIS header)")
    problem = checker.problem()
    if problem is not None:
        raise NotAdoptable(f"its RDB does not check ({problem})")
    return RedisFacts(rdb_version=version, rdb_size=size)


class _ChunkReader:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int) -> bytes:  # noqa: ARG002 - chunks come as gunzip yields them
        for chunk in self._chunks:
            if chunk:
                return chunk
        return b""


def gunzipped(src: BinaryIO) -> _ChunkReader:
    """The tar inside a .tar.gz, as a reader; UnreadableArtifact when the gzip stream is damaged or cut."""
    return _ChunkReader(decoded_chunks(HashingReader(src), wrapper=None, gunzip=True))


def inspect_volume(hashed: HashedFile) -> VolumeFacts:
    try:
        counter = TarCounter(gunzipped(typing.cast(BinaryIO, hashed)))
        while counter.read(CHUNK_SIZE):
            pass
    except UnreadableArtifact as exc:
        raise NotAdoptable(f"it is not a whole .tar.gz ({exc})") from None
    if counter.members == 0:
        raise NotAdoptable("it holds no tar member (not a tar archive, or an empty one)")
    return VolumeFacts(members=counter.members, tar_bytes=counter.bytes)


def describe_failure(exc: BaseException) -> str:
    """The one line for a file whose reading failed for another reason than its content."""
    return exc.message if isinstance(exc, BackupError) else str(exc)
