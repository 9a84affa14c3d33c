"""Prometheus metrics read from the catalog at scrape time (OpenWatch's /metrics lives in the backend, the runs
in the worker): they match the catalog, and a scrape with the database down still answers, catalog_up 0."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from openwatch_backup import devstack
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.errors import DumpFailed
from openwatch_backup.metrics import register
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(registry: CollectorRegistry) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _factory(url: str, backup_dir: Path) -> Callable[[], BackupService]:
    return lambda: BackupService(load_settings(database_url=url, dir=backup_dir))


def _runs_by_status(service: BackupService) -> Samples:
    with service.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, status, count(*) FROM backup_runs GROUP BY 1, 2")).all()
    return {("openwatch_backup_runs", (("kind", k), ("status", s))): float(n) for k, s, n in rows}


def _only(samples: Samples, name: str) -> Samples:
    return {key: value for key, value in samples.items() if key[0] == name}


def test_metrics_match_the_catalog(openwatch_db: str, tmp_path: Path, make_service) -> None:
    backup_dir = tmp_path / "backups"
    service = make_service(openwatch_db, backup_dir)
    backup = service.backup(service.build_request(BackupKind.FULL))
    verify, _ = service.verify(str(backup.id))
    with pytest.raises(DumpFailed):
        service.backup(service.build_request(BackupKind.TABLES, tables=["no_such_table"]))
    registry = CollectorRegistry()
    register(registry, _factory(openwatch_db, backup_dir))

    samples = _scrape(registry)
    assert samples[("openwatch_backup_catalog_up", ())] == 1.0
    assert backup.finished_at is not None
    assert backup.started_at is not None
    assert verify.finished_at is not None
    assert _only(samples, "openwatch_backup_last_success_timestamp_seconds") == {
        ("openwatch_backup_last_success_timestamp_seconds", (("kind", "full"),)): backup.finished_at.timestamp(),
        ("openwatch_backup_last_success_timestamp_seconds", (("kind", "verify"),)): verify.finished_at.timestamp(),
    }
    duration = samples[("openwatch_backup_last_duration_seconds", (("kind", "full"),))]
    assert duration == pytest.approx((backup.finished_at - backup.started_at).total_seconds(), abs=1e-6)
    assert _only(samples, "openwatch_backup_last_size_bytes") == {
        ("openwatch_backup_last_size_bytes", (("kind", "full"),)): float(backup.size_bytes or -1)}
    assert backup.size_bytes == (backup_dir / "postgres" / backup.details["artifact"]).stat().st_size
    assert samples[("openwatch_backup_last_verify_passed", ())] == 1.0
    assert _only(samples, "openwatch_backup_runs") == _runs_by_status(service) == {
        ("openwatch_backup_runs", (("kind", "full"), ("status", "succeeded"))): 1.0,
        ("openwatch_backup_runs", (("kind", "verify"), ("status", "succeeded"))): 1.0,
        ("openwatch_backup_runs", (("kind", "tables"), ("status", "failed"))): 1.0,
    }

    # The artifact damaged: the next verify fails and the metric says so.
    artifact = backup_dir / "postgres" / backup.details["artifact"]
    artifact.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    failed, _ = service.verify(str(backup.id))
    assert failed.status == "failed"
    samples = _scrape(registry)
    assert samples[("openwatch_backup_last_verify_passed", ())] == 0.0
    # The newest *successful* verify is still the first one.
    assert samples[("openwatch_backup_last_success_timestamp_seconds", (("kind", "verify"),))] == \
        verify.finished_at.timestamp()
    assert _only(samples, "openwatch_backup_runs") == _runs_by_status(service)
    assert samples[("openwatch_backup_runs", (("kind", "verify"), ("status", "failed")))] == 1.0


def test_scrape_answers_with_the_database_down(tmp_path: Path, make_database) -> None:
    nowhere = f"postgresql://openwatch:secret@127.0.0.1:{devstack.pick_free_port()}/openwatch"
    not_migrated = make_database("nocat")  # a database without the plugin's tables
    for url in (nowhere, not_migrated):
        registry = CollectorRegistry()
        register(registry, _factory(url, tmp_path / "b"))
        started = time.monotonic()
        samples = _scrape(registry)
        assert time.monotonic() - started < 15
        assert samples == {("openwatch_backup_catalog_up", ()): 0.0}, url
        assert b"secret" not in generate_latest(registry)


def test_register_goes_into_openwatchs_own_registry(openwatch_db: str, tmp_path: Path, make_service) -> None:
    """OpenWatch's /metrics serves its own CollectorRegistry (app/services/infrastructure/prometheus.py), not
    prometheus_client's global REGISTRY: the collector lands in the registry it is given, and there is no
    default that would silently put it where nobody scrapes."""
    from prometheus_client import REGISTRY, Counter

    make_service(openwatch_db, tmp_path / "b")
    openwatch_registry = CollectorRegistry()  # as OpenWatch's prometheus.py: registry = CollectorRegistry()
    Counter("secureops_http_requests_total", "Total HTTP requests", ["method"], registry=openwatch_registry)
    register(openwatch_registry, _factory(openwatch_db, tmp_path / "b"))
    served = generate_latest(openwatch_registry).decode()  # what OpenWatch's GET /metrics answers
    assert "openwatch_backup_catalog_up 1.0" in served
    assert "secureops_http_requests_total" in served
    assert "openwatch_backup" not in generate_latest(REGISTRY).decode()
    with pytest.raises(TypeError):
        register()  # type: ignore[call-arg]
