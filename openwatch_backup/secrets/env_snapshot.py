"""The running process's OpenWatch settings as a .env file, stored as `openwatch.env` in the config bundle.

The worker usually never sees OpenWatch's `.env`: compose hands its values over as environment variables.
Storing them puts the master key in the bundle even without the file. The result is a secret: it only ever
goes into the encrypted tar, never to a log.

Quoting: a value made only of characters no reader treats specially is written bare, so `source` (bash),
compose's `env_file` and `docker run --env-file` all read it back the same. Any other value is single-quoted
(a `'` inside as `'\\''`): bash reads it back exactly and compose reads single quotes literally; plain
`docker --env-file` does not unquote at all, which no quoting can satisfy for such values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PREFIXES = ("OPENWATCH_", "POSTGRES_")
NAMES = frozenset({"REDIS_PASSWORD"})
# The bundle is encrypted with it: storing it inside would protect nothing and spread it to restored copies.
LEFT_OUT = frozenset({"OPENWATCH_BACKUP_PASSPHRASE"})
HEADER = "# OpenWatch settings of the backup worker's environment (OPENWATCH_*, POSTGRES_*, REDIS_PASSWORD)\n"
_VALID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_VALUE = re.compile(r"[A-Za-z0-9_./:@%+,=-]*")


def selected(name: str) -> bool:
    """Whether a variable belongs in the snapshot."""
    return (name.startswith(PREFIXES) or name in NAMES) and name not in LEFT_OUT


def openwatch_env(environ: Mapping[str, str]) -> bytes:
    """The selected variables as sorted KEY=value lines (UTF-8; undecodable bytes kept as they were)."""
    lines = [HEADER]
    for name in sorted(environ):
        if selected(name) and _VALID_NAME.fullmatch(name):  # a name bash cannot assign is no setting of ours
            lines.append(f"{name}={quote(environ[name])}\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def quote(value: str) -> str:
    """The value as bash reads it back exactly; bare when nothing in it needs quoting."""
    if _BARE_VALUE.fullmatch(value):  # empty too: `KEY=` is empty for every reader
        return value
    return "'" + value.replace("'", "'\\''") + "'"
