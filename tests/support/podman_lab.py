"""A throw-away Docker Engine API for the tests: podman 4.3's `podman system service` on a unix socket.

    lab = PodmanLab.create()      # temp root, configs, local images, API socket (a few seconds)
    client = lab.client()         # docker.DockerClient on lab.socket_url
    lab.close()                   # containers, volumes, service, storage, lingering conmon, temp root

Everything lives under one short temp folder in /tmp (unix socket paths are limited to 107 bytes), with its
own containers.conf and storage.conf, so nothing touches the machine's podman storage. The images are built
by podman_images.sh from this machine's own busybox-static, PostgreSQL 15 and redis-server: no registry.
Needs root, podman, runc and busybox-static (scripts/bootstrap installs them as root).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

IMAGES_SCRIPT = Path(__file__).resolve().parent / "podman_images.sh"
BUSYBOX_IMAGE = "localhost/owb-busybox:latest"
PG_IMAGE = "localhost/owb-pg15:latest"
REDIS_IMAGE = "localhost/owb-redis:latest"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

CONTAINERS_CONF = """\
[containers]
# runc applies these rlimits; podman's defaults (nofile=1048576, nproc=4194304) exceed this machine's hard
# limits and fail with "error setting rlimit type 7: operation not permitted".
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
# No network namespace setup by default (netavark would make a bridge, iptables chains and set ip_forward=1).
# Only a default for the CLI: docker-py sends NetworkMode "default", so every run/create passes
# network_mode="none" too.
netns = "none"
[engine]
runtime = "runc"
tmp_dir = "{root}/tmp"
# An API exec session's conmon lingers this long after the process exits (default 300 s).
exit_command_delay = {exit_delay}
[network]
network_config_dir = "{root}/networks"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""


def missing_programs() -> list[str]:
    return [p for p in ("podman", "runc", "busybox") if shutil.which(p) is None]


class PodmanLab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "podman.sock"
        self.socket_url = f"unix://{self.sock}"  # for DOCKER_HOST
        self.sockets = root / "sock"  # bind-mounted at /sockets in the containers
        self.setup_seconds = 0.0
        self.env = dict(os.environ, CONTAINERS_CONF=str(root / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(root / "storage.conf"), LAB=str(root))
        self._proc: subprocess.Popen[bytes] | None = None
        self._clients: list[docker.DockerClient] = []
        self._ip_forward = IP_FORWARD.read_text() if IP_FORWARD.exists() else ""

    @classmethod
    def create(cls, exit_delay: int = 15) -> PodmanLab:
        started = time.monotonic()
        lab = cls(Path(tempfile.mkdtemp(prefix="owbpod-", dir="/tmp")))
        try:
            lab._write_config(exit_delay)
            subprocess.run(["bash", str(IMAGES_SCRIPT)], env=lab.env, check=True, stdout=subprocess.DEVNULL)
            lab._start_service()
        except BaseException:
            lab.close()
            raise
        lab.setup_seconds = time.monotonic() - started
        return lab

    def _write_config(self, exit_delay: int) -> None:
        for name in ("tmp", "networks", "sock"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the containers' users (postgres 999, redis 998) reach sock/ through it
        os.chmod(self.sockets, 0o1777)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
        nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
        (self.root / "containers.conf").write_text(CONTAINERS_CONF.format(
            root=self.root, nofile=nofile, nproc=nproc, exit_delay=exit_delay))
        (self.root / "storage.conf").write_text(STORAGE_CONF.format(root=self.root))

    def _start_service(self, timeout: float = 30) -> None:
        log_path = self.root / "podman-service.log"
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(["podman", "system", "service", "--time=0", self.socket_url],
                                          env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"podman system service died: {log_path.read_text()[-2000:]}")
            if self.sock.exists():
                import docker  # here: every test session loads this module, few use it

                try:
                    with docker.APIClient(base_url=self.socket_url, version="1.41", timeout=5) as api:
                        if api.ping():
                            return
                except Exception:
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"podman system service not ready after {timeout} s: {log_path.read_text()[-2000:]}")

    def client(self, timeout: int = 120) -> docker.DockerClient:
        import docker

        client = docker.DockerClient(base_url=self.socket_url, version="auto", timeout=timeout)
        self._clients.append(client)
        return client

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The podman CLI on the lab's storage (setup and teardown only)."""
        return subprocess.run(["podman", *args], env=self.env, check=check, capture_output=True, text=True)

    def run(self, image: str, **kwargs: Any) -> Any:
        """containers.run with the lab's two musts: no network namespace (else a netavark bridge changes the
        host's ip_forward) and an init as PID 1 (else killing an exec'd tree orphans children to the main
        process; a postmaster then crash-restarts)."""
        kwargs.setdefault("network_mode", "none")
        kwargs.setdefault("init", True)
        return self.client().containers.run(image, **kwargs)

    # ---------------------------------------------------------------- teardown
    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                client = self.client(timeout=60)
                for container in client.containers.list(all=True):
                    container.remove(force=True, v=True)
                client.volumes.prune()
            except Exception:
                pass
            self._proc.terminate()  # our own PID only
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for client in self._clients:
            client.close()
        # Exec sessions' conmons linger exit_command_delay, then run "podman container cleanup": they are
        # ours (their command line names our root), so end them by PID.
        self._end_lab_processes()
        self.podman("system", "reset", "--force", check=False)  # unmounts the overlays, wipes the storage
        self._end_lab_processes()
        _rmdir_empty_cgroups()
        shutil.rmtree(self.root, ignore_errors=True)

    def ip_forward_unchanged(self) -> bool:
        """False when a container got bridge networking (netavark sets net.ipv4.ip_forward=1)."""
        return not IP_FORWARD.exists() or IP_FORWARD.read_text() == self._ip_forward

    @property
    def service_pid(self) -> int:
        """The PID of `podman system service` (0 when not running)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else 0

    def lab_pids(self) -> list[int]:
        """conmon and "podman container cleanup" processes of this lab (their command line names our root)."""
        pids, me, marker = [], os.getpid(), str(self.root).encode() + b"/"
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.split(b"\0", 1)[0].endswith((b"conmon", b"podman")) and marker in cmdline:
                pids.append(int(entry.name))
        return pids

    def _end_lab_processes(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        sig = signal.SIGTERM
        while pids := self.lab_pids():
            if time.monotonic() > deadline:
                sig = signal.SIGKILL
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(0.2)


def _rmdir_empty_cgroups() -> None:
    # cgroup v1 with the cgroupfs manager: podman leaves empty libpod_parent/{conmon,} folders behind
    base = Path("/sys/fs/cgroup")
    for controller in base.iterdir() if base.is_dir() else []:
        for folder in (controller / "libpod_parent" / "conmon", controller / "libpod_parent"):
            try:
                if folder.is_dir() and not (folder / "cgroup.procs").read_text().strip():
                    folder.rmdir()
            except OSError:
                pass


def wait_for(check: Any, timeout: float = 30, errors: tuple[type[BaseException], ...] = (Exception,)) -> Any:
    """check()'s result once it stops raising `errors`; the last error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except errors:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
