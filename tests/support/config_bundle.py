"""Config bundle tests' bench: real files (modes, a link out of the listed paths, a .env with the master key),
a passphrase file, the CLI as a real process, and the guide's openssl and tar commands."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CLI = Path(sys.executable).with_name("openwatch-backup")


@dataclass
class Bench:
    root: Path  # the listed inputs live under root/etc
    keys: Path
    certs: Path
    env_file: Path
    passfile: Path
    passphrase: str
    master_key: str
    backup_dir: Path
    url: str

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {})})

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run a command that must succeed; its --json output parsed when asked for, else its stdout."""
        done = self.cli(*args, env=env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return json.loads(done.stdout) if "--json" in args else done.stdout

    def backup(self) -> dict[str, Any]:
        run: dict[str, Any] = self.ok("backup", "--kind", "config", "--json")
        assert run["status"] == "succeeded", run
        return run

    def artifact(self, run: dict[str, Any]) -> Path:
        return self.backup_dir / "config" / run["details"]["artifact"]

    def manifest(self, run: dict[str, Any]) -> Path:
        return self.backup_dir / "config" / (run["details"]["artifact"] + ".manifest.json")

    def expected_files(self) -> dict[str, tuple[str, int, bytes | str]]:
        """Every listed input, by its member name: (type, mode, content or link target)."""
        found: dict[str, tuple[str, int, bytes | str]] = {}
        for top in (self.keys, self.certs, self.env_file):
            for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
                st = os.lstat(path)
                name = str(path).lstrip("/")
                if stat.S_ISLNK(st.st_mode):
                    found[name] = ("link", 0, os.readlink(path))
                elif stat.S_ISDIR(st.st_mode):
                    found[name] = ("dir", stat.S_IMODE(st.st_mode), b"")
                else:
                    found[name] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
        return found


def tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """A restored or extracted folder in expected_files' form (openwatch.env included)."""
    found: dict[str, tuple[str, int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        name = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            found[name] = ("link", 0, os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            found[name] = ("dir", stat.S_IMODE(st.st_mode), b"")
        else:
            found[name] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return found


def restored_inputs(root: Path, bench: Bench) -> dict[str, tuple[str, int, bytes | str]]:
    """tree(root) limited to the listed inputs (no openwatch.env, no parents of the listed paths)."""
    expected = bench.expected_files()
    return {name: entry for name, entry in tree(root).items() if name in expected}


def make_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "etc"
    keys, certs = root / "keys", root / "certs"
    (keys / "deploy").mkdir(parents=True)
    certs.mkdir()
    files = {keys / "id_ed25519": (b"-----BEGIN OPENSSH PRIVATE KEY-----\nc2FtcGxl\n-----END OPENSSH "
                                   b"PRIVATE KEY-----\n", 0o600),
             keys / "id_ed25519.pub": (b"ssh-ed25519 AAAAC3Nz sample@host\n", 0o644),
             keys / "deploy" / "run.sh": (b"#!/bin/sh\necho deploy\n", 0o750),
             keys / "deploy" / "binary.bin": (bytes(range(256)) * 64, 0o640),
             certs / "server.key": (b"-----BEGIN PRIVATE KEY-----\nMIIsample\n-----END PRIVATE KEY-----\n", 0o400)}
    for path, (content, mode) in files.items():
        path.write_bytes(content)
        path.chmod(mode)
    (keys / "deploy").chmod(0o710)
    os.symlink("/etc/passwd", keys / "passwd")  # points out of the listed paths: stored as a link, never followed
    os.symlink("id_ed25519.pub", keys / "current.pub")
    return keys, certs, root


@pytest.fixture
def bench(backup_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bench:
    """backup_env + config inputs + a passphrase file; no other OPENWATCH_*/PG* variable of the outer shell."""
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    keys, certs, root = make_inputs(tmp_path)
    passphrase, master_key = f"pp-{secrets.token_hex(16)}", f"mk-{secrets.token_hex(24)}"
    env_file = root / "openwatch.env.file"
    env_file.write_text(f"OPENWATCH_MASTER_KEY={master_key}\nOPENWATCH_DEBUG=false\n")
    env_file.chmod(0o600)
    passfile = tmp_path / "passphrase"
    passfile.write_text(passphrase + "\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("OPENWATCH_BACKUP_CONFIG_PATHS", f"{keys},{certs}")
    monkeypatch.setenv("OPENWATCH_BACKUP_ENV_FILE", str(env_file))
    monkeypatch.setenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", str(passfile))
    monkeypatch.setenv("OPENWATCH_MASTER_KEY", master_key)  # the worker's settings: into openwatch.env
    made = Bench(root=root, keys=keys, certs=certs, env_file=env_file, passfile=passfile, passphrase=passphrase,
                 master_key=master_key, backup_dir=Path(backup_env.dir), url=backup_env.url)
    made.ok("db", "upgrade")
    return made


def openssl_decrypt_untar(bundle: Path, passfile: Path, into: Path) -> None:
    """The guide's recovery line, verbatim: openssl enc -d ... -pass file:PASSFILE | tar xz."""
    into.mkdir()
    done = subprocess.run(f"openssl enc -d -aes-256-cbc -salt -pbkdf2 -in '{bundle}' -pass 'file:{passfile}' "
                          f"| tar xzf - -C '{into}'", shell=True, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
