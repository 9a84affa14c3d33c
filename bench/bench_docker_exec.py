"""What the docker executor's transport costs: a local pg_dump, a bare exec-stream read, and our backup through exec.

    python bench/bench_docker_exec.py [--size-mib 200] [--runs 5] [--keep-lab]

Needs root, podman, runc and busybox-static (as the tests: tests/support/podman_lab.py builds a throw-away
Docker Engine API with local images, no registry). One run, on one sample database (openwatch_backup.sample,
--size-mib) inside a PostgreSQL 15 container whose socket the host reaches through a shared folder:

    local pg_dump      the host's `pg_dump -Fc -Z0 > /dev/null` over the unix socket (no transport at all)
    bare exec read     `pg_dump -Fc -Z0` exec'd in the container, its stdout frames read off the socket and
                       dropped: the transport's own limit
    gathered read      the same read through the executor's own frame reader (executors/exec_frames.py: receives
                       gathered up to 1 MiB), the stdout dropped: the transport as our backup reads it, without
                       the hashing and writing
    ours, docker       BackupService.backup with OPENWATCH_BACKUP_EXECUTOR=docker, compression none (the file
                       written, fsynced and hashed, the manifest and catalog rows)
    ours, docker zstd  the same with the default zstd
    ours, local        the same with the local executor, compression none

--pin puts the lab's processes (podman's service, conmon, the container's PostgreSQL and every exec they start)
on CPU 0 and this process on CPU 1: a stand-in for a host where the backup has a core of its own, to tell the
transport's cost from the two cores' contention. It needs two CPUs; only the lab's processes and this one are
touched, and they end with the run.

Rows are interleaved (round-robin) so load drifts hit all alike; walls are medians. The target: ours (docker,
none) within 1.1x of the bare exec read; the ratio to the gathered read is printed too (the stricter one). The
stream column is the dump's own streaming seconds from the run's details (pg_dump's output into the file),
without preflight, canary, manifest and catalog writes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.docker_api import exec_open
from openwatch_backup.executors.exec_frames import RECV, Frames
from openwatch_backup.sample import create_schema, seed
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from tests.support.podman_lab import PG_IMAGE, PodmanLab, wait_for

MB = 1_000_000
TARGET = 1.1
CONTAINER = "owb-bench-db"


def _tasks(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def pin(lab: PodmanLab) -> int:
    """The lab's processes and their descendants on CPU 0 (children inherit it), ours on CPU 1; how many pinned."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    lab_side = {lab.service_pid, *lab.lab_pids()}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in lab_side} - lab_side
        lab_side |= found
        grew = bool(found)
    for pid in lab_side:
        for tid in _tasks(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, {0})
    for tid in _tasks(os.getpid()):
        os.sched_setaffinity(tid, {1})
    return len(lab_side)


def local_pg_dump(sockets: Path, dbname: str) -> tuple[float, int]:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["pg_dump", "-Fc", "-Z0", "-h", str(sockets), "-U", "postgres", dbname], stdout=sink,
                       check=True)
    return time.perf_counter() - started, 0


def _exec_read(lab: PodmanLab, dbname: str, drain: Callable[[socket.socket], int]) -> tuple[float, int]:
    """Create and start `pg_dump -Fc -Z0` in the container, drain(socket) -> stdout bytes, wait for its exit.
    The exec is opened by the executor's own exec_open, so the socket is set up alike (blocking, no timeout)."""
    client = lab.client()
    container = client.containers.get(CONTAINER)
    started = time.perf_counter()
    exec_id, response, raw = exec_open(client, container, ["pg_dump", "-Fc", "-Z0", "-U", "postgres", dbname], {},
                                       stdin=False)
    size = drain(raw)
    while (info := client.api.exec_inspect(exec_id))["Running"]:
        time.sleep(0.005)
    wall = time.perf_counter() - started
    response.close()
    raw.close()
    if info["ExitCode"] != 0:
        sys.exit(f"exec pg_dump failed: exit {info['ExitCode']}")
    return wall, size


def _drop_frames(raw: socket.socket) -> int:
    """The least any exec-based dump can cost: recv() what is there, find each frame, drop it."""
    buf, size = bytearray(), 0
    while data := raw.recv(1 << 20):
        buf += data
        while len(buf) >= 8:
            length = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + length:
                break
            if buf[0] == 1:
                size += length
            del buf[:8 + length]
    return size


def _drop_gathered(raw: socket.socket) -> int:
    """The same read through Frames(gather=True), as DockerProcess reads (without its read-ahead thread)."""
    frames, size = Frames(raw, gather=True), 0
    while (data := frames.stdout(RECV, lambda _: None)) is not None:
        size += len(data)
    return size


def ours(service: BackupService, compression: Compression) -> tuple[float, float]:
    started = time.perf_counter()
    run = service.backup(service.build_request(BackupKind.FULL, compression))
    wall = time.perf_counter() - started
    if run.status != "succeeded":
        sys.exit(f"our backup failed: {run.error}")
    stream = float(run.details.get("seconds") or 0.0)
    Path(run.artifact_location or "").unlink()
    return wall, stream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=float, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pin", action="store_true", help="the lab on CPU 0, this process on CPU 1")
    args = parser.parse_args(argv)
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        sys.exit("--pin needs two CPUs")
    if os.geteuid() != 0:
        sys.exit("needs root (podman's Docker API runs rootful here)")
    lab = PodmanLab.create()
    print(f"podman lab ready in {lab.setup_seconds:.1f} s")
    os.environ["DOCKER_HOST"] = lab.socket_url
    services: list[BackupService] = []
    try:
        container = lab.run(PG_IMAGE, name=CONTAINER, detach=True, environment={"PGHOST": "/sockets"},
                            volumes={"owb_bench_data": {"bind": "/var/lib/postgresql/data"},
                                     str(lab.sockets): {"bind": "/sockets"}})
        dsn: dict[str, Any] = {"host": str(lab.sockets), "user": "postgres"}
        wait_for(lambda: psycopg.connect(dbname="postgres", **dsn).close(), errors=(psycopg.OperationalError,))
        with psycopg.connect(dbname="postgres", autocommit=True, **dsn) as conn:
            conn.execute("CREATE DATABASE ow_bench")
        started = time.perf_counter()
        with psycopg.connect(dbname="ow_bench", **dsn) as conn:
            create_schema(conn)
            seed(conn, target_mib=args.size_mib)
            conn.commit()
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        print(f"database ow_bench: {size / MB:.0f} MB, seeded in {time.perf_counter() - started:.0f} s")
        url = f"postgresql://postgres@/ow_bench?host={lab.sockets}"
        work = Path(tempfile.mkdtemp(prefix="owb-bench-"))
        docker = BackupService(load_settings(database_url=url, dir=work, executor="docker", db_container=CONTAINER))
        local = BackupService(load_settings(database_url=url, dir=work, executor="local"))
        services += [docker, local]
        docker.db_upgrade()
        if args.pin:
            print(f"pinned {pin(lab)} lab processes to CPU 0, this one to CPU 1")
        _, dump_bytes = _exec_read(lab, "ow_bench", _drop_frames)  # warm-up: page cache, exec path
        ours(docker, Compression.NONE)
        ours(local, Compression.NONE)
        rows: dict[str, Callable[[], tuple[float, float]]] = {
            "local pg_dump": lambda: local_pg_dump(lab.sockets, "ow_bench"),
            "bare exec read": lambda: _exec_read(lab, "ow_bench", _drop_frames),
            "gathered read": lambda: _exec_read(lab, "ow_bench", _drop_gathered),
            "ours, docker": lambda: ours(docker, Compression.NONE),
            "ours, docker zstd": lambda: ours(docker, Compression.ZSTD),
            "ours, local": lambda: ours(local, Compression.NONE),
        }
        walls: dict[str, list[float]] = {name: [] for name in rows}
        streams: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.runs):
            for name, run in rows.items():
                wall, stream = run()
                walls[name].append(wall)
                streams[name].append(stream if name.startswith("ours") else wall)
        print(f"\npg_dump -Fc -Z0 output: {dump_bytes / MB:.0f} MB; medians of {args.runs} runs\n")
        bare = statistics.median(walls["bare exec read"])
        local_wall = statistics.median(walls["local pg_dump"])
        print(f"{'':<20}{'wall s':>8}{'stream s':>10}{'MB/s':>8}{'vs bare exec':>14}{'vs local pg_dump':>18}")
        for name in rows:
            wall, stream = statistics.median(walls[name]), statistics.median(streams[name])
            print(f"{name:<20}{wall:>8.3f}{stream:>10.3f}{dump_bytes / MB / stream:>8.0f}{wall / bare:>13.2f}x"
                  f"{wall / local_wall:>17.2f}x")
        ours_wall = statistics.median(walls["ours, docker"])
        ours_stream = statistics.median(streams["ours, docker"])
        print(f"\ntransport: bare exec read / local pg_dump = {bare / local_wall:.2f}x")
        gathered = statistics.median(walls["gathered read"])
        print(f"gathered read / bare exec read = {gathered / bare:.2f}x")
        for label, value in (("wall", ours_wall), ("stream", ours_stream)):
            verdict = "PASS" if value <= TARGET * bare else "FAIL"
            print(f"{verdict:<5} ours (docker, none) {label} {value:.3f} s within {TARGET}x of the bare exec read "
                  f"({bare:.3f} s): {value / bare:.2f}x; of the gathered read: {value / gathered:.2f}x")
        container.remove(force=True, v=True)
        return 0
    finally:
        for service in services:
            service.close()
        lab.close()


if __name__ == "__main__":
    raise SystemExit(main())
