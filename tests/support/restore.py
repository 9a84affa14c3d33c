"""Restore an artifact with the standard tools an operator has (the guide's commands, plus zstd -dc).

The real restore command comes with its own issue; these tests prove the files are what they claim
to be by reading them with nothing of ours.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _decompressor(path: Path) -> list[str] | None:
    if path.name.endswith(".zst"):
        return ["zstd", "-dc", str(path)]
    if path.name.endswith(".gz"):
        return ["gzip", "-dc", str(path)]
    return None


def restore(path: Path, url: str, *, extra: tuple[str, ...] = ()) -> None:
    """pg_restore for archives, psql with ON_ERROR_STOP in one transaction for SQL; raise on any error."""
    is_archive = ".dump" in path.name
    if is_archive:
        reader = ["pg_restore", "--exit-on-error", "--no-owner", "--no-privileges", *extra, "-d", url]
    else:
        reader = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", url]
    decompress = _decompressor(path)
    if decompress is None:
        command = [*reader, str(path)] if is_archive else [*reader, "-f", str(path)]
        subprocess.run(command, check=True, capture_output=True)
        return
    producer = subprocess.Popen(decompress, stdout=subprocess.PIPE)
    try:
        subprocess.run(reader, stdin=producer.stdout, check=True, capture_output=True)
    finally:
        assert producer.stdout is not None
        producer.stdout.close()
        assert producer.wait() == 0, f"{decompress[0]} failed on {path}"
