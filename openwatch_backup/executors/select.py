"""OPENWATCH_BACKUP_EXECUTOR -> the executor the operations get: local, docker, or auto.

auto: a suitable local client (at least the server's major) wins; when there is none, the clients inside the
database container run instead. The choice is made at the first client discovery of the operation (only
then is the server's version known) and kept for its programs, so a dump and its restore never mix places.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

from openwatch_backup.errors import BackupError, ClientVersionMismatch, DockerUnavailable
from openwatch_backup.executors.base import ClientFeeder, ClientProcess, ClientTool, Executor
from openwatch_backup.executors.docker import DockerExecutor
from openwatch_backup.executors.local import LocalExecutor
from openwatch_backup.settings import Settings


class AutoExecutor:
    name = "auto"

    def __init__(self, local: LocalExecutor, docker: DockerExecutor) -> None:
        self.local = local
        self.docker = docker
        self.chosen: Executor | None = None

    def find_client(self, program: str, server_major: int, server_version: str) -> ClientTool:
        if self.chosen is not None:
            return self.chosen.find_client(program, server_major, server_version)
        try:
            tool = self.local.find_client(program, server_major, server_version)
            self.chosen = self.local
            return tool
        except ClientVersionMismatch as local_problem:
            try:
                tool = self.docker.find_client(program, server_major, server_version)
            except DockerUnavailable:
                # No Docker API at all is the usual bare-metal case: the local fix is the whole answer.
                raise ClientVersionMismatch(f"{local_problem.message} (no Docker API answers either, so the "
                                            "database container's own clients cannot stand in)") from None
            except BackupError as docker_problem:
                raise ClientVersionMismatch(f"{local_problem.message}; the docker executor cannot run it either "
                                            f"({docker_problem.message})") from None
            self.chosen = self.docker
            return tool

    def close(self) -> None:
        self.local.close()
        self.docker.close()

    def _current(self) -> Executor:
        return self.chosen or self.local

    def start(self, argv: list[str], env: Mapping[str, str], *, stdin: int | None = None) -> ClientProcess:
        return self._current().start(argv, env, stdin=stdin)

    def feed(self, argv: list[str], env: Mapping[str, str], *,
             on_line: Callable[[bytes], None] | None = None) -> ClientFeeder:
        return self._current().feed(argv, env, on_line=on_line)

    def staged_file(self, text: str, name: str) -> AbstractContextManager[str]:
        return self._current().staged_file(text, name)


def select_executor(settings: Settings) -> Executor:
    local = LocalExecutor(settings.pg_bin_dir)
    if settings.executor == "local":
        return local
    docker = DockerExecutor(settings.db_container)
    if settings.executor == "docker":
        return docker
    return AutoExecutor(local, docker)
