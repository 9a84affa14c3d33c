"""The catalog's database from the environment without pydantic, for the CLI's `list` (start-up within 0.3 s).

Only when the answer is certainly what load_settings() would give: the same variables (pydantic-settings reads
them case-insensitively; OPENWATCH_DATABASE_URL before DATABASE_URL, likewise the SSL mode), the same parse
(core/dsn.py), and no other plugin variable that load_settings() might refuse. Whenever anything could be
wrong, this returns None and the caller builds the full Settings, so every message about a bad setting still
comes from settings.py alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from openwatch_backup.core.dsn import SSL_MODES, DatabaseTarget, DsnError, parse_database_url

_PREFIX = "openwatch_backup_"
# Plugin settings whose every value Settings accepts (a str, or a Path, which any string makes; no validator):
# set, they cannot make load_settings() fail, and `list` does not use them. tests/test_list_fast_path.py
# checks both claims against Settings. Any other OPENWATCH_BACKUP_* variable sends `list` to load_settings().
ALWAYS_VALID = frozenset({"dir", "openwatch_backend_dir", "queue", "migrate_command", "health_url"})


@dataclass(frozen=True)
class CatalogEnv:
    """What `list` needs: where the catalog is, and the secrets its messages must not show."""

    target: DatabaseTarget
    secrets: tuple[str | None, ...]


def catalog_env(environ: Mapping[str, str] | None = None) -> CatalogEnv | None:
    """The catalog's target as load_settings() would make it, or None when only load_settings() can say."""
    env = {key.lower(): value for key, value in (os.environ if environ is None else environ).items()}
    if any(key.startswith(_PREFIX) and key.removeprefix(_PREFIX) not in ALWAYS_VALID for key in env):
        return None
    url = env.get("openwatch_database_url", env.get("database_url"))
    ssl_mode = env.get("openwatch_database_ssl_mode", env.get("database_ssl_mode"))
    if url is None or (ssl_mode and ssl_mode not in SSL_MODES):
        return None
    try:
        target = parse_database_url(url, sslmode=ssl_mode or None)
    except DsnError:
        return None
    return CatalogEnv(target=target, secrets=(target.password, url, None))  # no webhook_url: it would be prefixed
