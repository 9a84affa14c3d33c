"""Scratch volumes of the RTO drills: named, labelled, removed in every outcome, swept after a kill.

Names are `owbscratch_<purpose>_<first 12 hex of the run id>[_<suffix>]`, like scratch databases, and each run
records its names (details["scratch_volumes"]) before it creates them (decision 11). The sweeper removes a
scratch volume once the catalog knows its run and the run is no longer running, together with the helper
containers (label openwatch-backup=volume-helper) a killed run left mounting it; a volume another container
uses is reported, never forced.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from openwatch_backup.docker_api import docker_errors, remove_container, volume_users

if TYPE_CHECKING:
    import docker

PREFIX = "owbscratch_"
KEY = "scratch_volumes"
LABEL = "openwatch-backup.scratch"
_NAME = re.compile(r"^owbscratch_(?P<purpose>[a-z]+)_(?P<run>[0-9a-f]{12})(_[A-Za-z0-9_.-]+)?$")


def scratch_volume_name(purpose: str, run_id: uuid.UUID, suffix: str = "") -> str:
    return f"{PREFIX}{purpose}_{run_id.hex[:12]}{'_' + suffix if suffix else ''}"


def run_prefix_of(name: str) -> str | None:
    match = _NAME.match(name)
    return match.group("run") if match else None


def create_scratch_volume(client: docker.DockerClient, name: str, run_id: uuid.UUID) -> None:
    with docker_errors(f"creating scratch volume {name}"):
        client.volumes.create(name, labels={LABEL: str(run_id)})


def remove_scratch_volume(client: docker.DockerClient, name: str) -> bool:
    """Remove the volume and our helper containers on it; False when another container still uses it."""
    from docker.errors import NotFound

    users = volume_users(client, name)
    if any((c.labels or {}).get("openwatch-backup") != "volume-helper" for c, _ in users):
        return False
    for container, _mount in users:
        remove_container(container)
    with docker_errors(f"removing scratch volume {name}"), suppress(NotFound):
        client.volumes.get(name).remove(force=True)
    return True


def sweep_scratch_volumes(client: docker.DockerClient, is_finished_run: Callable[[str], bool]) -> list[str]:
    """Remove the scratch volumes whose run this catalog knows and that is no longer running; their names."""
    removed = []
    with docker_errors("listing volumes"):
        names = sorted(v.name for v in client.volumes.list() if str(v.name).startswith(PREFIX))
    for name in names:
        prefix = run_prefix_of(name)
        if prefix is not None and is_finished_run(prefix) and remove_scratch_volume(client, name):
            removed.append(name)
    return removed
