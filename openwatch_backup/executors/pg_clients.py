"""Find pg_dump / pg_restore / psql of a major version the server accepts.

A client older than the server is the top complaint in containerised backups (pg_dump refuses, or
worse, produces a dump that misses features). We pick the lowest major at least the server's, so the
archive stays readable by that server's own pg_restore, and fail with the install command otherwise.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from openwatch_backup.errors import ClientVersionMismatch

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_SEARCH_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin",
                 "/opt/homebrew/opt/postgresql@*/bin")


@dataclass(frozen=True)
class ClientTool:
    path: str
    version: str
    major: int


def parse_version(path: str, output: str) -> ClientTool | None:
    """The client `--version` printed ("pg_dump (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)"), or None."""
    match = _VERSION.search(output)
    if not match:
        return None
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return ClientTool(path=path, version=version, major=int(match.group(1)))


def tool_version(path: str) -> ClientTool | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    return parse_version(path, out.stdout) if out.returncode == 0 else None


def _candidates(program: str, bin_dir: Path | None) -> list[str]:
    if bin_dir is not None:
        return [str(bin_dir / program)]
    found = [os.path.join(d, program) for pattern in _SEARCH_GLOBS for d in sorted(glob.glob(pattern))]
    on_path = shutil.which(program)
    if on_path:
        found.append(on_path)
    return [p for p in dict.fromkeys(found) if os.access(p, os.X_OK)]


def install_hint(server_major: int) -> str:
    return (f"install a PostgreSQL {server_major} client (Debian/Ubuntu: apt-get install postgresql-client-"
            f"{server_major}; UBI/RHEL: dnf install postgresql{server_major}) or set "
            f"OPENWATCH_BACKUP_PG_BIN_DIR to its bin folder")


def is_script(path: str) -> bool:
    """A `#!` script, such as Debian's /usr/bin/pg_dump (postgresql-common's pg_wrapper, in Perl)."""
    try:
        with open(path, "rb") as head:
            return head.read(2) == b"#!"
    except OSError:
        return False


def _best(tools: list[ClientTool], server_major: int, scripts: set[str]) -> ClientTool | None:
    usable = sorted((t for t in tools if t.major >= server_major), key=lambda t: (t.major, t.path in scripts, t.path))
    return usable[0] if usable else None


def find_client(program: str, server_major: int, server_version: str, bin_dir: Path | None) -> ClientTool:
    """The best `program` for a server of `server_major`, or ClientVersionMismatch saying how to fix it.

    Native binaries are asked first, and a script (Debian's pg_wrapper) only when no native binary of the
    server's own major exists, which nothing can beat (the lowest major at least the server's). Why: the
    wrapper chooses a binary anew at each run, from the environment (PGCLUSTER, the host and port we pass),
    so the version its `--version` reports is not necessarily the one that dumps; and it costs a Perl start
    twice per backup (`--version`, then the dump): 40-80 ms of a CLI backup's fixed cost, measured here."""
    candidates = _candidates(program, bin_dir)
    scripts = {p for p in candidates if is_script(p)}
    tools = [t for t in (tool_version(p) for p in candidates if p not in scripts) if t is not None]
    best = _best(tools, server_major, scripts)
    if best is None or best.major != server_major:
        tools += [t for t in (tool_version(p) for p in candidates if p in scripts) if t is not None]
        best = _best(tools, server_major, scripts)
    if best is not None:
        return best
    if not tools:
        where = f"in {bin_dir}" if bin_dir else "on this machine"
        raise ClientVersionMismatch(f"{program} not found {where}; {install_hint(server_major)}")
    newest = max(tools, key=lambda t: t.major)
    raise ClientVersionMismatch(
        f"{program} {newest.version} ({newest.path}) is older than the server (PostgreSQL {server_version}) "
        f"and cannot dump it; {install_hint(server_major)}")
