"""Which files `adopt DIR` reads (operations/adopt.guide_files) and which folders it refuses (check_folder): pure,
no database. OPENWATCH_BACKUP_DIR may be the guide's own folder, so openwatch-backup's files there are left out."""

from __future__ import annotations

import typing
from pathlib import Path
from types import SimpleNamespace

import pytest

from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.adopt import check_folder, guide_files
from openwatch_backup.operations.context import OperationContext


def context(store: Path) -> OperationContext:
    return typing.cast(OperationContext, SimpleNamespace(settings=SimpleNamespace(dir=store)))


def test_our_own_files_hidden_files_and_logs_are_left_out(tmp_path: Path) -> None:
    for name in ("postgres/openwatch_20261120_020000.dump", "postgres/openwatch_20261126_020000.dump",
                 "postgres/openwatch_20261126_020000.dump.manifest.json", "postgres/openwatch_x.dump.zst.partial",
                 "redis/dump_20261122.rdb", "backup.log", "cron.log", ".hidden", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "volumes").mkdir()

    assert [p.relative_to(tmp_path).as_posix() for p in guide_files(tmp_path)] == [
        "notes.txt", "postgres/openwatch_20261120_020000.dump", "redis/dump_20261122.rdb"]


def test_a_folder_inside_our_store_or_no_folder_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "postgres").mkdir(parents=True)
    assert check_folder(context(store), store) == store.resolve()  # the guide's folder may be ours too
    assert check_folder(context(store), tmp_path) == tmp_path.resolve()
    with pytest.raises(ConfigError) as inside:
        check_folder(context(store), store / "postgres")
    assert inside.value.message == (f"{store / 'postgres'} is inside OPENWATCH_BACKUP_DIR ({store.resolve()}): those "
                                    "are openwatch-backup's own files; give the folder the guide's script writes to")
    with pytest.raises(ConfigError) as missing:
        check_folder(context(store), tmp_path / "nope")
    assert missing.value.message == (f"{tmp_path / 'nope'} is not a folder: give the folder the guide's script "
                                     "writes to (e.g. /opt/openwatch/backups)")
