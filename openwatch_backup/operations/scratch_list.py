"""What a `tables` backup restores into a new database (deep verify, `restore --into`): all but foreign keys.

A tables backup holds the whole schema and the rows of a few tables (core/dump_plan.py). A foreign key from
a held table to an emptied one (hosts.created_by -> users) cannot be created, so restoring every section
would fail. Everything else can, and is: types, extensions, tables, views, sequences, the held rows, then
primary keys, unique constraints, indexes and triggers, which also check the rows (a duplicated key fails
the restore). The selection is a pg_restore list (`--use-list`) made from `pg_restore --list` of the
archive's table of contents, kept in the archive's order, so the one streaming pass still restores it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import POSTGRES_PREFIX
from openwatch_backup.errors import RestoreFailed
from openwatch_backup.executors.base import ClientTool
from openwatch_backup.executors.local import describe_exit
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.restore_stream import RestoreOptions

# How `pg_restore --list` names a foreign key entry: "3810; 2606 96300 FK CONSTRAINT public scans scans_fk x".
_FOREIGN_KEY = " FK CONSTRAINT "


def without_foreign_keys(listing: str) -> str:
    """The list with every foreign key entry commented out (pg_restore skips lines starting with ';')."""
    return "".join(f";{line}" if _FOREIGN_KEY in line and not line.startswith(";") else line
                   for line in listing.splitlines(keepends=True))


@contextlib.contextmanager
def scratch_restore_options(ctx: OperationContext, manifest: Manifest, client: ClientTool) -> Iterator[RestoreOptions]:
    """Options to restore the whole backup into a new, empty database; the list file lives as long as the block."""
    if manifest.kind != BackupKind.TABLES.value or manifest.format != "custom":
        yield RestoreOptions()
        return
    # The list travels as text: the executor puts it where the client can read it (here, or in a container).
    listing = _read_table_of_contents(ctx, manifest, client)
    with ctx.executor.staged_file(without_foreign_keys(listing), "scratch.list") as chosen:
        yield RestoreOptions(use_list=chosen)


def _read_table_of_contents(ctx: OperationContext, manifest: Manifest, client: ClientTool) -> str:
    """`pg_restore --list` over the archive: it reads the head only and stops, so we stop too."""
    lines: list[bytes] = []
    feeder = ctx.executor.feed([client.path, "--list"], {}, on_line=lines.append)
    try:
        with ctx.storage.open_reader(f"{POSTGRES_PREFIX}/{manifest.artifact}") as raw:
            for chunk in decoded_chunks(HashingReader(raw), wrapper=manifest.wrapper, gunzip=False):
                if not feeder.write(chunk):
                    break  # it has read the table of contents and exited
    except UnreadableArtifact as exc:
        feeder.kill()
        raise RestoreFailed(f"{manifest.artifact} is unreadable: {exc}") from None
    except BaseException:
        feeder.kill()
        raise
    code = feeder.finish()
    if code != 0:
        raise RestoreFailed(ctx.redact(describe_exit("pg_restore --list", code, feeder.stderr_tail())))
    return "".join(line.decode("utf-8", "replace") + "\n" for line in lines)
