"""The config bundle's tar.gz: written as a stream into any sink, listed and extracted from any stream.

Memory stays bounded: tarfile's stream modes never seek, and files are copied in chunks. The tar holds the
listed paths (names: bundle_inputs.arcname_of), links as links (never followed, targets never read), numeric
owners only (no user names: the host restoring may have other ones), modes and mtimes, and the settings
snapshot as `openwatch.env` (mode 0600). The guide's `openssl enc -d ... | tar xz` reads it back.

Reading decompresses with zlib ourselves rather than tarfile's `r|gz`: zlib checks the gzip trailer (CRC and
length), so a truncated or altered stream is an error here instead of a silently shorter member list.

Extraction is our own, not tarfile's extractall(): Python 3.11's `data` filter resets directory modes and
masks file modes with 0o755 (we keep each file's own mode), and its link checks have known bypasses before
3.12.11/3.13.4. Rules: members only inside the new folder (no absolute names, no `..`); nothing is ever
written through a link (every parent must be a real folder, files are created O_EXCL|O_NOFOLLOW); a symlink
is recreated as the link it was, even one pointing outside (certbot's `cert.pem -> /etc/letsencrypt/...`):
refusing those would make such a bundle unrestorable, and a link nothing is written through reads nothing;
a hard link must name an earlier regular file of the bundle; devices and fifos are skipped. Owners are not
restored (the files belong to whoever restores; `tar xzpf` as root applies the stored numeric owners).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from openwatch_backup.errors import ArtifactUnreadable, BackupError, RestoreRefused
from openwatch_backup.secrets.bundle_inputs import CHUNK, ENV_MEMBER, Entry, check_paths, link_target, open_file, walk

ENV_MODE = 0o600
DEST_MODE = 0o700


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Sink = Callable[[bytes], object] | IO[bytes]
Source = Readable | Iterable[bytes]


class _SinkWriter:
    """A write() target for tarfile over a callable or a file-like sink."""

    def __init__(self, sink: Sink) -> None:
        self._write: Callable[[bytes], object] = sink if callable(sink) else sink.write

    def write(self, data: bytes) -> int:
        self._write(bytes(data))
        return len(data)


def write_bundle(paths: Sequence[Path], sink: Sink, env: bytes | None = None) -> list[str]:
    """Stream a tar.gz of `paths` (+ `env` as openwatch.env) into `sink`; the member names written, in order.

    A missing path is refused before a byte goes out. An error later leaves a partial stream in the sink:
    the caller writes into a temporary name and discards it.
    """
    check_paths(paths)
    names: list[str] = []
    with tarfile.open(fileobj=_SinkWriter(sink), mode="w|gz", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        if env is not None:
            tar.addfile(_env_info(len(env)), _BytesReader(env))
            names.append(ENV_MEMBER)
        for entry in walk(paths):
            _add(tar, entry)
            names.append(entry.arcname)
    return names


def _env_info(size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(ENV_MEMBER)
    info.size, info.mode, info.mtime = size, ENV_MODE, int(time.time())
    info.uid, info.gid, info.uname, info.gname = os.getuid(), os.getgid(), "", ""
    return info


def _add(tar: tarfile.TarFile, entry: Entry) -> None:
    info = tarfile.TarInfo(entry.arcname)
    info.mode, info.uid, info.gid, info.uname, info.gname = entry.mode, entry.st.st_uid, entry.st.st_gid, "", ""
    info.mtime = int(entry.st.st_mtime)
    if entry.is_link:
        info.type, info.linkname = tarfile.SYMTYPE, link_target(entry)
        tar.addfile(info)
    elif entry.is_dir:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        fd, st = open_file(entry)  # fstat after open: the size tar records is the size of what is read
        info.size, info.mode, info.mtime = st.st_size, stat.S_IMODE(st.st_mode), int(st.st_mtime)
        with os.fdopen(fd, "rb") as handle:
            try:
                tar.addfile(info, handle)
            except OSError as exc:
                if exc.args != ("unexpected end of data",):  # the sink's own errors (a full disk) pass unchanged
                    raise
                # tarfile's words for a file that shrank while it was read
                raise BackupError(f"config path {entry.path} changed while it was read: run the backup again") \
                    from exc


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos:end], min(end, len(self._data))
        return chunk


class _Gunzip:
    """A read() of the decompressed stream; a damaged or truncated gzip raises ArtifactUnreadable.

    Each step inflates at most CHUNK bytes, so a small input that expands hugely (a gzip bomb) still uses
    bounded memory. The last TAIL bytes handed out are kept, for check_end().
    """

    TAIL = 64 * 1024  # more than tarfile's stream buffer (20 blocks of 512) reads ahead

    def __init__(self, source: Source) -> None:
        self._next = _chunks(source)
        self._z = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._buffer = b""
        self._pos = 0  # what of _buffer is handed out already
        self._done = False
        self._given = 0
        self._tail = bytearray()

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise ValueError("read() needs a size: the stream is read in bounded steps")
        while not self._done and len(self._buffer) - self._pos < size:
            self._buffer, self._pos = self._buffer[self._pos:], 0
            self._fill()
        chunk = self._buffer[self._pos:self._pos + size]
        self._pos += len(chunk)
        self._given += len(chunk)
        self._tail += chunk
        del self._tail[:-self.TAIL]
        return chunk

    def check_end(self, offset: int) -> None:
        """The tar's end at `offset` is its end-of-archive marker: zero blocks (1024 bytes or more) to the end.

        tarfile ends its member list silently at a truncated or missing header; this is what tells a whole
        archive from one cut at a member's boundary. Reading to the end also checks the gzip trailer.
        """
        start = self._given - len(self._tail)
        if offset < start:
            raise ArtifactUnreadable("the config bundle's tar cannot be checked to its end: "
                                     "restore it from another copy")
        zeros, clean = len(self._tail) - (offset - start), not any(self._tail[offset - start:])
        while chunk := self.read(CHUNK):
            zeros, clean = zeros + len(chunk), clean and not any(chunk)
        if not clean or zeros < 2 * tarfile.BLOCKSIZE:
            raise ArtifactUnreadable("the config bundle's tar is truncated (no end-of-archive marker): "
                                     "restore it from another copy")

    def _fill(self) -> None:
        try:
            if not self._pending:
                self._pending = next(self._next, b"")
            if not self._pending:
                self._buffer += self._z.flush()  # what zlib still holds; the input is all consumed
                if not self._z.eof:
                    raise ArtifactUnreadable("the config bundle's tar.gz is truncated: restore it from another copy")
                self._done = True
                return
            if self._z.eof:  # more after a complete gzip member: the next member (`cat a.gz b.gz`)
                self._z = zlib.decompressobj(wbits=31)
            self._buffer += self._z.decompress(self._pending, CHUNK)
            self._pending = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
        except zlib.error as exc:
            raise ArtifactUnreadable(f"the config bundle's tar.gz is damaged ({exc}): restore it from another copy") \
                from exc


def _chunks(source: Source) -> Iterator[bytes]:
    if hasattr(source, "read"):
        while chunk := source.read(CHUNK):
            yield chunk
    else:
        yield from (bytes(chunk) for chunk in source if chunk)


def _members(source: Source) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Each member of a tar.gz stream, with its tar (for extractfile); the whole stream is checked at the end."""
    gunzip = _Gunzip(source)
    try:
        with tarfile.open(fileobj=gunzip, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                yield tar, member
            gunzip.check_end(tar.offset)
    except (tarfile.TarError, EOFError) as exc:
        raise ArtifactUnreadable(f"the config bundle's tar is unreadable ({exc}): restore it from another copy") \
            from exc


def list_members(source: Source) -> list[str]:
    """The member names of a tar.gz stream, reading (and checking) all of it."""
    return [member.name for _, member in _members(source)]


def read_members(source: Source, wanted: Callable[[str], bool], limit: int = CHUNK) -> dict[str, bytes]:
    """The content of each regular member whose name `wanted` accepts (in memory: at most `limit` bytes each,
    a larger one is refused), reading and checking all of the stream. For small files (.env, openwatch.env)."""
    found: dict[str, bytes] = {}
    for tar, member in _members(source):
        if member.isreg() and wanted(member.name):
            if member.size > limit:
                raise ArtifactUnreadable(f"config bundle member {member.name!r} is {member.size} bytes, more than "
                                         f"the {limit} read into memory")
            data = tar.extractfile(member)
            found[member.name] = data.read() if data is not None else b""
    return found


@dataclass
class Extracted:
    """What extract_to wrote: member names restored, and those skipped (devices, fifos, the bundle's root)."""

    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def extract_to(source: Source, dest_dir: Path) -> Extracted:
    """Extract a tar.gz stream into a new folder (0700), each file with its own mode; see the module docstring.

    On any refusal or error, what was written is removed again and the folder is left as it was found.
    """
    created = _prepare_dest(dest_dir)
    root = Path(os.path.realpath(dest_dir))
    result = Extracted()
    dir_modes: list[tuple[Path, int, float]] = []
    try:
        for tar, member in _members(source):
            try:
                _extract_member(tar, member, root, result, dir_modes)
            except (tarfile.TarError, EOFError) as exc:  # the member's data ends early (a damaged tar)
                raise ArtifactUnreadable(f"config bundle member {member.name!r} is unreadable ({exc}): "
                                         "restore it from another copy") from exc
        for path, mode, mtime in sorted(dir_modes, key=lambda item: len(item[0].parts), reverse=True):
            os.utime(path, (mtime, mtime), follow_symlinks=False)  # deepest first, before a parent turns 0500
            os.chmod(path, mode, follow_symlinks=False)
    except BaseException:
        _undo(root, created)
        raise
    return result


def _prepare_dest(dest: Path) -> bool:
    """Create the folder 0700 (True), or accept an existing empty one (False); anything else is refused."""
    if os.path.islink(dest):
        raise RestoreRefused(f"restore folder {dest} is a link: give a new folder")
    if dest.exists():
        if not dest.is_dir():
            raise RestoreRefused(f"restore folder {dest} is not a folder: give a new folder")
        if any(dest.iterdir()):
            raise RestoreRefused(f"restore folder {dest} is not empty: give a new folder "
                                 "(configuration is never restored over existing files)")
        os.chmod(dest, DEST_MODE)
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.mkdir(dest, DEST_MODE)
    os.chmod(dest, DEST_MODE)  # mkdir's mode is masked by the umask
    return True


def _undo(root: Path, created: bool) -> None:
    if created:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in root.iterdir():  # rmtree never follows links: a restored link's target is left alone
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _refuse(member: str, why: str) -> RestoreRefused:
    return RestoreRefused(f"config bundle member {member!r} {why}: refused, nothing was restored")


def safe_name(name: str) -> str | None:
    """The member's relative path, or None for the bundle's root ('.', './'); refuses absolute names and `..`."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _refuse(name, "has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refuse(name, "climbs out with '..'")
    if "\0" in name:
        raise _refuse(name, "has a NUL in its name")
    return "/".join(parts) or None


def _parent_inside(root: Path, relative: str, member: str) -> Path:
    """dest/relative's parent, created as real folders (0700); a link on the way is refused (tar-slip)."""
    current = root
    for part in posixpath.dirname(relative).split("/") if "/" in relative else []:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, DEST_MODE)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise _refuse(member, f"would be written through {current.relative_to(root)}, which is not a folder")
    return root / relative


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, result: Extracted,
                    dir_modes: list[tuple[Path, int, float]]) -> None:
    relative = safe_name(member.name)
    if relative is None or not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        result.skipped.append(member.name)  # the root stays 0700; devices and fifos are no configuration
        return
    target = _parent_inside(root, relative, member.name)
    mode = member.mode & 0o777  # no setuid/setgid/sticky in a restored configuration
    if member.isdir():
        if not os.path.lexists(target):
            os.mkdir(target, DEST_MODE)
        elif not (target.is_dir() and not target.is_symlink()):
            raise _refuse(member.name, "is a folder where the bundle already put something else")
        dir_modes.append((target, mode, float(member.mtime)))
    else:
        _remove_earlier(target, member.name)
        if member.issym():
            os.symlink(member.linkname, target)
        elif member.islnk():
            os.link(_hardlink_source(root, member), target, follow_symlinks=False)
        else:
            _write_file(tar, member, target, mode)
    result.restored.append(member.name)


def _remove_earlier(target: Path, member: str) -> None:
    # A tar may hold a name twice (appended); the later one wins, as with tar. A folder is not replaced.
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            raise _refuse(member, "would replace a folder of the bundle")
        target.unlink()


def _hardlink_source(root: Path, member: tarfile.TarInfo) -> Path:
    try:
        linked = safe_name(member.linkname)
    except RestoreRefused:
        linked = None
    if linked is None:
        raise _refuse(member.name, f"is a hard link to {member.linkname!r}, outside the restore folder")
    source = _parent_inside(root, linked, member.name)
    if not (os.path.lexists(source) and stat.S_ISREG(os.lstat(source).st_mode)):
        raise _refuse(member.name, "is a hard link to no earlier file of the bundle")
    return source


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, mode: int) -> None:
    data = tar.extractfile(member)
    if data is None:
        raise ArtifactUnreadable(f"config bundle member {member.name!r} has no data: restore it from another copy")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := data.read(CHUNK):
            out.write(chunk)
        os.fchmod(out.fileno(), mode)
    os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
