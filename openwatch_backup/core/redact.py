"""Scrub secrets from every string we store or print (errors, logs, stderr tails, catalog rows)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
# user:password@ inside any URL, and key=value forms libpq and shells use.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<key>\b(?:PGPASSWORD|password|passwd|secret|token)\s*[=:]\s*)(?P<v>'[^']*'|\"[^\"]*\"|\S+)", re.IGNORECASE)


class Redactor:
    """Replaces known secret values and password-shaped patterns with `***`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._values: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Mask one more value from now on (a passphrase read from its file, a master key read from a bundle)."""
        if secret and len(secret) >= 3:  # a 1-2 character "secret" would mangle ordinary text
            values = set(self._values) | {secret, quote(secret, safe=""), quote(secret)}
            # Longest first, so a secret that contains another is masked whole.
            self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
        return _KEY_VALUE.sub(lambda m: m.group("key") + MASK, text)
