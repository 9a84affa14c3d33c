"""OpenWatch's Celery app as OpenWatch configures it (shared/reference/openwatch.md, section 1), for the
embedded demo stack and the tests, plus the one line OpenWatch adds for this plugin.

Environment: OPENWATCH_REDIS_URL (broker and result backend); OWB_TEST_DISPATCH_SECONDS and
OWB_TEST_SWEEP_SECONDS shorten the plugin's beat intervals.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]  # kombu does not re-export it in its stubs

from openwatch_backup.tasks import install

QUEUES = ("default", "scans", "results", "maintenance", "monitoring", "host_monitoring", "health_monitoring",
          "compliance_scanning")

broker_url = os.environ.get("OPENWATCH_REDIS_URL", "redis://127.0.0.1:6379/0")
celery_app = Celery("openwatch", broker=broker_url, backend=broker_url, include=["openwatch_backup.tasks"])
celery_app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    task_time_limit=7200,
    task_soft_time_limit=6600,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_max_tasks_per_child=1000,
    worker_send_task_events=True,
    task_send_sent_event=True,
    result_expires=3600,
    result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
    broker_connection_retry_on_startup=True,
    task_default_queue="default",
    task_queues=[Queue(name, routing_key=name) for name in QUEUES],
    task_routes={
        "app.tasks.detect_stale_scans": {"queue": "maintenance"},
        "app.tasks.dispatch_host_checks": {"queue": "host_monitoring"},
    },
    beat_schedule={},
)

# The line OpenWatch adds (README, "Install into OpenWatch"):
install(celery_app, dispatch_seconds=float(os.environ.get("OWB_TEST_DISPATCH_SECONDS", "60")),
        sweep_seconds=float(os.environ.get("OWB_TEST_SWEEP_SECONDS", "300")))
