"""Process plumbing for the local stack: loopback ports, pid files and liveness, stopping a process, and
running a command (optionally as another user) with its output in a log file."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from openwatch_backup.devstack.errors import DevstackError

LOOPBACK = "127.0.0.1"
_OWNER_FILE = "owner.pid"
_START_ATTEMPTS = 3


def port_is_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pick_free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (PID 1 here may not reap daemons' zombies)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    # The state follows the command name, which is in parentheses and may itself hold spaces.
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        return int(first)
    except (OSError, ValueError):
        return None


def _owner_alive(server_dir: Path) -> bool:
    """True if the process recorded in `server_dir`'s owner file (the one that started it) still runs."""
    owner = _read_pid(server_dir / _OWNER_FILE)
    return owner is not None and _pid_alive(owner)


def _wait_for(pid: int, timeout: float) -> bool:
    """Wait until process `pid` has exited; True if it did within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _kill_pid(pid: int, *, expect: str, timeout: float = 10.0) -> None:
    """Stop process `pid` if its command line contains `expect`: SIGTERM, then SIGKILL."""
    if not _pid_alive(pid) or expect not in _cmdline(pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_for(pid, timeout):
            return


def _is_root() -> bool:
    return os.geteuid() == 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _run(argv: Sequence[str], *, log: Path, as_user: str | None = None, cwd: Path | None = None,
         timeout: float = 120.0) -> int:
    """Run a command with stdin closed and its output appended to `log` (never a pipe: a daemon that
    inherits a pipe would keep us waiting). `as_user` runs it through `runuser -u USER --`."""
    command = list(argv)
    if as_user is not None:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise DevstackError("runuser (util-linux) is needed to run PostgreSQL as root; "
                                "install util-linux or run as a non-root user")
        command = [runuser, "-u", as_user, "--", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(command)}\n".encode())
        out.flush()
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  cwd=cwd, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return -1
    return done.returncode
