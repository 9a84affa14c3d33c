"""install(celery_app) on OpenWatch's app: tasks registered, routed to `maintenance` whatever shape the app's
task_routes has, two beat entries; `include=["openwatch_backup.tasks"]` alone registers the tasks too."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Queue

from openwatch_backup.tasks import BACKUP, DISPATCH, SWEEP, TASK_NAMES, install, submit_backup
from tests.celery_support import (  # noqa: F401 - fixtures
    REPO,
    broker_url_fixture,
    client_app_fixture,
    load_openwatch_app,
    module_redis_fixture,
)

# Every task the plugin registers (the README lists the same, tests/test_readme.py checks), in its own namespace;
# the restore task runs the API's restores in OpenWatch's worker.
EXPECTED_NAMES = {"openwatch_backup.backup", "openwatch_backup.verify", "openwatch_backup.prune",
                  "openwatch_backup.drill", "openwatch_backup.restore", "openwatch_backup.dispatch",
                  "openwatch_backup.sweep", "openwatch_backup.offsite", "openwatch_backup.drill_volume",
                  "openwatch_backup.drill_host", "openwatch_backup.set"}
ALL_NAMES = set(TASK_NAMES)
# OpenWatch's task_routes (shared/reference/openwatch.md, section 1).
OPENWATCH_ROUTES = {
    "app.tasks.scan_host": {"queue": "scans"},
    "app.tasks.execute_scan": {"queue": "scans"},
    "app.tasks.process_scan_result": {"queue": "results"},
    "app.tasks.cleanup_old_files": {"queue": "maintenance"},
    "app.tasks.detect_stale_scans": {"queue": "maintenance"},
    "app.tasks.check_host_connectivity": {"queue": "host_monitoring"},
    "app.tasks.dispatch_host_checks": {"queue": "host_monitoring"},
    "app.tasks.queue_host_checks": {"queue": "monitoring"},
    "app.tasks.deliver_webhook": {"queue": "default"},
    "app.tasks.run_scheduled_aegis_scan": {"queue": "compliance_scanning"},
}
OPENWATCH_BEAT = {"dispatch-host-checks-every-30-seconds": {"task": "app.tasks.dispatch_host_checks",
                                                            "schedule": 30.0,
                                                            "options": {"queue": "host_monitoring", "priority": 10}}}


def _queue(app: Celery, name: str) -> str:
    return str(app.amqp.router.route({}, name)["queue"].name)


def _openwatch_like(task_routes: Any) -> Celery:
    app = Celery("openwatch", broker="redis://127.0.0.1:1/0", backend="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.update(task_default_queue="default", task_routes=task_routes, beat_schedule=dict(OPENWATCH_BEAT),
                    task_queues=[Queue(q, routing_key=q) for q in ("default", "scans", "maintenance")])
    return app


def test_task_names_are_the_plugins() -> None:
    assert EXPECTED_NAMES == ALL_NAMES
    assert all(name.startswith("openwatch_backup.") for name in ALL_NAMES)


def test_openwatch_app_registers_routes_and_schedules(broker_url: str) -> None:
    app = load_openwatch_app(broker_url, OWB_TEST_DISPATCH_SECONDS="7", OWB_TEST_SWEEP_SECONDS="11")
    try:
        app.loader.import_default_modules()
        assert set(app.tasks) >= ALL_NAMES
        for name in ALL_NAMES:
            assert _queue(app, name) == "maintenance", name
        # OpenWatch's own routes and default queue are untouched.
        assert _queue(app, "app.tasks.dispatch_host_checks") == "host_monitoring"
        assert _queue(app, "app.tasks.detect_stale_scans") == "maintenance"
        assert _queue(app, "app.tasks.something_else") == "default"
        assert app.conf.beat_schedule == {
            "openwatch-backup-dispatch": {"task": DISPATCH, "schedule": 7.0,
                                          "options": {"queue": "maintenance", "expires": 7.0}},
            "openwatch-backup-sweep": {"task": SWEEP, "schedule": 11.0,
                                       "options": {"queue": "maintenance", "expires": 11.0}},
        }
    finally:
        app.close()


def _router_function(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    return {"queue": "scans"} if name == "app.tasks.by_function" else None


@pytest.mark.parametrize("shape", ["none", "dict", "list", "tuple"])
def test_install_routes_whatever_shape_task_routes_has(shape: str) -> None:
    routes: Any = {"none": None, "dict": dict(OPENWATCH_ROUTES), "list": [dict(OPENWATCH_ROUTES), _router_function],
                   "tuple": (dict(OPENWATCH_ROUTES), _router_function)}[shape]
    app = _openwatch_like(routes)
    install(app, queue="maintenance", dispatch_seconds=60, sweep_seconds=300)
    for name in ALL_NAMES:
        assert _queue(app, name) == "maintenance", (shape, name)
    if shape != "none":
        for name, route in OPENWATCH_ROUTES.items():
            assert _queue(app, name) == route["queue"], (shape, name)
    if shape in ("list", "tuple"):
        assert _queue(app, "app.tasks.by_function") == "scans"
    assert _queue(app, "app.tasks.unrouted") == "default"
    # OpenWatch's beat entries stay; ours are added beside them.
    assert set(app.conf.beat_schedule) == {*OPENWATCH_BEAT, "openwatch-backup-dispatch", "openwatch-backup-sweep"}
    assert app.conf.beat_schedule["dispatch-host-checks-every-30-seconds"] == \
        OPENWATCH_BEAT["dispatch-host-checks-every-30-seconds"]
    assert app.conf.beat_schedule["openwatch-backup-dispatch"]["schedule"] == 60
    assert app.conf.beat_schedule["openwatch-backup-sweep"]["schedule"] == 300


def test_install_with_another_queue() -> None:
    app = _openwatch_like(dict(OPENWATCH_ROUTES))
    install(app, queue="scans")
    assert {_queue(app, name) for name in ALL_NAMES} == {"scans"}
    assert app.conf.beat_schedule["openwatch-backup-sweep"]["options"]["queue"] == "scans"


_REGISTERED = """
import json, sys
from celery import Celery
include = sys.argv[1] == "include"
app = Celery("openwatch", broker="redis://127.0.0.1:1/0", include=["openwatch_backup.tasks"] if include else [])
app.loader.import_default_modules()
print(json.dumps(sorted(n for n in app.tasks if n.startswith("openwatch_backup."))))
"""


@pytest.mark.parametrize(("mode", "expected"), [("include", sorted(ALL_NAMES)), ("nothing", [])])
def test_include_alone_registers_the_tasks(mode: str, expected: list[str]) -> None:
    # A fresh interpreter: in this one the module is imported already, and shared tasks reach every app.
    done = subprocess.run([sys.executable, "-c", _REGISTERED, mode], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == expected


def _messages(broker_url: str, queue: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(broker_url)
    try:
        return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]  # LPUSHed: oldest last
    finally:
        client.close()


def test_tasks_sent_by_name_land_on_the_maintenance_queue(broker_url: str, client_app: Celery, make_service,
                                                          openwatch_db: str, tmp_path) -> None:
    # No worker: the messages stay in Redis, where we read which list (queue) they went to.
    run_id = str(uuid.uuid4())
    client_app.send_task(BACKUP, args=[run_id])
    service = make_service(openwatch_db, tmp_path / "b")
    submit_backup(client_app, service, uuid.UUID(run_id))
    sent = _messages(broker_url, "maintenance")
    assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in sent] == [(BACKUP, repr([run_id]))] * 2
    assert _messages(broker_url, "default") == []
    # submit_backup carries the plugin's time limits (soft = OPENWATCH_BACKUP_TIME_LIMIT_SECONDS, hard +300 s).
    assert [m["headers"]["timelimit"] for m in sent] == [[None, None], [14400 + 300, 14400]]
