"""The keyed digest of a config bundle's inputs: tells "something changed" without a copy of any secret.

bundle_inputs.inputs_digest is a plain sha256 over names, modes and contents. The contents include the
master key and SSH keys, so the stored value is an HMAC of it under a key derived from the passphrase
(PBKDF2-HMAC-SHA256, its own label, 600,000 iterations as integrity.py's): a catalog row or manifest then gives
no way to test a guess of a file's content. A changed passphrase gives another digest, and so a new bundle
under the new passphrase, which is what an admin who rotated it wants.
"""

from __future__ import annotations

import hashlib
import hmac

from openwatch_backup.secrets.integrity import KDF_ITERATIONS

DIGEST_LABEL = b"openwatch-backup config bundle inputs digest v1"


def keyed_digest(passphrase: bytes, inputs_sha256: str) -> str:
    key = hashlib.pbkdf2_hmac("sha256", passphrase, DIGEST_LABEL, KDF_ITERATIONS, 32)
    return hmac.new(key, bytes.fromhex(inputs_sha256), hashlib.sha256).hexdigest()
