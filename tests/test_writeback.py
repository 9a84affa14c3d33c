"""Writeback hints while an artifact is written: every window is flushed and handed to the kernel, the bytes
stay exactly what was written, and the hint never replaces the fsync at commit."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from openwatch_backup.storage import writeback
from openwatch_backup.storage.local import LocalStorage
from openwatch_backup.storage.writeback import WINDOW, Writeback


def test_each_full_window_is_flushed_then_handed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(writeback, "_start_writeback", lambda fd, offset, length: asked.append((offset, length)))
    flushes: list[int] = []
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        hints = Writeback(fd, lambda: flushes.append(len(asked)))
        for _ in range(5):
            hints.wrote(WINDOW // 2)  # 2.5 windows in all
        hints.wrote(WINDOW // 2 - 1)
    finally:
        os.close(fd)
    assert asked == [(0, WINDOW), (WINDOW, WINDOW)]  # the last partial window is left to fsync
    assert flushes == [0, 1]  # each flush came before its range was handed over


def test_the_real_call_exists_here_and_the_artifact_is_byte_exact(tmp_path: Path) -> None:
    assert writeback._start_writeback is not None  # Linux: the hint is live in every other test too
    store = LocalStorage(tmp_path)
    writer = store.open_writer("postgres/x.dump")
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    for index in range(3 * (WINDOW >> 20) + 5):
        chunk = block[index % 7:] + block[:index % 7]
        writer.write(chunk)
        digest.update(chunk)
    writer.commit()
    assert hashlib.sha256((tmp_path / "postgres/x.dump").read_bytes()).hexdigest() == digest.hexdigest()
    assert [p.name for p in (tmp_path / "postgres").iterdir()] == ["x.dump"]
