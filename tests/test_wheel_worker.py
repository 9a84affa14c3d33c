"""`pip install openwatch-backup` alone (the wheel into a bare venv, no extras) starts a Celery worker on Redis.

kombu's Redis transport imports `packaging`, which kombu 5.7 lists only under its [redis] extra: without it the
worker dies at start-up with ModuleNotFoundError. The package depends on `packaging` itself (not on celery[redis],
which cannot resolve with OpenWatch's pins: tests/test_wheel_openwatch_pins.py). The build must not warn about
package data left out of `packages`. The worker
runs OpenWatch's kind of app (Celery("openwatch") + the README's install line) from the venv, and answers
OpenWatch's own health check, `celery -A ... inspect ping`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from openwatch_backup.tasks import TASK_NAMES
from tests.celery_support import (  # noqa: F401 - fixtures
    REPO,
    broker_url_fixture,
    module_redis_fixture,
    process_env,
)

OPENWATCH_APP = '''
import os

from celery import Celery

celery_app = Celery("openwatch", broker=os.environ["OPENWATCH_REDIS_URL"], backend=os.environ["OPENWATCH_REDIS_URL"])
celery_app.conf.update(task_serializer="json", accept_content=["json"], timezone="UTC", enable_utc=True,
                       task_default_queue="default", broker_connection_retry_on_startup=True)

from openwatch_backup.tasks import install as install_backup_tasks  # noqa: E402

install_backup_tasks(celery_app)
'''


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Warm shutdown by the worker's PID; its pool children are in its session, killed by that group if needed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.slow
def test_the_wheel_alone_starts_a_worker_on_redis(tmp_path: Path, broker_url: str) -> None:
    wheels = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels)], cwd=REPO,
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr
    (wheel,) = wheels.glob("openwatch_backup-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = {p.name for p in (REPO / "openwatch_backup" / "api" / "static").iterdir() if p.is_file()}
    assert {f"openwatch_backup/api/static/{name}" for name in static} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = process_env()
    env.pop("PYTHONPATH", None)
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", str(wheel)], env=env,
                               capture_output=True, text=True, timeout=900, check=False)
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    present = {item["name"].lower() for item in json.loads(listed.stdout)}
    assert {"openwatch-backup", "celery", "kombu", "redis", "packaging"} <= present
    assert not present & {"pytest", "uvicorn", "httpx", "ruff", "mypy"}  # no dev or demo extras

    (tmp_path / "owapp.py").write_text(OPENWATCH_APP)
    env["OPENWATCH_REDIS_URL"] = broker_url
    where = subprocess.run([python, "-c", "import openwatch_backup; print(openwatch_backup.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=60, check=True)
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not this checkout

    node = f"wheel-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([python, "-m", "celery", "-A", "owapp", "worker", "--loglevel=info", "-Q",
                                   "default,maintenance", "--concurrency=1", "-n", node, "--without-gossip",
                                   "--without-mingle"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text(errors="replace"):
            assert worker.poll() is None, f"the worker exited {worker.returncode}:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no ready worker within 60 s:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.2)
        ping = subprocess.run([python, "-m", "celery", "-A", "owapp", "inspect", "ping", "-d", node, "--timeout",
                               "10"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert ping.stdout.split() == ["->", f"{node}:", "OK", "pong", "1", "node", "online."], ping.stdout
        banner = log_path.read_text()
        for name in TASK_NAMES:
            assert f"  . {name}\n" in banner, name
    finally:
        _stop(worker)
    assert worker.returncode == 0, log_path.read_text()[-3000:]
