"""The config bundle's inputs: the path list, the change digest, the settings snapshot, the certificates."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openwatch_backup.errors import ConfigError, RestoreRefused
from openwatch_backup.secrets.bundle_inputs import DEFAULT_CONFIG_PATHS, check_paths, config_paths, inputs_digest
from openwatch_backup.secrets.bundle_tar import safe_name
from openwatch_backup.secrets.certificates import describe_certificates, expiring
from openwatch_backup.secrets.env_snapshot import openwatch_env

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


# --- the path list -------------------------------------------------------------------------------------------

def test_default_paths_are_openwatchs_folders_plus_the_env_file_when_given() -> None:
    assert DEFAULT_CONFIG_PATHS == ("/openwatch/security/keys", "/openwatch/security/certs")
    assert config_paths(None) == [Path("/openwatch/security/keys"), Path("/openwatch/security/certs")]
    assert config_paths(" , ", "/opt/openwatch/.env") == [Path("/openwatch/security/keys"),
                                                          Path("/openwatch/security/certs"),
                                                          Path("/opt/openwatch/.env")]


def test_listed_paths_are_split_made_absolute_and_deduplicated(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert config_paths("/etc/a/, certs,/etc/a,/etc/b/../c", "/ignored/.env") == [
        Path("/etc/a"), tmp_path / "certs", Path("/etc/c")]


def test_a_missing_path_is_one_line_naming_it_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check_paths([tmp_path, tmp_path / "gone"])
    assert str(caught.value) == (f"config path {tmp_path / 'gone'} does not exist: create it or remove it from "
                                 "OPENWATCH_BACKUP_CONFIG_PATHS")


def test_a_path_inside_another_listed_one_is_packed_once(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    assert check_paths([tmp_path / "keys", tmp_path]) == [tmp_path]


def test_the_root_cannot_be_listed() -> None:
    with pytest.raises(ConfigError, match=r"^config path / cannot be packed"):
        check_paths([Path("/")])


# --- the change digest ---------------------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "keys"
    (root / "sub").mkdir(parents=True)
    (root / "id_rsa").write_bytes(b"key-bytes-1")
    (root / "sub" / "cert.crt").write_bytes(b"cert")
    (root / "link").symlink_to("id_rsa")
    os.chmod(root / "id_rsa", 0o600)
    return root


def test_digest_is_stable_and_ignores_mtimes(tree: Path) -> None:
    before = inputs_digest([tree])
    os.utime(tree / "id_rsa", (1_000_000, 1_000_000))
    (tree / "sub" / "cert.crt").write_bytes(b"cert")  # rewritten with the same bytes
    assert inputs_digest([tree]) == before
    assert len(before) == 64


@pytest.mark.parametrize("change", ["byte", "mode", "name", "new file", "link target", "extra"])
def test_digest_changes_with_any_byte_mode_name_or_link(tree: Path, change: str) -> None:
    before = inputs_digest([tree], [b"OPENWATCH_MASTER_KEY=a\n"])
    if change == "byte":
        (tree / "id_rsa").write_bytes(b"key-bytes-2")  # same size, one byte differs
    elif change == "mode":
        os.chmod(tree / "id_rsa", 0o640)
    elif change == "name":
        (tree / "sub" / "cert.crt").rename(tree / "sub" / "cert.pem")
    elif change == "new file":
        (tree / "sub" / "empty").write_bytes(b"")
    elif change == "link target":
        (tree / "link").unlink()
        (tree / "link").symlink_to("sub")
    extra = b"OPENWATCH_MASTER_KEY=b\n" if change == "extra" else b"OPENWATCH_MASTER_KEY=a\n"
    assert inputs_digest([tree], [extra]) != before


def test_digest_holds_no_content(tree: Path) -> None:
    assert "key-bytes" not in inputs_digest([tree])
    assert inputs_digest([tree]) != inputs_digest([tree / "sub"])


# --- the settings snapshot -----------------------------------------------------------------------------------

TRICKY = {
    "OPENWATCH_MASTER_KEY": "Zm9vYmFy+/==",
    "OPENWATCH_DATABASE_URL": "postgresql://u:p%40ss@db:5432/openwatch",
    "OPENWATCH_QUOTES": "it's \"quoted\" $HOME `id` \\ back",
    "OPENWATCH_SPACES": "  lead and trail  ",
    "OPENWATCH_NEWLINE": "line1\nline2",
    "OPENWATCH_EMPTY": "",
    "OPENWATCH_HASH": "#not-a-comment",
    "OPENWATCH_UNICODE": "gr\u00fc\u00dfe",
    "OPENWATCH_BACKUP_DIR": "/var/backups",
    "POSTGRES_PASSWORD": "pg pass;rm -rf /",
    "REDIS_PASSWORD": "r!",
}
LEFT_OUT = {
    "OPENWATCH_BACKUP_PASSPHRASE": "left-out-passphrase",
    "REDIS_URL": "left-out-redis-url",
    "HOME": "left-out-home",
    "AWS_SECRET_ACCESS_KEY": "left-out-aws",
    "MY_OPENWATCH_X": "left-out-suffix",
}


def test_snapshot_takes_openwatch_postgres_and_redis_password_only() -> None:
    text = openwatch_env({**TRICKY, **LEFT_OUT}).decode()
    starts = [line.split("=", 1)[0] for line in text.splitlines() if line.startswith(tuple(TRICKY))]
    assert starts == sorted(TRICKY)
    assert text.startswith("# ")
    assert "left-out" not in text
    assert "OPENWATCH_MASTER_KEY=Zm9vYmFy+/==\n" in text  # plain values stay bare: every reader agrees on them
    assert "OPENWATCH_EMPTY=\n" in text


def test_snapshot_round_trips_through_bash(tmp_path: Path) -> None:
    env_file = tmp_path / "openwatch.env"
    env_file.write_bytes(openwatch_env({**TRICKY, **LEFT_OUT}))

    out = subprocess.run(["env", "-i", "bash", "-c", f"set -a; . {env_file}; env -0"],
                         check=True, capture_output=True).stdout
    read_back = dict(item.split("=", 1) for item in out.decode().split("\0") if item)

    assert {name: read_back[name] for name in TRICKY} == TRICKY
    assert "left-out" not in out.decode()


# --- certificates --------------------------------------------------------------------------------------------

def _certificate(common_name: str, days: int) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenWatch")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_certificates_subject_expiry_and_expiring(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    soon, soon_key = _certificate("soon.example", 10)
    later, _ = _certificate("later.example", 400)
    (certs / "soon.crt").write_bytes(soon)
    (certs / "soon-key.pem").write_bytes(soon_key)  # a key in a .pem: skipped
    (certs / "chain.pem").write_bytes(later + soon)
    (certs / "later.cert").write_bytes(x509.load_pem_x509_certificate(later).public_bytes(
        serialization.Encoding.DER))
    (certs / "notes.txt").write_bytes(soon)  # not a certificate file name
    (certs / "link.crt").symlink_to("soon.crt")  # its target is described under its own name
    prefix = certs.as_posix().lstrip("/")
    soon_after = (NOW + dt.timedelta(days=10)).isoformat()
    later_after = (NOW + dt.timedelta(days=400)).isoformat()

    found = describe_certificates([certs])

    assert found == [
        {"member": f"{prefix}/chain.pem", "index": 0, "subject": "O=OpenWatch,CN=later.example",
         "not_after": later_after},
        {"member": f"{prefix}/chain.pem", "index": 1, "subject": "O=OpenWatch,CN=soon.example",
         "not_after": soon_after},
        {"member": f"{prefix}/later.cert", "index": 0, "subject": "O=OpenWatch,CN=later.example",
         "not_after": later_after},
        {"member": f"{prefix}/soon.crt", "index": 0, "subject": "O=OpenWatch,CN=soon.example",
         "not_after": soon_after},
    ]
    assert [c["member"] for c in expiring(found, NOW)] == [f"{prefix}/chain.pem", f"{prefix}/soon.crt"]
    assert expiring(found, NOW, days=9) == []
    assert len(expiring(found, NOW, days=400)) == 4


# --- member names on extraction ------------------------------------------------------------------------------

def test_safe_names() -> None:
    assert safe_name("./a//b/./c") == "a/b/c"
    assert safe_name("./") is None
    for bad in ("/etc/passwd", "a/../../b", "..", "C:/x"):
        with pytest.raises(RestoreRefused):
            safe_name(bad)


def test_relative_paths_are_packed_under_their_absolute_name(monkeypatch: pytest.MonkeyPatch, tree: Path) -> None:
    monkeypatch.chdir(tree / "sub")
    assert check_paths([Path("../sub/../id_rsa")]) == [tree / "id_rsa"]
    assert inputs_digest([Path("..")]) == inputs_digest([tree])
