"""Feed a stored artifact into pg_restore (archives) or psql (plain SQL), decompressing on the way.

No temporary copy: the stored bytes are hashed, decompressed and written to the client's stdin in
bounded chunks. The client always stops at the first error (`--exit-on-error`, `ON_ERROR_STOP`), and
its exit status, the decompression and the checksum of what was read are all checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks, needs_gunzip
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import POSTGRES_PREFIX
from openwatch_backup.errors import RestoreFailed
from openwatch_backup.executors.base import ClientTool
from openwatch_backup.executors.local import describe_exit
from openwatch_backup.operations.context import OperationContext

ARTIFACT_PREFIX = POSTGRES_PREFIX  # the name restore_table.py imports; the value lives in core/naming.py


@dataclass(frozen=True)
class RestoreOptions:
    data_only: bool = False
    tables: tuple[str, ...] = ()
    single_transaction: bool = False
    sections: tuple[str, ...] = ()
    use_list: str | None = None  # a pg_restore list file choosing the entries (operations/scratch_list.py)


@dataclass(frozen=True)
class StreamStats:
    stored_bytes: int
    sha256: str
    seconds: float


def restore_argv(client: ClientTool, dump_format: str, dbname: str, options: RestoreOptions) -> list[str]:
    """The command; `dbname` is a bare name (the rest of the connection comes from the environment)."""
    if dump_format == "custom":
        argv = [client.path, "--no-password", "--exit-on-error", "--no-owner", "--no-privileges",
                f"--dbname={dbname}"]
        if options.data_only:
            argv.append("--data-only")
        if options.single_transaction:
            argv.append("--single-transaction")
        argv += [f"--table={name}" for name in options.tables]
        argv += [f"--section={name}" for name in options.sections]
        if options.use_list:
            argv.append(f"--use-list={options.use_list}")
        return argv
    if options.data_only or options.tables or options.sections or options.use_list:
        raise RestoreFailed("a plain-SQL backup restores whole; --table and --data-only need a custom-format "
                            "backup (kind full or tables)")
    # psql reads the script from stdin; ON_ERROR_STOP and one transaction: all of it or nothing.
    return [client.path, "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            f"--dbname={dbname}"]


def stream_into_database(ctx: OperationContext, manifest: Manifest, client: ClientTool, dbname: str,
                         options: RestoreOptions, on_bytes: Callable[[int], None] | None = None) -> StreamStats:
    started = time.monotonic()
    raw = ctx.storage.open_reader(f"{ARTIFACT_PREFIX}/{manifest.artifact}")
    env = {**ctx.target.with_dbname(dbname).libpq_env()}
    feeder = ctx.executor.feed(restore_argv(client, manifest.format, dbname, options), env)
    reader = HashingReader(raw)
    program = client.path.rsplit("/", 1)[-1]
    try:
        for chunk in decoded_chunks(reader, wrapper=manifest.wrapper,
                                    gunzip=needs_gunzip(manifest.format, manifest.compression)):
            if not feeder.write(chunk):
                break  # the client exited; its status says why
            if on_bytes is not None:
                on_bytes(reader.size)
        code = feeder.finish()
    except UnreadableArtifact as exc:
        feeder.kill()
        raise RestoreFailed(f"{manifest.artifact} is unreadable: {exc}") from None
    except BaseException:
        feeder.kill()
        raise
    finally:
        raw.close()
    if code != 0:
        raise RestoreFailed(ctx.redact(describe_exit(program, code, feeder.stderr_tail())))
    return StreamStats(stored_bytes=reader.size, sha256=reader.hexdigest(), seconds=time.monotonic() - started)
