"""Prometheus metrics read from the catalog at scrape time, for OpenWatch's existing /metrics.

A collector, not counters in memory: the backend serves /metrics while the worker runs the backups, so
the numbers must come from the shared catalog. OpenWatch registers it once, next to its own metrics, in the
registry its /metrics serves: its own `CollectorRegistry` (app/services/infrastructure/prometheus.py), not
prometheus_client's global one, so the registry is a required argument:

    from app.services.infrastructure.prometheus import registry
    from openwatch_backup.metrics import register; register(registry)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import OPERATION_KINDS, BackupKind
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

BACKUP_KINDS = tuple(k.value for k in BackupKind)
log = logging.getLogger(__name__)


class CatalogCollector(Collector):
    def __init__(self, service_factory: Callable[[], BackupService]) -> None:
        self._service_factory = service_factory

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # nothing at registration: collect() reads the database, which may not be up yet

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("openwatch_backup_catalog_up", "1 if the backup catalog could be read")
        try:
            families = list(self._collect())
        except Exception as exc:  # a scrape must never fail OpenWatch's whole /metrics page
            log.warning("backup metrics unavailable: %s", type(exc).__name__)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        last_success = GaugeMetricFamily("openwatch_backup_last_success_timestamp_seconds",
                                         "When the newest successful run of each kind finished", labels=["kind"])
        duration = GaugeMetricFamily("openwatch_backup_last_duration_seconds",
                                     "Duration of the newest successful run of each kind", labels=["kind"])
        size = GaugeMetricFamily("openwatch_backup_last_size_bytes", "Size of the newest successful backup",
                                 labels=["kind"])
        verify = GaugeMetricFamily("openwatch_backup_last_verify_passed",
                                   "1 if the newest finished verify passed, 0 if it failed")
        runs = GaugeMetricFamily("openwatch_backup_runs", "Runs in the catalog by kind and status",
                                 labels=["kind", "status"])
        with self._service_factory() as service:
            for kind in (*BACKUP_KINDS, *OPERATION_KINDS):
                newest = service.recorder.list(limit=1, kind=kind, status="succeeded")
                run = newest[0] if newest else None
                if run is not None and run.finished_at is not None:
                    last_success.add_metric([kind], run.finished_at.timestamp())
                    if run.started_at is not None:
                        duration.add_metric([kind], (run.finished_at - run.started_at).total_seconds())
                    if kind in BACKUP_KINDS and run.size_bytes is not None:
                        size.add_metric([kind], run.size_bytes)
            verifies = service.recorder.list(limit=1, kind="verify", finished_only=True)
            if verifies:
                verify.add_metric([], 1.0 if verifies[0].status == "succeeded" else 0.0)
            with service.engine.connect() as conn:
                table = BackupRun.__table__
                counts = conn.execute(select(table.c.kind, table.c.status, func.count())
                                      .group_by(table.c.kind, table.c.status)).all()
            for kind, status, count in counts:
                runs.add_metric([kind, status], count)
        yield from (last_success, duration, size, verify, runs)


def register(registry: CollectorRegistry,
             service_factory: Callable[[], BackupService] | None = None) -> CatalogCollector:
    """Add the catalog collector to `registry` (OpenWatch's: the one its /metrics endpoint serves)."""
    collector = CatalogCollector(service_factory or (lambda: BackupService(load_settings())))
    registry.register(collector)
    return collector
