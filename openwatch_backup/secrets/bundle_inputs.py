"""What a config bundle packs: the listed paths, walked without following links, and a digest of them.

`OPENWATCH_BACKUP_CONFIG_PATHS` is comma-separated; empty means OpenWatch's key and certificate folders plus
the `.env` file when its path is given. Each listed path is stored under its absolute path without the
leading `/` (`/openwatch/security/keys/id_rsa` -> `openwatch/security/keys/id_rsa`): names stay unique
when two listed folders share a basename, and tell the operator where each file lived.

A listed path that is itself a symlink is followed (the admin named it; a link alone would back up nothing).
Below it, links are entries of their own: stored as links, never followed, their targets never read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from openwatch_backup.errors import ConfigError

SETTING = "OPENWATCH_BACKUP_CONFIG_PATHS"
DEFAULT_CONFIG_PATHS: tuple[str, ...] = ("/openwatch/security/keys", "/openwatch/security/certs")
# The member the running process's settings are stored as (env_snapshot.py); no listed path may take it.
ENV_MEMBER = "openwatch.env"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One file, folder or link to pack: where it is, its name in the tar, and its lstat."""

    path: Path
    arcname: str
    st: os.stat_result
    # True only for a listed path: its stat (and open) follow a link the admin named.
    listed: bool = False

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.st.st_mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.st.st_mode)

    @property
    def mode(self) -> int:
        return stat.S_IMODE(self.st.st_mode)


def config_paths(raw: str | None, env_file: str | None = None) -> list[Path]:
    """The listed paths, absolute and without duplicates; `raw` empty or None means the defaults (+ env_file)."""
    names = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if not names:
        names = [*DEFAULT_CONFIG_PATHS, *([env_file] if env_file else [])]
    paths: list[Path] = []
    for name in names:
        # abspath, not resolve(): `..` is folded, links are not followed (the name is what the admin listed).
        path = Path(os.path.abspath(name))
        if path not in paths:
            paths.append(path)
    return paths


def check_paths(paths: Sequence[Path]) -> list[Path]:
    """The paths to pack (absolute): each must exist; a path inside another listed one is packed once."""
    paths = [Path(os.path.abspath(path)) for path in paths]  # never a `..` or a relative name in the tar
    for path in paths:
        if not path.exists():
            raise ConfigError(f"config path {path} does not exist: create it or remove it from {SETTING}")
        if arcname_of(path) in ("", ENV_MEMBER):
            raise ConfigError(f"config path {path} cannot be packed (it would be the bundle's root or its "
                              f"{ENV_MEMBER}): list the files or folders to keep in {SETTING}")
    return [p for p in paths if not any(other != p and other in p.parents for other in paths)]


def arcname_of(path: Path) -> str:
    """The member name of a listed path: its absolute path without the leading slash."""
    return path.as_posix().lstrip("/")


def walk(paths: Sequence[Path]) -> Iterator[Entry]:
    """Every entry to pack, parents first, folders' children sorted by name; links never followed."""
    for path in check_paths(paths):
        yield from _walk_one(path, arcname_of(path), os.stat(path), listed=True)


def _walk_one(path: Path, arcname: str, st: os.stat_result, listed: bool = False) -> Iterator[Entry]:
    entry = Entry(path, arcname, st, listed)
    if not (entry.is_dir or entry.is_file or entry.is_link):
        return  # devices, fifos and sockets are no configuration: left out (reading a fifo would block)
    yield entry
    if not entry.is_dir:
        return
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    for name in names:
        child = path / name
        try:
            child_st = os.lstat(child)
        except OSError as exc:  # removed since the listing: the admin is changing it, a later run takes it
            raise _unreadable(child, exc) from exc
        yield from _walk_one(child, f"{arcname}/{name}", child_st)


def open_file(entry: Entry) -> tuple[int, os.stat_result]:
    """An fd of the entry's file and its fstat. O_NOFOLLOW: a file swapped for a link since the walk is refused."""
    flags = os.O_RDONLY | os.O_NONBLOCK
    if not entry.listed:  # a listed path may be a link the admin named: followed on purpose (module docstring)
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        raise _unreadable(entry.path, exc) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ConfigError(f"config path {entry.path} changed while it was read: run the backup again")
    return fd, st


def link_target(entry: Entry) -> str:
    """The link's target as stored (never followed, never read)."""
    try:
        return os.readlink(entry.path)
    except OSError as exc:  # removed or replaced since the walk
        raise _unreadable(entry.path, exc) from exc


def _unreadable(path: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or type(exc).__name__
    return ConfigError(f"config path {path} cannot be read ({reason}): give the backup worker read access to it")


def inputs_digest(paths: Sequence[Path], extra: Iterable[bytes] = ()) -> str:
    """sha256 over every entry's name, type, mode, owner, link target and content (streamed), then `extra`.

    Answers "did anything change since the last bundle?" without keeping a copy of the inputs. mtimes are
    left out on purpose: a file rewritten with the same bytes is no change. `extra` carries the settings
    snapshot (openwatch.env), so a changed master key makes a new bundle too.
    """
    digest = hashlib.sha256()
    for entry in walk(paths):
        kind = "d" if entry.is_dir else "l" if entry.is_link else "f"
        fields = [kind, entry.arcname, f"{entry.mode:o}", str(entry.st.st_uid), str(entry.st.st_gid)]
        for field in fields:
            digest.update(_framed(field.encode("utf-8", "surrogateescape")))
        if entry.is_link:
            digest.update(_framed(os.fsencode(link_target(entry))))
        elif entry.is_file:
            digest.update(_framed(_content_sha256(entry)))
    for blob in extra:
        digest.update(_framed(b"extra") + _framed(hashlib.sha256(blob).digest()))
    return digest.hexdigest()


def _framed(field: bytes) -> bytes:
    # Length-prefixed, so no two different entry lists hash the same bytes (a name cannot pose as content).
    return len(field).to_bytes(8, "big") + field


def _content_sha256(entry: Entry) -> bytes:
    fd, _ = open_file(entry)
    content = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(CHUNK):
            content.update(chunk)
    return content.digest()
