"""The config bundle's tar.gz against real files and the real `tar`: what it stores, what it never reads, and
an extraction that refuses every way out of its folder."""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from openwatch_backup.errors import ArtifactUnreadable, BackupError, ConfigError, RestoreRefused
from openwatch_backup.secrets.bundle_inputs import arcname_of, config_paths
from openwatch_backup.secrets.bundle_tar import Extracted, extract_to, list_members, write_bundle
from openwatch_backup.secrets.openssl_enc import Decryptor, Encryptor

MARKER = b"OUTSIDE-MARKER-4b1d9c"


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Path]:
    """keys/ (0700, id_rsa 0600), certs/ (0755, server.crt 0644, a link out), .env (0600), and a file outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(MARKER + b"\n")
    keys = tmp_path / "openwatch" / "security" / "keys"
    certs = tmp_path / "openwatch" / "security" / "certs"
    keys.mkdir(parents=True)
    certs.mkdir(parents=True)
    (keys / "id_rsa").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
    (keys / "id_rsa.pub").write_bytes(b"ssh-ed25519 AAAA test\n")
    (certs / "server.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nxyz\n")
    (certs / "leak.pem").symlink_to(outside / "secret.txt")
    (certs / "current").symlink_to("server.crt")
    env = tmp_path / "openwatch" / ".env"
    env.write_bytes(b"OPENWATCH_MASTER_KEY=k\n")
    os.chmod(keys, 0o700)
    os.chmod(keys / "id_rsa", 0o600)
    os.chmod(keys / "id_rsa.pub", 0o644)
    os.chmod(certs, 0o755)
    os.chmod(certs / "server.crt", 0o644)
    os.chmod(env, 0o600)
    return {"keys": keys, "certs": certs, "env": env, "outside": outside}


def _bundle(paths: list[Path], env: bytes | None = b"OPENWATCH_MASTER_KEY=abc\n") -> bytes:
    out = io.BytesIO()
    write_bundle(paths, out, env)
    return out.getvalue()


def _tar(*args: str | Path) -> str:
    return subprocess.run(["tar", *map(str, args)], check=True, capture_output=True, text=True).stdout


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_tar_cli_extracts_identical_bytes_and_modes(config: dict[str, Path], tmp_path: Path) -> None:
    paths = [config["keys"], config["certs"], config["env"]]
    archive = tmp_path / "bundle.tar.gz"
    archive.write_bytes(_bundle(paths))
    out = tmp_path / "by-tar"
    out.mkdir()

    _tar("xzpf", archive, "-C", out)

    for source in [config["keys"] / "id_rsa", config["keys"] / "id_rsa.pub", config["certs"] / "server.crt",
                   config["env"]]:
        restored = out / arcname_of(source)
        assert restored.read_bytes() == source.read_bytes()
        assert _mode(restored) == _mode(source)
    assert _mode(out / arcname_of(config["keys"])) == 0o700
    assert _mode(out / arcname_of(config["keys"] / "id_rsa")) == 0o600
    assert _mode(out / arcname_of(config["certs"] / "server.crt")) == 0o644
    assert (out / "openwatch.env").read_bytes() == b"OPENWATCH_MASTER_KEY=abc\n"
    assert _mode(out / "openwatch.env") == 0o600
    assert os.readlink(out / arcname_of(config["certs"] / "current")) == "server.crt"


def test_link_out_of_the_paths_is_stored_as_a_link_and_its_target_never_read(config: dict[str, Path],
                                                                             tmp_path: Path) -> None:
    archive = tmp_path / "bundle.tar.gz"
    archive.write_bytes(_bundle([config["certs"]]))

    listing = _tar("tvzf", archive)
    link_line = next(line for line in listing.splitlines() if "leak.pem" in line)
    assert link_line.startswith("l")
    assert link_line.endswith(f"leak.pem -> {config['outside'] / 'secret.txt'}")
    assert MARKER not in gzip.decompress(archive.read_bytes())


def test_owners_are_numeric_only(config: dict[str, Path]) -> None:
    with tarfile.open(fileobj=io.BytesIO(_bundle([config["keys"]])), mode="r:gz") as tar:
        members = tar.getmembers()
    assert {(m.uname, m.gname) for m in members} == {("", "")}
    assert {m.uid for m in members} == {os.getuid()}
    assert [m.name for m in members] == ["openwatch.env", arcname_of(config["keys"]),
                                         arcname_of(config["keys"] / "id_rsa"),
                                         arcname_of(config["keys"] / "id_rsa.pub")]


def test_missing_path_is_one_line_naming_it(config: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-certs"
    paths = config_paths(f"{config['keys']}, {missing}")
    sink: list[bytes] = []

    with pytest.raises(ConfigError) as caught:
        write_bundle(paths, sink.append)

    assert str(caught.value) == (f"config path {missing} does not exist: create it or remove it from "
                                 "OPENWATCH_BACKUP_CONFIG_PATHS")
    assert sink == []  # refused before a byte went out


def test_stream_keeps_memory_bounded_and_lists_back(tmp_path: Path) -> None:
    big = tmp_path / "data"
    big.mkdir()
    with open(big / "blob.bin", "wb") as handle:
        for _ in range(24):
            handle.write(os.urandom(1024 * 1024))
    chunks: list[int] = []
    archive = tmp_path / "big.tar.gz"

    tracemalloc.start()
    with open(archive, "wb") as out:
        def sink(data: bytes) -> None:
            chunks.append(len(data))
            out.write(data)
        write_bundle([big], sink, None)
        _, peak_write = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with open(archive, "rb") as stream:
        names = list_members(stream)
    _, peak_read = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert names == [arcname_of(big), arcname_of(big / "blob.bin")]
    assert max(chunks) <= 64 * 1024
    assert peak_write < 8 * 1024 * 1024
    assert peak_read < 8 * 1024 * 1024


def test_extract_to_a_new_folder_keeps_modes_and_links(config: dict[str, Path], tmp_path: Path) -> None:
    data = _bundle([config["keys"], config["certs"]])
    dest = tmp_path / "restored" / "config"

    result = extract_to(io.BytesIO(data), dest)

    assert _mode(dest) == 0o700
    assert result == Extracted(restored=list_members(io.BytesIO(data)), skipped=[])
    key = dest / arcname_of(config["keys"] / "id_rsa")
    assert key.read_bytes() == (config["keys"] / "id_rsa").read_bytes()
    assert _mode(key) == 0o600
    assert _mode(dest / arcname_of(config["keys"])) == 0o700
    assert _mode(dest / arcname_of(config["certs"])) == 0o755
    assert _mode(dest / arcname_of(config["certs"] / "server.crt")) == 0o644
    assert _mode(dest / "openwatch.env") == 0o600
    # Links come back as the links they were; nothing is read or written through them.
    assert os.readlink(dest / arcname_of(config["certs"] / "leak.pem")) == str(config["outside"] / "secret.txt")
    assert sorted(p.name for p in config["outside"].iterdir()) == ["secret.txt"]


def test_extract_to_refuses_a_folder_that_is_not_empty(config: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")

    with pytest.raises(RestoreRefused) as caught:
        extract_to(io.BytesIO(_bundle([config["keys"]])), dest)

    assert str(caught.value) == (f"restore folder {dest} is not empty: give a new folder "
                                 "(configuration is never restored over existing files)")
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def _crafted(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _file(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.mark.parametrize(("case", "message"), [
    ("absolute", "config bundle member '{victim}/abs.txt' has an absolute path: refused, nothing was restored"),
    ("dotdot", "config bundle member '../victim/dotdot.txt' climbs out with '..': refused, nothing was restored"),
    ("through-link", "config bundle member 'escape/through.txt' would be written through escape, which is not "
                     "a folder: refused, nothing was restored"),
    ("hardlink-out", "config bundle member 'hard' is a hard link to '../victim/precious', outside the restore "
                     "folder: refused, nothing was restored"),
])
def test_extract_to_refuses_a_crafted_tar(tmp_path: Path, case: str, message: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep")
    good = _file("good/ok.txt", b"fine\n")
    evil = {
        "absolute": [_file(f"{victim}/abs.txt")],
        "dotdot": [_file("../victim/dotdot.txt")],
        "through-link": [_link("escape", str(victim)), _file("escape/through.txt")],
        "hardlink-out": [_link("hard", "../victim/precious", tarfile.LNKTYPE)],
    }[case]
    dest = tmp_path / "dest"

    with pytest.raises(RestoreRefused) as caught:
        extract_to(io.BytesIO(_crafted(good, *evil)), dest)

    assert str(caught.value) == message.format(victim=victim)
    assert sorted(p.name for p in victim.iterdir()) == ["precious"]
    assert (victim / "precious").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]  # the new folder and good/ok.txt are gone


def test_extract_to_skips_devices_and_fifos(tmp_path: Path) -> None:
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    dev = tarfile.TarInfo("null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    dest = tmp_path / "dest"

    result = extract_to(io.BytesIO(_crafted((fifo, None), (dev, None), _file("a.txt"))), dest)

    assert result == Extracted(restored=["a.txt"], skipped=["pipe", "null"])
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]


def test_damaged_and_truncated_streams_are_unreadable(config: dict[str, Path], tmp_path: Path) -> None:
    data = _bundle([config["keys"]])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01

    for broken in (data[: len(data) - 9], bytes(flipped)):
        with pytest.raises(ArtifactUnreadable):
            list_members(io.BytesIO(broken))
        dest = tmp_path / f"dest{len(broken)}"
        with pytest.raises(ArtifactUnreadable):
            extract_to(io.BytesIO(broken), dest)
        assert not dest.exists()


def test_reads_a_bundle_made_by_the_tar_cli(config: dict[str, Path], tmp_path: Path) -> None:
    archive = tmp_path / "cli.tar.gz"
    subprocess.run(["tar", "czf", str(archive), "-C", str(config["keys"].parent), "keys"], check=True)
    chunks = [archive.read_bytes()[i:i + 100] for i in range(0, archive.stat().st_size, 100)]

    assert sorted(list_members(chunks)) == ["keys", "keys/id_rsa", "keys/id_rsa.pub"]  # tar's order: readdir's
    dest = tmp_path / "dest"
    extract_to(iter(chunks), dest)
    assert (dest / "keys" / "id_rsa").read_bytes() == (config["keys"] / "id_rsa").read_bytes()
    assert _mode(dest / "keys" / "id_rsa") == 0o600


def test_listed_links_are_followed_links_below_are_not_and_fifos_are_left_out(config: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    os.mkfifo(config["keys"] / "pipe")  # reading it would block the backup forever
    listed_dir = tmp_path / "keys-link"
    listed_dir.symlink_to(config["keys"])
    listed_env = tmp_path / "env-link"
    listed_env.symlink_to(config["env"])

    data = _bundle([listed_dir, listed_env], None)

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        kinds = {m.name: (m.type, m.mode) for m in tar.getmembers()}
        env_bytes = tar.extractfile(arcname_of(listed_env)).read()  # type: ignore[union-attr]
    assert kinds == {
        arcname_of(listed_dir): (tarfile.DIRTYPE, 0o700),
        arcname_of(listed_dir / "id_rsa"): (tarfile.REGTYPE, 0o600),
        arcname_of(listed_dir / "id_rsa.pub"): (tarfile.REGTYPE, 0o644),
        arcname_of(listed_env): (tarfile.REGTYPE, 0o600),
    }
    assert env_bytes == config["env"].read_bytes()


@pytest.mark.parametrize(("cut", "message"), [
    (512 + 2000, "config bundle member 'a' is unreadable (unexpected end of data): restore it from another copy"),
    (512 + 5120 + 100, "the config bundle's tar is truncated (no end-of-archive marker): restore it from another copy"),
    (2 * (512 + 5120), "the config bundle's tar is truncated (no end-of-archive marker): restore it from another copy"),
])
def test_a_cut_tar_in_a_whole_gzip_is_unreadable(tmp_path: Path, cut: int, message: str) -> None:
    # tarfile alone ends its member list silently at a cut header or a missing end marker.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in ("a", "b"):
            info = tarfile.TarInfo(name)
            info.size = 5000
            tar.addfile(info, io.BytesIO(os.urandom(5000)))
    whole = gzip.compress(raw.getvalue())
    cut_gz = gzip.compress(raw.getvalue()[:cut])
    dest = tmp_path / "dest"

    assert list_members(io.BytesIO(whole)) == ["a", "b"]
    with pytest.raises(ArtifactUnreadable):
        list_members(io.BytesIO(cut_gz))
    with pytest.raises(ArtifactUnreadable) as caught:
        extract_to(io.BytesIO(cut_gz), dest)
    assert str(caught.value) == message
    assert not dest.exists()


def test_the_openssl_cli_and_tar_open_our_encrypted_bundle_and_we_open_theirs(config: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    # The guide's recovery path on a host with nothing of ours: openssl enc -d ... | tar xz.
    passfile = tmp_path / "pass"
    passfile.write_bytes(b"correct horse battery")
    encryptor = Encryptor(b"correct horse battery")
    bundle = tmp_path / "config_20261130_020000.tar.gz.enc"
    with open(bundle, "wb") as out:
        write_bundle([config["keys"]], lambda data: out.write(encryptor.update(data)), b"OPENWATCH_MASTER_KEY=m\n")
        out.write(encryptor.finalize())
    by_cli = tmp_path / "by-cli"
    by_cli.mkdir()
    subprocess.run(f"openssl enc -d -aes-256-cbc -salt -pbkdf2 -in {bundle} -pass file:{passfile} "
                   f"| tar xzpf - -C {by_cli}", shell=True, check=True)
    key = by_cli / arcname_of(config["keys"] / "id_rsa")
    assert key.read_bytes() == (config["keys"] / "id_rsa").read_bytes()
    assert _mode(key) == 0o600
    assert (by_cli / "openwatch.env").read_bytes() == b"OPENWATCH_MASTER_KEY=m\n"

    theirs = tmp_path / "theirs.tar.gz.enc"
    subprocess.run(f"tar czf - -C {config['keys'].parent} keys | openssl enc -aes-256-cbc -salt -pbkdf2 "
                   f"-pass file:{passfile} -out {theirs}", shell=True, check=True)
    decryptor = Decryptor(b"correct horse battery")
    data = theirs.read_bytes()
    chunks = [decryptor.update(data[i:i + 1000]) for i in range(0, len(data), 1000)] + [decryptor.finalize()]
    dest = tmp_path / "ours"
    extract_to(chunks, dest)
    assert (dest / "keys" / "id_rsa").read_bytes() == (config["keys"] / "id_rsa").read_bytes()
    assert _mode(dest / "keys" / "id_rsa") == 0o600
    assert _mode(dest / "keys") == 0o700


def test_a_file_that_shrinks_while_read_is_one_line_and_a_failing_sink_keeps_its_error(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    victim = folder / "big"
    victim.write_bytes(os.urandom(4 * 1024 * 1024))
    written = 0

    def shrinking_sink(data: bytes) -> None:
        nonlocal written
        written += len(data)
        if written > 1024 * 1024 and victim.stat().st_size:
            os.truncate(victim, 1000)  # the admin rewrites the file mid-backup

    with pytest.raises(BackupError) as caught:
        write_bundle([folder], shrinking_sink, None)
    assert str(caught.value) == f"config path {victim} changed while it was read: run the backup again"

    def full_disk(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        write_bundle([folder], full_disk, None)
