"""The demo's configuration folder (devstack/demo_config.py): real files, modes, a certificate valid a year."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openwatch_backup.devstack.demo_config import prepare_demo_config
from openwatch_backup.sample.credentials import SAMPLE_MASTER_KEY
from openwatch_backup.secrets.bundle_read import env_values
from openwatch_backup.secrets.certificates import describe_certificates
from openwatch_backup.settings import load_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_config_is_made_once_with_private_modes(tmp_path: Path) -> None:
    config = prepare_demo_config(tmp_path)

    assert {p.relative_to(tmp_path).as_posix(): _mode(p) for p in sorted(tmp_path.rglob("*"))} == {
        "config-passphrase": 0o600, "openwatch-config": 0o700, "openwatch-config/.env": 0o600,
        "openwatch-config/certs": 0o700, "openwatch-config/certs/server.crt": 0o644,
        "openwatch-config/certs/server.key": 0o600, "openwatch-config/keys": 0o700,
        "openwatch-config/keys/id_ed25519": 0o600, "openwatch-config/keys/id_ed25519.pub": 0o644}
    assert env_values(config.env_file.read_bytes())["OPENWATCH_MASTER_KEY"] == SAMPLE_MASTER_KEY
    serialization.load_ssh_private_key((config.keys / "id_ed25519").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((config.certs / "server.crt").read_bytes())
    left = cert.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=364) < left <= timedelta(days=365)
    described = describe_certificates([config.certs])
    assert [c["subject"] for c in described] == [cert.subject.rfc4514_string()]
    assert len(config.passphrase_file.read_text().strip()) >= 40

    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = prepare_demo_config(tmp_path)
    assert again == config
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # no change: no new bundle

    settings = load_settings(database_url="postgresql://u@h/db", **config.settings())
    assert settings.config_inputs() == [config.keys, config.certs, config.env_file]
    assert config.environment()["OPENWATCH_MASTER_KEY"] == SAMPLE_MASTER_KEY
