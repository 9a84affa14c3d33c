"""Which process runs a run, and whether that process is gone: so `sweep` need not wait for a stale heartbeat
after a CLI was killed (SIGKILL, an OOM kill, a closed terminal) on the same machine.

A process is judged gone only on the machine and in the PID namespace that recorded it (same host name,
boot id and namespace), and only if its PID no longer exists, is a zombie, or belongs to a process started
at another time (a reused PID). Anywhere else the heartbeat decides, as before.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses); None if no such PID."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[1].split() if ")" in stat else None


def _namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def this_process() -> dict[str, Any]:
    """What the catalog keeps on a claimed run (`details.owner`)."""
    fields = _stat_fields(os.getpid())
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot_id": _read("/proc/sys/kernel/random/boot_id"),
            "pid_ns": _namespace(), "start_ticks": fields[19] if fields else ""}


def is_gone(owner: dict[str, Any] | None) -> bool:
    """True only when the recording process is provably no longer running; False when in doubt."""
    if not owner or not owner.get("start_ticks") or not owner.get("boot_id"):
        return False
    here = this_process()
    if any(owner.get(key) != here[key] for key in ("host", "boot_id", "pid_ns")):
        return False  # another machine, container or boot: its heartbeat decides
    fields = _stat_fields(int(owner["pid"]))
    # fields[0] is the state (Z: a zombie, dead but not yet reaped), fields[19] the start time in clock ticks.
    return fields is None or fields[0] in ("Z", "X") or fields[19] != owner["start_ticks"]
