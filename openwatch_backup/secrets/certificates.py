"""The TLS certificates among a bundle's inputs: subject and expiry for the manifest, and which expire soon.

A certificate file is a regular file named *.crt, *.pem or *.cert (links are left out: their target, when
inside the listed paths, is read under its own name). PEM files may hold a chain: every certificate in it is
described, in order. A .pem holding only a key has no certificate and is skipped without reading it as one;
a .crt/.cert without PEM markers is tried as DER. Unparsable files are skipped: the manifest describes what
could be read, and the bundle stores every file either way.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from openwatch_backup.secrets.bundle_inputs import Entry, open_file, walk

SUFFIXES = (".crt", ".pem", ".cert")
MAX_SIZE = 1024 * 1024  # a certificate file is a few kB; anything bigger is no certificate of ours
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def describe_certificates(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """One dict per certificate in the inputs: member (tar name), index (in a chain), subject, not_after."""
    found: list[dict[str, Any]] = []
    for entry in walk(paths):
        if entry.is_file and entry.path.name.lower().endswith(SUFFIXES) and entry.st.st_size <= MAX_SIZE:
            found.extend(describe_file(entry.arcname, _read(entry)))
    return found


def _read(entry: Entry) -> bytes:
    fd, _ = open_file(entry)
    with open(fd, "rb") as handle:
        return handle.read(MAX_SIZE + 1)


def describe_file(member: str, data: bytes) -> list[dict[str, Any]]:
    """The certificates in one file's bytes (PEM blocks, else DER for .crt/.cert), unparsable ones left out."""
    certs: list[x509.Certificate] = []
    blocks = _PEM_BLOCK.findall(data)
    for block in blocks:
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue
    if not blocks and not member.lower().endswith(".pem"):
        with contextlib.suppress(ValueError):  # not DER either: no certificate
            certs.append(x509.load_der_x509_certificate(data))
    return [_describe(member, index, cert) for index, cert in enumerate(certs)]


def _describe(member: str, index: int, cert: x509.Certificate) -> dict[str, Any]:
    return {
        "member": member,
        "index": index,
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def expiring(certs: Iterable[Mapping[str, Any]], now: datetime, days: int = 30) -> list[Mapping[str, Any]]:
    """The certificates (dicts as described above) whose not_after is within `days` of `now`, or past.

    `now` is timezone-aware (UTC), as not_after is.
    """
    limit = now + timedelta(days=days)
    return [cert for cert in certs if datetime.fromisoformat(str(cert["not_after"])) <= limit]
