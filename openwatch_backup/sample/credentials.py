"""The sample database's credentials, encrypted exactly as OpenWatch encrypts them, under a demo master key.

So the proof that a config bundle's master key fits the data (operations/secrets_proof.py) has something to
prove in the demo and the tests: hosts.encrypted_credentials and unified_credentials.encrypted_* hold the
base64 text of OpenWatch's blob (as credential_service.py writes it), users.mfa_secret the blob itself.

Speed and determinism: OpenWatch draws a fresh salt per value, which costs one 100,000-iteration PBKDF2 each.
Here a few salts are drawn once per seed and reused (the derived keys are cached), so seeding stays as fast as
before however many rows it writes; salts and nonces come from their own generator, so one seed gives the same
bytes every time and the other columns' generator is not disturbed. Never do this with a real key.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from openwatch_backup.secrets.openwatch_crypto import NONCE_SIZE, SALT_SIZE, KeyRing

# A demo value, published in this file: it protects nothing. >= 32 characters, as OpenWatch asks of its key.
SAMPLE_MASTER_KEY = "openwatch-backup-SAMPLE-master-key-demo-only-not-secret"
SALTS = 4  # distinct salts per seed: 4 PBKDF2 runs (~50 ms) for the whole database
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class SampleVault:
    """Encrypts sample secrets under SAMPLE_MASTER_KEY, reproducibly for one seed."""

    def __init__(self, rng_seed: int, master_key: str = SAMPLE_MASTER_KEY) -> None:
        self.rng = random.Random(f"sample-credentials-{rng_seed}")  # noqa: S311 (reproducible demo data)
        self._ring = KeyRing(master_key)
        self._salts = [self.rng.randbytes(SALT_SIZE) for _ in range(SALTS)]

    def blob(self, plaintext: bytes) -> bytes:
        # 96 random bits per nonce: a repeat under one salt within a sample database is negligible.
        return self._ring.encrypt(plaintext, self.rng.choice(self._salts), self.rng.randbytes(NONCE_SIZE))

    def as_text(self, plaintext: str) -> bytes:
        """The column value OpenWatch's credential service stores: base64 of the blob, as ASCII."""
        return base64.b64encode(self.blob(plaintext.encode("utf-8")))

    def ssh_key(self, rsa: bool) -> str:
        """Armoured text shaped like an OpenSSH private key (random body: it opens nothing)."""
        body = base64.b64encode(self.rng.randbytes(2400 if rsa else 300)).decode()
        lines = [body[i:i + 70] for i in range(0, len(body), 70)]
        return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----\n"

    def password(self) -> str:
        return base64.b64encode(self.rng.randbytes(18)).decode()

    def host_credentials(self, username: str, auth_method: str) -> bytes:
        """hosts.encrypted_credentials: OpenWatch's JSON (username, auth_method, password, ssh_key), encrypted."""
        data = {"username": username, "auth_method": auth_method,
                "password": self.password() if auth_method == "password" else None,
                "ssh_key": self.ssh_key(self.rng.random() < 0.3) if auth_method == "ssh_key" else None}
        return self.as_text(json.dumps(data))

    def mfa_secret(self) -> bytes:
        """users.mfa_secret: a TOTP secret (32 base32 characters), encrypted; the blob itself."""
        return self.blob("".join(self.rng.choice(_B32) for _ in range(32)).encode())


def credentials_fit(conn: Any, master_key: str = SAMPLE_MASTER_KEY) -> bool:
    """Whether a seeded database's credentials open with the sample key. False for one seeded before they were
    encrypted (random bytes there): the demo then seeds it again, or its drill would fail secrets_mismatch."""
    from openwatch_backup.secrets.openwatch_crypto import CredentialDecryptError, decrypt, stored_blob

    with conn.transaction():
        row = conn.execute("SELECT encrypted_credentials FROM public.hosts WHERE encrypted_credentials IS NOT NULL "
                           "LIMIT 1").fetchone()
    if row is None:
        return False
    blob = stored_blob(row[0])
    if blob is None:
        return False
    try:
        decrypt(master_key, blob)
    except CredentialDecryptError:
        return False
    return True
