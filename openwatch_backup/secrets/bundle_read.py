"""OpenWatch's master key inside a decrypted config bundle: which member, which variable, how it is unquoted.

Pure: it reads a tar.gz stream (the decrypted bundle, in memory) and never touches storage or the catalog;
operations/bundle_key.py picks the bundle, checks it and hands its decrypted stream here.

Where the key is:
1. `openwatch.env` (the worker's settings snapshot): OPENWATCH_MASTER_KEY;
2. else a `.env` member (OpenWatch's .env file, in any folder): MASTER_KEY (the name compose maps to
   OPENWATCH_MASTER_KEY), else OPENWATCH_MASTER_KEY. Values are unquoted as env files are read.
"""

from __future__ import annotations

import posixpath

from openwatch_backup.secrets.bundle_inputs import ENV_MEMBER
from openwatch_backup.secrets.bundle_tar import Source, read_members

SNAPSHOT_NAMES = ("OPENWATCH_MASTER_KEY",)
DOTENV_NAMES = ("MASTER_KEY", "OPENWATCH_MASTER_KEY")


def master_key_in_bundle(tar_gz: Source) -> tuple[str | None, str | None]:
    """(member, master key) from a decrypted bundle's tar.gz, read and checked to its end; (None, None) when
    no member holds one."""
    return key_in_members(read_members(tar_gz, env_member))


def is_snapshot(name: str) -> bool:
    return name in (ENV_MEMBER, f"./{ENV_MEMBER}")  # the bundle's own member, at its root


def env_member(name: str) -> bool:
    return is_snapshot(name) or posixpath.basename(name) == ".env"


def key_in_members(members: dict[str, bytes]) -> tuple[str | None, str | None]:
    """(member, master key) by the order in the module docstring; (None, None) when no member holds one."""
    for name in sorted(members, key=lambda n: (not is_snapshot(n), n)):
        names = SNAPSHOT_NAMES if is_snapshot(name) else DOTENV_NAMES
        values = env_values(members[name])
        for variable in names:
            if values.get(variable):
                return name, values[variable]
    return None, None


def env_values(data: bytes) -> dict[str, str]:
    """KEY=value lines as bash, compose and python-dotenv read the common cases: `export ` prefix, comments,
    single quotes literal (our snapshot writes a `'` inside as `'\\''`), double quotes with \\" and \\\\,
    an unquoted value cut at ` #`."""
    values: dict[str, str] = {}
    for raw in data.decode("utf-8", "surrogateescape").splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = _unquote(value.strip())
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("'\\''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value.split(" #", 1)[0].rstrip()
