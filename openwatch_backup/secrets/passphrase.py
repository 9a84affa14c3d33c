"""The config bundle's passphrase, read the way `openssl enc -pass file:PASSFILE` reads it.

It comes from OPENWATCH_BACKUP_PASSPHRASE_FILE (preferred: nothing in the environment, a docker or k8s secret
works) or OPENWATCH_BACKUP_PASSPHRASE. The guide opens a bundle with `-pass file:PASSFILE`, and OpenSSL 3 takes
the FIRST LINE of that file, without its "\\n", keeps a "\\r", stops at a NUL byte and reads at most 1023 bytes.
We take exactly that line, so the same file opens the bundle on a host with nothing of ours, and refuse what
openssl would read differently from us (a NUL byte, a line over 1023 bytes) or what protects nothing (an empty
line; openssl would accept it).

Permissions: a file that group or others can WRITE is refused (someone else could swap the passphrase and leave
unopenable bundles); one they can READ gives a warning only, because docker and k8s secrets are mounted 0444 in
containers where no other user exists. The fix named is `chmod 600`.

Every message names the setting and the fix, and never contains the passphrase.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openwatch_backup.errors import ConfigError

if TYPE_CHECKING:
    from openwatch_backup.settings import Settings

FILE_SETTING = "OPENWATCH_BACKUP_PASSPHRASE_FILE"
VALUE_SETTING = "OPENWATCH_BACKUP_PASSPHRASE"
MAX_SIZE = 1023  # openssl's APP_PASS_LEN (1024) minus the terminating NUL: longer lines are silently cut
_READ_LIMIT = 64 * 1024  # enough to see the first line and whether more follows; never a whole wrong file


@dataclass(frozen=True)
class Passphrase:
    """The passphrase's bytes, where they came from, and warnings for the log. repr never shows the value."""

    value: bytes = field(repr=False)
    source: str  # the setting it came from
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"the passphrase from {self.source}"


def _check_value(value: bytes, setting: str, where: str) -> None:
    if not value:
        raise ConfigError(f"{setting} {where} is empty: write a long random passphrase there (e.g. "
                          "`openssl rand -base64 32`)")
    if b"\0" in value:
        raise ConfigError(f"{setting} {where} contains a NUL byte, where openssl -pass would stop reading: "
                          "use a passphrase without one")
    if len(value) > MAX_SIZE:
        raise ConfigError(f"{setting} {where} is {len(value)} bytes; openssl -pass reads at most {MAX_SIZE}: "
                          "use a shorter passphrase")


def _permissions(path: Path, mode: int) -> list[str]:
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{FILE_SETTING} {path} can be written by group or others (mode {stat.S_IMODE(mode):04o}): "
                          f"run `chmod 600 {path}`")
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [f"{FILE_SETTING} {path} can be read by group or others (mode {stat.S_IMODE(mode):04o}): "
                f"run `chmod 600 {path}` unless it is a container secret"]
    return []


def read_passphrase_file(path: str | os.PathLike[str]) -> Passphrase:
    """The first line of the file, as `openssl enc -pass file:PATH` reads it."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; a regular file ignores it.
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigError(f"{FILE_SETTING} {path} is not a regular file: point it at the file holding "
                                  "the passphrase")
            content = handle.read(_READ_LIMIT)
    except FileNotFoundError:
        raise ConfigError(f"{FILE_SETTING} {path} does not exist: create it (mode 600) with the passphrase "
                          "on its first line, or fix the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{FILE_SETTING} {path} is a folder: point it at the file holding the passphrase") from None
    except PermissionError:
        raise ConfigError(f"{FILE_SETTING} {path} cannot be read by this process (uid {os.getuid()}): give "
                          "the worker's user read access, mode 600") from None
    except OSError as exc:
        raise ConfigError(f"{FILE_SETTING} {path} cannot be read ({exc.strerror}): fix the file or the path") from None
    warnings = _permissions(path, mode)
    first, newline, rest = content.partition(b"\n")
    where = f"{path} (first line)"
    _check_value(first, FILE_SETTING, where)
    if first.endswith(b"\r"):
        warnings.append(f"{FILE_SETTING} {path} has a Windows line end: the passphrase ends in a carriage "
                        "return (openssl -pass file: keeps it too, but a typed passphrase will not match); "
                        "save the file with a Unix line end")
    if newline and rest.strip():
        warnings.append(f"{FILE_SETTING} {path} has more than one line: only the first is the passphrase "
                        "(as for openssl -pass file:); remove the others")
    return Passphrase(value=first, source=FILE_SETTING, warnings=tuple(warnings))


def passphrase_from_value(value: str) -> Passphrase:
    """The passphrase given in the environment, as the bytes the process received."""
    data = os.fsencode(value)
    _check_value(data, VALUE_SETTING, "(the value)")
    if b"\n" in data:
        raise ConfigError(f"{VALUE_SETTING} contains a line break; openssl -pass file: reads only the first "
                          f"line: use a one-line passphrase, preferably in {FILE_SETTING}")
    return Passphrase(value=data, source=VALUE_SETTING)


def resolve_passphrase(file: str | os.PathLike[str] | None, value: str | None) -> Passphrase | None:
    """The configured passphrase, the file preferred; None when neither setting is given (or both are empty)."""
    if file is not None and str(file) != "":
        found = read_passphrase_file(file)
        if value:
            return Passphrase(found.value, found.source,
                              (*found.warnings, f"both {FILE_SETTING} and {VALUE_SETTING} are set: the file is "
                                                f"used; unset {VALUE_SETTING}"))
        return found
    if value:
        return passphrase_from_value(value)
    return None  # an empty value counts as unset: compose passes `${VAR:-}` as ""


def require_passphrase(file: str | os.PathLike[str] | None, value: str | None) -> Passphrase:
    """The configured passphrase, or the one-line ConfigError a config backup refuses with."""
    found = resolve_passphrase(file, value)
    if found is None:
        raise ConfigError(f"no passphrase for config bundles is set: set {FILE_SETTING} to a file (mode 600) "
                          "holding it on its first line")
    return found


def configured(settings: Settings) -> Passphrase | None:
    """The passphrase the settings name (file preferred), or None when none is set."""
    value = settings.passphrase.get_secret_value() if settings.passphrase is not None else None
    return resolve_passphrase(settings.passphrase_file, value)


def required(settings: Settings) -> Passphrase:
    """The passphrase the settings name, or the one-line ConfigError a config backup refuses with."""
    value = settings.passphrase.get_secret_value() if settings.passphrase is not None else None
    return require_passphrase(settings.passphrase_file, value)
