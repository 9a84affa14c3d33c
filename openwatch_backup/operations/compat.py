"""The restore compatibility gate: never load a dump into a server or an application too old for it.

A PostgreSQL 16 dump can use syntax a 15 server rejects half way through (NULLS NOT DISTINCT); a dump
from a newer OpenWatch holds tables the installed code does not know. Both are refused before anything
changes, with the reason and the flag that overrides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from openwatch_backup.core.manifest import Manifest

_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*["']([^"']+)["']""", re.MULTILINE)


@dataclass(frozen=True)
class CompatReport:
    problems: list[str]
    notes: list[str]


def known_revisions(backend_dir: Path) -> set[str] | None:
    """Revision ids in OpenWatch's alembic/versions, read as text (importing them would import OpenWatch)."""
    versions = backend_dir / "alembic" / "versions"
    if not versions.is_dir():
        return None
    found: set[str] = set()
    for path in versions.glob("*.py"):
        found.update(_REVISION.findall(path.read_text(errors="replace")))
    return found


def check_compatibility(manifest: Manifest, server_major: int, backend_dir: Path, *, allow_newer_server: bool,
                        allow_newer_migrations: bool) -> CompatReport:
    problems: list[str] = []
    notes: list[str] = []
    dump_major = int(manifest.server_version.split(".")[0])
    if dump_major > server_major and not allow_newer_server:
        problems.append(f"the dump comes from PostgreSQL {manifest.server_version}, newer than this server "
                        f"({server_major}); restore onto PostgreSQL {dump_major} or pass --allow-newer-server")
    heads = [h for h in (manifest.openwatch_alembic_head or "").split(",") if h]
    known = known_revisions(backend_dir)
    if not heads:
        notes.append("the dump records no OpenWatch migration head")
    elif known is None:
        notes.append(f"migration gate skipped: {backend_dir}/alembic/versions not found "
                     "(set OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR)")
    else:
        unknown = [h for h in heads if h not in known]
        if unknown and not allow_newer_migrations:
            problems.append(f"the dump's OpenWatch migration head {', '.join(unknown)} is unknown to the installed "
                            f"OpenWatch ({backend_dir}): it comes from a newer version; upgrade OpenWatch first or "
                            "pass --allow-newer-migrations")
    return CompatReport(problems=problems, notes=notes)
