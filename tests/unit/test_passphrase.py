"""passphrase: read like `openssl enc -pass file:` (first line), refused when empty or unsafe, never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openwatch_backup.errors import ConfigError
from openwatch_backup.secrets.passphrase import (
    FILE_SETTING,
    VALUE_SETTING,
    Passphrase,
    read_passphrase_file,
    require_passphrase,
    resolve_passphrase,
)

SECRET = "s3cret-Passphrase"


def passfile(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "passphrase"
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("content", [b"s3cret-Passphrase", b"s3cret-Passphrase\n", b"s3cret-Passphrase\n\n"])
def test_the_first_line_without_its_newline(tmp_path: Path, content: bytes) -> None:
    found = read_passphrase_file(passfile(tmp_path, content))
    assert found == Passphrase(SECRET.encode(), FILE_SETTING, ())


def test_spaces_are_kept_as_openssl_keeps_them(tmp_path: Path) -> None:
    assert read_passphrase_file(passfile(tmp_path, b" two words \n")).value == b" two words "


def test_a_windows_line_end_keeps_the_carriage_return_and_warns(tmp_path: Path) -> None:
    path = passfile(tmp_path, b"s3cret-Passphrase\r\n")
    found = read_passphrase_file(path)
    assert found.value == b"s3cret-Passphrase\r"
    assert found.warnings == (
        f"{FILE_SETTING} {path} has a Windows line end: the passphrase ends in a carriage return (openssl "
        "-pass file: keeps it too, but a typed passphrase will not match); save the file with a Unix line end",)


def test_more_lines_warn_and_only_the_first_counts(tmp_path: Path) -> None:
    path = passfile(tmp_path, b"s3cret-Passphrase\nsecond line\n")
    found = read_passphrase_file(path)
    assert found.value == SECRET.encode()
    assert found.warnings == (f"{FILE_SETTING} {path} has more than one line: only the first is the passphrase "
                              "(as for openssl -pass file:); remove the others",)


@pytest.mark.parametrize("content", [b"", b"\n", b"\nsecond-line-is-not-it\n"])
def test_an_empty_first_line_is_refused(tmp_path: Path, content: bytes) -> None:
    path = passfile(tmp_path, content)
    with pytest.raises(ConfigError) as raised:
        read_passphrase_file(path)
    assert str(raised.value) == (f"{FILE_SETTING} {path} (first line) is empty: write a long random passphrase "
                                 "there (e.g. `openssl rand -base64 32`)")


def test_a_nul_byte_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="contains a NUL byte"):
        read_passphrase_file(passfile(tmp_path, b"ab\0cd\n"))


def test_longer_than_openssl_reads_is_refused(tmp_path: Path) -> None:
    assert len(read_passphrase_file(passfile(tmp_path, b"a" * 1023 + b"\n")).value) == 1023
    with pytest.raises(ConfigError) as raised:
        read_passphrase_file(passfile(tmp_path, b"a" * 1024 + b"\n"))
    assert str(raised.value) == (f"{FILE_SETTING} {tmp_path / 'passphrase'} (first line) is 1024 bytes; openssl "
                                 "-pass reads at most 1023: use a shorter passphrase")


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_file_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = passfile(tmp_path, b"s3cret-Passphrase\n", mode)
    with pytest.raises(ConfigError) as raised:
        read_passphrase_file(path)
    assert str(raised.value) == (f"{FILE_SETTING} {path} can be written by group or others (mode {mode:04o}): "
                                 f"run `chmod 600 {path}`")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o444])
def test_a_file_others_can_read_warns(tmp_path: Path, mode: int) -> None:
    path = passfile(tmp_path, b"s3cret-Passphrase\n", mode)
    found = read_passphrase_file(path)
    assert found.value == SECRET.encode()
    assert found.warnings == (f"{FILE_SETTING} {path} can be read by group or others (mode {mode:04o}): "
                              f"run `chmod 600 {path}` unless it is a container secret",)


def test_a_missing_file_and_a_folder_name_the_setting_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        read_passphrase_file(tmp_path / "nope")
    assert str(raised.value) == (f"{FILE_SETTING} {tmp_path / 'nope'} does not exist: create it (mode 600) with "
                                 "the passphrase on its first line, or fix the path")
    with pytest.raises(ConfigError) as raised:
        read_passphrase_file(tmp_path)
    assert str(raised.value) == f"{FILE_SETTING} {tmp_path} is a folder: point it at the file holding the passphrase"


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_passphrase_file(fifo)  # does not wait for a writer


def test_a_symlink_to_a_secret_is_followed(tmp_path: Path) -> None:
    """k8s mounts secrets as symlinks into a ..data folder."""
    target = passfile(tmp_path, b"s3cret-Passphrase\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert read_passphrase_file(link).value == SECRET.encode()


def test_the_value_setting() -> None:
    assert resolve_passphrase(None, SECRET) == Passphrase(SECRET.encode(), VALUE_SETTING, ())
    with pytest.raises(ConfigError) as raised:
        resolve_passphrase(None, "line one\nline two")
    assert str(raised.value) == (f"{VALUE_SETTING} contains a line break; openssl -pass file: reads only the first "
                                 f"line: use a one-line passphrase, preferably in {FILE_SETTING}")


def test_the_file_is_preferred_and_the_value_warned_about(tmp_path: Path) -> None:
    found = resolve_passphrase(passfile(tmp_path, b"from-the-file\n"), SECRET)
    assert found is not None
    assert (found.value, found.source) == (b"from-the-file", FILE_SETTING)
    assert found.warnings == (f"both {FILE_SETTING} and {VALUE_SETTING} are set: the file is used; "
                              f"unset {VALUE_SETTING}",)


@pytest.mark.parametrize(("file", "value"), [(None, None), ("", ""), (None, "")])
def test_nothing_set_is_none_and_require_refuses_in_one_line(file: str | None, value: str | None) -> None:
    assert resolve_passphrase(file, value) is None
    with pytest.raises(ConfigError) as raised:
        require_passphrase(file, value)
    assert str(raised.value) == (f"no passphrase for config bundles is set: set {FILE_SETTING} to a file (mode 600) "
                                 "holding it on its first line")
    assert raised.value.exit_status == 2


def test_the_passphrase_never_shows(tmp_path: Path) -> None:
    found = require_passphrase(passfile(tmp_path, b"s3cret-Passphrase\n", 0o644), None)
    assert found.value == SECRET.encode()
    for text in (repr(found), str(found), *found.warnings):
        assert SECRET not in text
    assert str(found) == f"the passphrase from {FILE_SETTING}"
