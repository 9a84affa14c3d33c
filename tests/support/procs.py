"""Read the process table from /proc (Linux), for tests that watch or kill our children."""

from __future__ import annotations

import os
from pathlib import Path


def _ppid(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces or parentheses; fields after the last ')' are fixed.
    return int(stat.rsplit(")", 1)[1].split()[1])


def command_lines() -> dict[int, str]:
    """{pid: argv joined by spaces} for every process we may read."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            found[int(entry)] = raw.replace(b"\0", b" ").decode("utf-8", "replace")
    return found


def children_named(parent: int, name: str) -> list[int]:
    result = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _ppid(entry) == parent:
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm == name:
                result.append(int(entry))
    return result
