"""Upload one large file to moto's S3 server over loopback: our streamed writer next to boto3's upload_file.

    python bench/bench_offsite.py [--size-mib 400] [--runs 1] [--file PATH] [--keep-server]

moto runs as its own process (`moto_server -H 127.0.0.1`), so it does not share the client's interpreter.
Each upload runs in a fresh child process, and its peak RSS comes from os.wait4 (ru_maxrss): the whole
process, interpreter and boto3 included. `ours` is S3Storage.open_writer fed 1 MiB reads of the file with
the file's sha256 given up front, as an off-site copy of a verified backup is (per-part SHA256 checksums,
the whole-file sha256 computed again while streaming, HEAD check at the end); `boto3` is
`client.upload_file` with its default TransferConfig (8 MiB parts, 10 threads, CRC32 checksums). The order
alternates between runs. Targets: ours >= 0.9x boto3's throughput, peak RSS < 150 MiB. Nothing leaves
127.0.0.1; the file, the bucket and the server are removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
BUCKET = "owb-bench"
REGION = "us-east-1"
TARGET_RATIO = 0.9
TARGET_RSS_MIB = 150
CHILD_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": REGION,
             "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
             "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto_server did not start within 30 s")


def make_file(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mib):
            block = os.urandom(MIB)  # incompressible, like a zstd dump
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def child(mode: str, endpoint: str, path: str, sha256: str, key: str, part_mib: int, inflight_mib: int) -> None:
    """Runs in its own process: one upload, then its wall seconds as JSON on stdout."""
    import boto3
    import botocore.config

    started = time.perf_counter()
    if mode == "ours":
        from openwatch_backup.storage.s3 import S3Config, S3Storage

        storage = S3Storage(S3Config(bucket=BUCKET, prefix="", region=REGION, endpoint_url=endpoint,
                                     addressing_style="path", min_part_size=part_mib * MIB,
                                     inflight_bytes=inflight_mib * MIB))
        size = os.path.getsize(path)
        writer = storage.open_writer(key, size_hint=size, sha256=sha256)
        with open(path, "rb") as source:
            while block := source.read(MIB):
                writer.write(block)
        writer.commit()
    elif mode == "boto3":
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                              config=botocore.config.Config(s3={"addressing_style": "path"}))
        client.upload_file(path, BUCKET, key)
    elif mode == "boto3-sha256":  # the same per-part checksum as ours: moto then does the same hashing work
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                              config=botocore.config.Config(s3={"addressing_style": "path"}))
        client.upload_file(path, BUCKET, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
    elif mode != "idle":  # idle: the interpreter and imports only, the RSS floor
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps({"seconds": time.perf_counter() - started}))


def run_child(mode: str, endpoint: str, path: Path, sha256: str, key: str,
              tuning: tuple[int, int] = (8, 64)) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds) of one upload in a fresh process."""
    env = {**os.environ, **CHILD_ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, "--endpoint", endpoint, "--file", str(path),
                             "--sha256", sha256, "--key", key, "--part-mib", str(tuning[0]), "--inflight-mib",
                             str(tuning[1])], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the {mode} upload failed (exit {proc.returncode})")
    # ru_maxrss is KiB on Linux; the CPU time includes the interpreter's start and imports.
    return float(json.loads(output)["seconds"]), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--file", type=Path, help="upload this file instead of a generated one")
    parser.add_argument("--part-mib", type=int, default=8, help="our smallest part size (S3Config.min_part_size)")
    parser.add_argument("--inflight-mib", type=int, default=64,
                        help="our bytes in flight (S3Config.inflight_bytes); parts in flight = this / part size")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--sha256", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.endpoint, str(args.file), args.sha256, args.key, args.part_mib, args.inflight_mib)
        return

    import boto3

    server, endpoint = start_moto()
    workdir = Path(tempfile.mkdtemp(prefix="owb-bench-offsite-"))
    try:
        path = args.file or workdir / "upload.bin"
        sha256 = hashlib.sha256(args.file.read_bytes()).hexdigest() if args.file else make_file(path, args.size_mib)
        size = path.stat().st_size
        os.environ.update(CHILD_ENV)
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        _, idle_rss, idle_cpu = run_child("idle", endpoint, path, sha256, "idle")
        results: dict[str, list[tuple[float, float, float]]] = {"ours": [], "boto3": [], "boto3-sha256": []}
        for run in range(args.runs):
            order = ["ours", "boto3", "boto3-sha256"]
            order = order[run % 3:] + order[:run % 3]
            for mode in order:
                key = f"{mode}-{run}.bin"
                wall, rss, cpu = run_child(mode, endpoint, path, sha256, key, (args.part_mib, args.inflight_mib))
                results[mode].append((wall, rss, cpu))
                print(f"run {run + 1} {mode:<12} {wall:6.2f} s  {size / MIB / wall:6.1f} MiB/s  RSS {rss:4.0f} MiB  "
                      f"CPU {cpu:5.2f} s", flush=True)
                head = client.head_object(Bucket=BUCKET, Key=key)
                assert head["ContentLength"] == size, (mode, head["ContentLength"], size)
                client.delete_object(Bucket=BUCKET, Key=key)  # moto keeps objects in memory
        print(f"file: {size / MIB:.0f} MiB, moto {endpoint}, {args.runs} run(s), child floor (imports only): "
              f"RSS {idle_rss:.0f} MiB, CPU {idle_cpu:.2f} s")
        print(f"{'upload':<12} {'seconds':>8} {'MiB/s':>8} {'peak RSS MiB':>13} {'client CPU s':>13}")
        rate: dict[str, float] = {}
        for mode, rows in results.items():
            seconds = statistics.median(r[0] for r in rows)
            rss = max(r[1] for r in rows)
            cpu = statistics.median(r[2] for r in rows)
            rate[mode] = size / MIB / seconds
            print(f"{mode:<12} {seconds:>8.2f} {rate[mode]:>8.1f} {rss:>13.0f} {cpu:>13.2f}")
        ratio = rate["ours"] / rate["boto3"]
        peak = max(r[1] for r in results["ours"])
        verdict = {True: "met", False: "MISSED"}
        print(f"ours/boto3 throughput: {ratio:.2f}x (target >= {TARGET_RATIO}x: {verdict[ratio >= TARGET_RATIO]}); "
              f"our peak RSS {peak:.0f} MiB (target < {TARGET_RSS_MIB}: {verdict[peak < TARGET_RSS_MIB]})")
    finally:
        server.terminate()
        server.wait(10)
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
