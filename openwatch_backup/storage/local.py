"""A local directory (a Docker volume in OpenWatch). Files 0600, directories 0700.

New artifacts are written as `<name>.partial`, fsynced, then linked into place (never overwriting)
and the directory fsynced, so a crash leaves either nothing or a `.partial` the sweeper removes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from openwatch_backup.core.naming import PARTIAL_SUFFIX
from openwatch_backup.errors import InsufficientSpace, StorageError
from openwatch_backup.storage.base import StoredObject, write_whole
from openwatch_backup.storage.writeback import Writeback

DIR_MODE = 0o700
FILE_MODE = 0o600
_BUFFER = 1 << 20


def _describe_os_error(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {path.parent} is full; free space or point OPENWATCH_BACKUP_DIR elsewhere"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {path} ({exc.strerror}); make the directory writable by this user "
                f"(uid {os.getuid()}) or set OPENWATCH_BACKUP_DIR")
    return (f"cannot write {path} ({exc.strerror or exc}); point OPENWATCH_BACKUP_DIR at a directory this user "
            "can create and write")


class LocalWriter:
    def __init__(self, root: Path, key: str, final: Path) -> None:
        self.key = key
        self._final = final
        self._partial = final.with_name(final.name + PARTIAL_SUFFIX)
        try:
            fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise StorageError(_describe_os_error(exc, self._partial)) from exc
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=_BUFFER)
        self._writeback = Writeback(fd, self._file.flush)
        self._root = root

    def write(self, data: bytes) -> int:
        assert self._file is not None, "write after commit/abort"
        try:
            written = self._file.write(data)
            self._writeback.wrote(written)
            return written
        except OSError as exc:
            error = InsufficientSpace if exc.errno == errno.ENOSPC else StorageError
            raise error(_describe_os_error(exc, self._final)) from exc

    def commit(self) -> None:
        assert self._file is not None, "commit after commit/abort"
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.link(self._partial, self._final)  # fails rather than overwrite an existing artifact
            os.unlink(self._partial)
            _fsync_dir(self._final.parent)
        except OSError as exc:
            self.abort()
            error = InsufficientSpace if exc.errno == errno.ENOSPC else StorageError
            raise error(_describe_os_error(exc, self._final)) from exc

    def abort(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # a full disk can fail the final flush; the unlink matters
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self._partial.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise StorageError(f"refusing storage key {key!r}: keys are relative paths without '..'")
        return self.root.joinpath(*parts)

    def _ensure_dir(self, path: Path) -> None:
        """Create path and its missing parents; the backup root and everything below it 0700.

        mkdir(parents=True) would ignore the mode, so each level is made here. Folders above the
        root (say /openwatch/data) get the usual permissions: they are not ours.
        """
        try:
            missing = [p for p in (path, *path.parents) if not p.exists()]
            for directory in reversed(missing):
                ours = directory == self.root or self.root in directory.parents
                directory.mkdir(mode=DIR_MODE if ours else 0o755)
                if ours:
                    directory.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask
        except OSError as exc:
            raise StorageError(_describe_os_error(exc, path / "x")) from exc

    def check_writable(self) -> None:
        self._ensure_dir(self.root)
        probe = self.root / f".write-probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            raise StorageError(_describe_os_error(exc, probe)) from exc

    def free_bytes(self) -> int | None:
        # Before the first backup the folder may not exist yet: the free space is its nearest parent's.
        path = self.root
        while not path.exists() and path != path.parent:
            path = path.parent
        return shutil.disk_usage(path).free

    def open_writer(self, key: str) -> LocalWriter:
        final = self._path(key)
        self._ensure_dir(final.parent)
        if final.exists():
            raise StorageError(f"{final} already exists; refusing to overwrite an artifact")
        return LocalWriter(self.root, key, final)

    def put_bytes(self, key: str, data: bytes) -> None:
        write_whole(self.open_writer(key), data)

    def _existing(self, key: str) -> Path:
        """The path of a key to read, refused when a link leads it outside the backup folder."""
        path = self._path(key)
        resolved = path.resolve()
        if self.root.resolve() not in resolved.parents:
            raise StorageError(f"refusing {path}: it leads outside {self.root} (a symbolic link?)")
        return path

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._existing(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)} ({exc.strerror or exc})") from exc

    def open_reader(self, key: str) -> BinaryIO:
        try:
            return self._existing(key).open("rb")
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)} ({exc.strerror or exc})") from exc

    def exists(self, key: str) -> bool:
        path = self._path(key)
        return path.is_file() and not path.is_symlink()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Regular files below prefix (no symlinks, none followed), sorted by key. scandir, one stat per file:
        prune lists tens of thousands of files."""
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        found = []
        pending = [(str(base), base.relative_to(self.root).as_posix() if base != self.root else "")]
        while pending:
            directory, key_prefix = pending.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    key = f"{key_prefix}/{entry.name}" if key_prefix else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, key))
                    elif entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        found.append(StoredObject(key=key, size=stat.st_size,
                                                  modified=datetime.fromtimestamp(stat.st_mtime, UTC)))
        found.sort(key=lambda o: o.key)
        return found

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def location(self, key: str) -> str:
        return str(self._path(key))
