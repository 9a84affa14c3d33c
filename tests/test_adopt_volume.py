"""An adopted volume tarball restores (issue 13, item 4), against a real Docker Engine API (podman's).

The tarball is written the guide's way (`docker run --rm -v VOLUME:/source:ro -v DIR:/backup IMAGE tar czf
/backup/<volume>_YYYYMMDD.tar.gz -C /source .`); adopt stores it as our own volume snapshot (zstd tar), and
`restore --volume` brings it back into a new volume whose files, modes and owners are the original's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.service import BackupService
from tests.support.podman_lab import BUSYBOX_IMAGE, PodmanLab

pytestmark = pytest.mark.podman

VOLUME = "owb_adopt_data"
APP = "owb-adopt-app"
POPULATE = r"""set -e; cd /vol
mkdir -p reports secret empty
printf 'report one\n' > reports/r1.txt; chown 10001:10001 reports/r1.txt; chmod 640 reports/r1.txt
printf 'x' > secret/key; chmod 600 secret/key; chown -R 999:998 secret; chmod 700 secret
ln -s reports/r1.txt link
"""
LISTING = "cd /vol && find . -mindepth 1 | sort | while IFS= read -r f; do stat -c '%f %u %g %s %N' \"$f\"; done"


def in_volume(podman: PodmanLab, volume: str, command: str, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    podman.run(BUSYBOX_IMAGE, command=["sh", "-c", f"({command}) > /out/text"], remove=True,
               volumes={volume: {"bind": "/vol", "mode": "ro"}, str(out): {"bind": "/out", "mode": "rw"}})
    return (out / "text").read_text()


def listing(podman: PodmanLab, volume: str, out: Path) -> list[str]:
    lines = []
    for line in in_volume(podman, volume, LISTING, out).splitlines():
        mode, uid, gid, size, rest = line.split(" ", 4)
        is_dir = int(mode, 16) & 0o170000 == 0o040000
        lines.append(" ".join((f"{int(mode, 16):o}", uid, gid, "-" if is_dir else size, rest)))
    return sorted(lines)


@pytest.fixture
def guide_volume(podman: PodmanLab) -> Iterator[str]:
    client = podman.client()
    client.volumes.create(VOLUME)
    podman.run(BUSYBOX_IMAGE, command=["sh", "-c", POPULATE], remove=True, volumes={VOLUME: {"bind": "/vol"}})
    # The application that uses it: the restore runs tar in a helper made from its image (none is pulled).
    app = podman.run(BUSYBOX_IMAGE, command=["sleep", "3600"], name=APP, detach=True,
                     volumes={VOLUME: {"bind": "/openwatch/data"}})
    try:
        yield VOLUME
    finally:
        app.remove(force=True)
        client.volumes.get(VOLUME).remove(force=True)


def test_an_adopted_volume_tarball_restores_into_a_new_volume(podman: PodmanLab, guide_volume: str,
                                                              openwatch_db: str, tmp_path: Path, make_service: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    guide = tmp_path / "guide" / "volumes"
    guide.mkdir(parents=True)
    podman.run(BUSYBOX_IMAGE, command=["tar", "czf", f"/backup/{guide_volume}_20261123.tar.gz", "-C", "/source", "."],
               remove=True, volumes={guide_volume: {"bind": "/source", "mode": "ro"},
                                     str(guide): {"bind": "/backup", "mode": "rw"}})
    before = listing(podman, guide_volume, tmp_path / "l1")
    assert len(before) == 6
    service: BackupService = make_service(openwatch_db, tmp_path / "backups", db_container=APP,
                                          volumes=guide_volume)

    report = service.adopt(tmp_path / "guide")

    assert [(o.status, o.kind) for o in report.outcomes] == [("adopted", "volume")]
    [run] = service.list_runs(kind=BackupKind.VOLUME.value)
    assert run.details["volume"]["volume"] == guide_volume
    assert run.details["volume"]["members"] == len(before) + 1  # every entry and "./"
    restored = service.restore_volume(str(run.id), volume=guide_volume)
    assert restored.status == RunStatus.SUCCEEDED.value, restored.error
    new = restored.details["volume_restore"]["volume"]
    try:
        assert listing(podman, new, tmp_path / "l2") == before
    finally:
        podman.client().volumes.get(new).remove(force=True)
