"""The whole embedded stack for README's first command (and the browser test): PostgreSQL with sample
OpenWatch data, Redis, a Celery worker and beat with the plugin's tasks, and the API with the admin page.

Servers already running on the standard ports are reused; everything this starts is stopped by PID.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from openwatch_backup.devstack.databases import ensure_demo_database
from openwatch_backup.devstack.demo_config import prepare_demo_config
from openwatch_backup.devstack.errors import DevstackError
from openwatch_backup.devstack.postgres import PostgresHandle, ensure_postgres
from openwatch_backup.devstack.processes import LOOPBACK, pick_free_port, port_is_open
from openwatch_backup.devstack.redis import RedisHandle, ensure_redis
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

WEB_MODULE = "openwatch_backup.devstack.web:app"
CELERY_APP = "openwatch_backup.devstack.celery_app"
QUEUES = "default,maintenance"


class EmbeddedStack:
    def __init__(self, var: Path, *, database: str = "openwatch_demo", size_mib: float = 20.0, port: int = 0,
                 beat: bool = True, redis_db: int = 0, extra_env: dict[str, str] | None = None,
                 sample_config: bool = False) -> None:
        self.var = var
        self.database = database
        self.size_mib = size_mib
        self.port = port or pick_free_port(LOOPBACK)
        self.beat = beat
        self.redis_db = redis_db
        self.extra_env = extra_env or {}
        # The demo's config folder and passphrase (devstack/demo_config.py): the worker takes config bundles and
        # runs with the sample master key. Off by default, so a test's beat takes no bundle it did not ask for.
        self.sample_config = sample_config
        self.token = secrets.token_urlsafe(24)
        self.pg: PostgresHandle | None = None
        self.redis: RedisHandle | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/api/system/backups/ui"

    def start(self) -> EmbeddedStack:
        self.var.mkdir(parents=True, exist_ok=True)
        try:
            self.pg = ensure_postgres(self.var)
            database_url = ensure_demo_database(self.pg, self.database, target_mib=self.size_mib)
            self.redis = ensure_redis(self.var)
            self.env = {**os.environ, "OPENWATCH_DATABASE_URL": database_url,
                        "OPENWATCH_BACKUP_DIR": str(self.var / "backups"),
                        "OPENWATCH_REDIS_URL": f"redis://{self.redis.host}:{self.redis.port}/{self.redis_db}",
                        "OPENWATCH_BACKUP_API_TOKEN": self.token,
                        **(prepare_demo_config(self.var).environment() if self.sample_config else {}),
                        **self.extra_env}
            with BackupService(load_settings(database_url=database_url, dir=self.var / "backups")) as service:
                service.db_upgrade()
            logs = self.var / "logs"
            logs.mkdir(exist_ok=True)
            celery = [sys.executable, "-m", "celery", "-A", CELERY_APP]
            self._spawn("worker", [*celery, "worker", "--loglevel=INFO", "-Q", QUEUES, "--concurrency=2",
                                   "--hostname", f"owb-demo-{os.getpid()}@%h"], logs)
            if self.beat:
                self._spawn("beat", [*celery, "beat", "--loglevel=INFO", "--schedule",
                                     str(self.var / "celerybeat-schedule")], logs)
            self._spawn("api", [sys.executable, "-m", "uvicorn", WEB_MODULE, "--host", LOOPBACK, "--port",
                                str(self.port), "--log-level", "warning"], logs)
            self._wait_for_api()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str], logs: Path) -> None:
        log = (logs / f"{name}.log").open("ab")
        # Its own process group, so stop() ends the worker's pool children with it.
        self.processes[name] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _wait_for_api(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise DevstackError(f"the {name} exited at start (status {process.returncode}); see "
                                        f"{self.var / 'logs' / (name + '.log')}")
            if port_is_open(LOOPBACK, self.port, timeout=0.5):
                return
            time.sleep(0.2)
        raise DevstackError(f"the API did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()
        if self.redis is not None:
            self.redis.stop()  # only stops a server this stack started
        if self.pg is not None:
            self.pg.stop()

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
