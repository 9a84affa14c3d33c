"""Which volume runs to queue: the volumes (asked for, or OPENWATCH_BACKUP_VOLUMES), consistent mode's containers
(--stop, or OPENWATCH_BACKUP_VOLUME_STOP when OPENWATCH_BACKUP_VOLUME_CONSISTENT is on) and, in consistent mode
with the database container stopped, its data volume (postgres_data: a copy of it is only sound with PostgreSQL
down). Every name is checked here, before a run is recorded: bad input is one line, nothing queued or stopped.
"""

from __future__ import annotations

import re

from openwatch_backup.core.kinds import DATABASE_KINDS, RunStatus
from openwatch_backup.docker_api import docker_client, get_container, get_volume
from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.volume_snapshot import VOLUMES_SETTING, VolumeRequest, containers_to_stop

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PGDATA_PARENT = "/var/lib/postgresql"  # the official image's PGDATA lives below it
BUSY_KINDS = (*(k.value for k in DATABASE_KINDS), "restore", "prune")


def checked_names(names: list[str], what: str) -> list[str]:
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{what}: {name!r} is not a docker name (letters, digits, _ . -), e.g. "
                              "openwatch_app_data")
    return names


def plan_volume_requests(ctx: OperationContext, volumes: list[str] | None,
                         stop: list[str] | None) -> list[VolumeRequest]:
    setting = "--volume" if volumes else VOLUMES_SETTING  # what to fix: the option typed, or the setting
    names = checked_names(volumes if volumes else ctx.settings.volume_names(), setting)
    if not names:
        raise ConfigError(f"no volume to snapshot: set {VOLUMES_SETTING} (e.g. openwatch_app_data) or give --volume")
    if stop is None:
        stop = ctx.settings.volume_stop_names() if ctx.settings.volume_consistent else []
    stop = checked_names(stop, "--stop or OPENWATCH_BACKUP_VOLUME_STOP")
    client = docker_client()
    containers_to_stop(client, tuple(stop))  # missing ones and this worker's own refused, nothing stopped
    if ctx.settings.db_container in stop:
        _refuse_while_database_busy(ctx)
        if not volumes:  # the scheduled set: postgres_data joins it only when PostgreSQL is stopped around it
            for mount in get_container(client, ctx.settings.db_container, "OPENWATCH_BACKUP_DB_CONTAINER").attrs.get(
                    "Mounts") or []:
                if mount.get("Type") == "volume" and str(mount.get("Destination", "")).startswith(PGDATA_PARENT) \
                        and mount.get("Name") not in names:
                    names.append(str(mount["Name"]))
    for name in names:
        get_volume(client, name, setting)
    return [VolumeRequest(volume=name, stop=tuple(stop)) for name in names]


def _refuse_while_database_busy(ctx: OperationContext) -> None:
    for status in (RunStatus.RUNNING, RunStatus.QUEUED):
        busy = ctx.recorder.list(limit=1, kinds=BUSY_KINDS, status=status.value)
        if busy:
            raise ConfigError(f"a {busy[0].kind} run ({str(busy[0].id)[:8]}) is {status.value} and consistent mode "
                              f"would stop {ctx.settings.db_container} under it: take the volume snapshot after it")
