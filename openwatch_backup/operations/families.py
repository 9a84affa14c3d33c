"""Every artifact family's folder at once: prune, sweep, rebuild and the off-site prune look at all of them.

Each family keeps its artifacts and manifests under its own prefix (core/naming.FAMILY_PREFIXES: postgres/,
config/); an operation that listed only postgres/ would never see a config bundle's `.partial` or manifest.
"""

from __future__ import annotations

from openwatch_backup.core.naming import FAMILY_PREFIXES, family_prefix
from openwatch_backup.storage.base import Storage, StoredObject


def list_families(storage: Storage) -> list[StoredObject]:
    """The objects under every family prefix, sorted by key. A failed listing raises (never "nothing there")."""
    found = [obj for prefix in FAMILY_PREFIXES for obj in storage.list(prefix)]
    found.sort(key=lambda o: o.key)
    return found


def artifact_folder(artifact: str | None) -> str:
    """`postgres/` or `config/`: the folder of the artifact named `artifact` (a catalog row's details.artifact)."""
    return family_prefix(artifact or "") + "/"
