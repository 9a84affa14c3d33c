"""The demo's OpenWatch configuration: what a config bundle packs, made up under VAR so the demo can take one.

VAR/openwatch-config/ (0700) holds what OpenWatch keeps under /openwatch/security and its .env:
- keys/id_ed25519 (0600) and .pub: a fresh SSH key, standing in for the keys OpenWatch scans hosts with;
- certs/server.crt and server.key (0600): a self-signed certificate for localhost, valid for a year, so the
  manifest records a subject and an expiry date;
- .env (0600): OPENWATCH_MASTER_KEY = the sample master key the sample database's credentials are encrypted
  under (sample/credentials.py), so the drill's proof has a key that fits.
The passphrase file is VAR/config-passphrase (0600, random), outside the packed folder.

Everything is made once and reused, so the config check sees no change between demo runs. None of it is a
secret worth anything: the key and certificate are generated for the demo, the master key is published.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from openwatch_backup.sample.credentials import SAMPLE_MASTER_KEY

CERT_DAYS = 365


@dataclass(frozen=True)
class DemoConfig:
    root: Path
    keys: Path
    certs: Path
    env_file: Path
    passphrase_file: Path

    def environment(self) -> dict[str, str]:
        """The variables a worker of the demo runs with: config bundles on, the master key among its settings."""
        return {"OPENWATCH_MASTER_KEY": SAMPLE_MASTER_KEY,
                "OPENWATCH_BACKUP_CONFIG_PATHS": f"{self.keys},{self.certs}",
                "OPENWATCH_BACKUP_ENV_FILE": str(self.env_file),
                "OPENWATCH_BACKUP_PASSPHRASE_FILE": str(self.passphrase_file)}

    def settings(self) -> dict[str, object]:
        """The same as settings overrides, for a service built in this process."""
        return {"config_paths": f"{self.keys},{self.certs}", "env_file": self.env_file,
                "passphrase_file": self.passphrase_file}


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)


def _folder(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _ssh_key(keys: Path) -> None:
    if (keys / "id_ed25519").exists():
        return
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                               serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write(keys / "id_ed25519", private, 0o600)
    _write(keys / "id_ed25519.pub", public + b" openwatch-demo\n", 0o644)


def _certificate(certs: Path, now: datetime) -> None:
    crt = certs / "server.crt"
    if crt.exists():
        current = x509.load_pem_x509_certificate(crt.read_bytes())
        if current.not_valid_after_utc - now > timedelta(days=31):  # renewed before `check` would warn
            return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openwatch.demo.localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenWatch backup demo")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    _write(certs / "server.key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()), 0o600)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def prepare_demo_config(var: Path) -> DemoConfig:
    """Create (once) the demo's configuration folder and passphrase file under var; returns where they are."""
    root = _folder(var / "openwatch-config")
    config = DemoConfig(root=root, keys=_folder(root / "keys"), certs=_folder(root / "certs"),
                        env_file=root / ".env", passphrase_file=var / "config-passphrase")
    _ssh_key(config.keys)
    _certificate(config.certs, datetime.now(UTC))
    if not config.env_file.exists():
        _write(config.env_file, f"# OpenWatch demo settings (sample values, not secrets)\n"
                                f"OPENWATCH_MASTER_KEY={SAMPLE_MASTER_KEY}\n".encode(), 0o600)
    if not config.passphrase_file.exists():
        _write(config.passphrase_file, f"{secrets.token_urlsafe(32)}\n".encode(), 0o600)
    return config
