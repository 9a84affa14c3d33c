"""No Docker API: one line naming the socket and the fix, and no socket left open behind it."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest

from openwatch_backup.docker_api import docker_client
from openwatch_backup.errors import DockerUnavailable


def test_a_missing_socket_is_one_line_naming_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"unix://{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(DockerUnavailable) as caught:
            docker_client()
        gc.collect()  # a leaked socket would warn here, as it did when the SDK opened it
    assert caught.value.message == (
        f"cannot reach the Docker API at {url} (No such file or directory): mount the docker socket into the "
        "worker (/var/run/docker.sock) or set DOCKER_HOST, or set OPENWATCH_BACKUP_EXECUTOR=local")
    assert caught.value.exit_status == 3


def test_a_socket_nobody_listens_on_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    path = tmp_path / "dead.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()  # the file stays, nobody listens: a daemon that died
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    with pytest.raises(DockerUnavailable) as caught:
        docker_client()
    assert "(Connection refused)" in caught.value.message
