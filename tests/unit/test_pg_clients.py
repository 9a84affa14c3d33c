"""find_client: a native pg_dump of the server's major is chosen without running a wrapper script at all.

Debian's /usr/bin/pg_dump is a Perl script (pg_wrapper) that picks a binary at each run from the environment;
asking it `--version` cost 40-80 ms of every backup, and the version it reports need not be the one that runs.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from openwatch_backup.executors import pg_clients
from openwatch_backup.executors.pg_clients import find_client, tool_version

NATIVE = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))


def _script(folder: Path, major: int, marker: Path) -> Path:
    """A `pg_dump` wrapper script that reports `major` and leaves `marker` behind when it runs."""
    folder.mkdir(parents=True)
    script = folder / "pg_dump"
    script.write_text(f"#!/bin/sh\n: > {marker}\necho 'pg_dump (PostgreSQL) {major}.99'\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def native_major() -> int:
    if not NATIVE:  # scripts/bootstrap installs Debian's postgresql-15 there; never a silent skip
        pytest.fail("no native pg_dump under /usr/lib/postgresql: run scripts/bootstrap", pytrace=False)
    tool = tool_version(NATIVE[0])
    assert tool is not None
    return tool.major


def _search_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, native: str) -> None:
    (tmp_path / "a" / "bin").mkdir(parents=True)
    os.symlink(native, tmp_path / "a" / "bin" / "pg_dump")  # a native binary (an ELF file behind the link)
    monkeypatch.setattr(pg_clients, "_SEARCH_GLOBS", (str(tmp_path / "*" / "bin"),))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


def test_native_binary_of_the_servers_major_wins_and_the_script_never_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_major: int) -> None:
    marker = tmp_path / "script-ran"
    _script(tmp_path / "0wrapper" / "bin", native_major, marker)  # sorts first by path, as /usr/bin/pg_dump does
    _search_only(monkeypatch, tmp_path, NATIVE[0])
    chosen = find_client("pg_dump", native_major, f"{native_major}.1", None)
    assert chosen.path == str(tmp_path / "a" / "bin" / "pg_dump")
    assert chosen.major == native_major
    assert not marker.exists()


def test_script_is_asked_when_no_native_binary_is_new_enough(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_major: int) -> None:
    marker = tmp_path / "script-ran"
    script = _script(tmp_path / "0wrapper" / "bin", native_major + 1, marker)
    _search_only(monkeypatch, tmp_path, NATIVE[0])
    chosen = find_client("pg_dump", native_major + 1, f"{native_major + 1}.0", None)
    assert (chosen.path, chosen.version) == (str(script), f"{native_major + 1}.99")
    assert marker.exists()
