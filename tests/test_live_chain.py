"""GET status `live` (issue 14 item 4): the newest database backup's steps, through a scheduled backup's whole
chain (backup, the verify queued after it, the prune after the verify) as the worker records it, run here through
the service on a real catalog; and which steps a CLI backup and a failed one skip, and why."""

from __future__ import annotations

from typing import Any

from openwatch_backup.api.live_chain import live_of
from openwatch_backup.core.kinds import Trigger
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    Catalog,
    bearer,
    catalog_client,
    catalog_fixture,
    failed_backup,
)


def _states(catalog: Catalog) -> list[tuple[str, str, str | None]]:
    live = live_of(catalog.service)
    assert live is not None
    return [(step.name, step.state, step.note) for step in live.steps]


def test_a_scheduled_backup_chain_step_by_step(catalog: Catalog) -> None:
    service = catalog.service
    # The fixture's backups came from the CLI: nothing follows them, and the steps say so.
    cli = "started from the CLI, which queues no follow-up"
    assert _states(catalog)[3:] == [("verify", "skipped", cli), ("offsite", "skipped", cli), ("prune", "skipped", cli)]

    run_id = service.request_backup(service.build_request(), trigger=Trigger.SCHEDULE, requested_by="schedule")
    live = live_of(service)
    assert live is not None
    assert live.run.id == str(run_id)
    assert live.active is True
    assert live.estimate_bytes == catalog.backup.details["bytes_in"]  # the last full zstd backup's pg_dump output
    assert live.estimate_from == str(catalog.backup.id)
    assert _states(catalog) == [("preflight", "pending", None), ("dump", "pending", None),
                                ("manifest", "pending", None), ("verify", "pending", None),
                                ("offsite", "skipped", "no off-site bucket"), ("prune", "pending", None)]

    backup = service.execute_backup(run_id)
    assert backup.status == "succeeded", backup.error
    assert [s[1] for s in _states(catalog)] == ["done", "done", "done", "pending", "skipped", "pending"]

    verify_id = service.request_verify(backup, trigger=Trigger.SCHEDULE, requested_by=f"after backup {str(run_id)[:8]}")
    assert _states(catalog)[3] == ("verify", "pending", "queued")
    service.execute_verify(verify_id)
    assert _states(catalog)[3] == ("verify", "done", None)
    assert _states(catalog)[5] == ("prune", "pending", None)
    live = live_of(service)
    assert live is not None
    assert live.active is True  # the prune is still to come
    assert live.steps[3].run_id == str(verify_id)

    prune_id = service.request_prune(trigger=Trigger.SCHEDULE, requested_by=f"after verify {str(verify_id)[:8]}")
    assert prune_id is not None
    assert _states(catalog)[5] == ("prune", "pending", "queued")
    assert service.execute_prune(prune_id).status == "succeeded"
    live = live_of(service)
    assert live is not None
    assert [s.state for s in live.steps] == ["done", "done", "done", "done", "skipped", "done"]
    assert live.steps[5].run_id == str(prune_id)
    assert live.active is False
    assert live.estimate_bytes is None  # only while it runs


def test_a_failed_backup_skips_what_follows_and_status_carries_it(catalog: Catalog) -> None:
    failed = failed_backup(catalog.service)  # failed in its first phase ("starting": preflight)
    assert _states(catalog) == [
        ("preflight", "failed", "pg_dump exited with 1 (test)"), ("dump", "skipped", "not reached"),
        ("manifest", "skipped", "not reached"),
        ("verify", "skipped", "started from the CLI, which queues no follow-up"),
        ("offsite", "skipped", "started from the CLI, which queues no follow-up"),
        ("prune", "skipped", "started from the CLI, which queues no follow-up")]
    with catalog_client(catalog) as client:
        answer: Any = client.get(f"{PREFIX}/status", headers=bearer("super_admin")).json()
    assert answer["live"]["run"]["id"] == str(failed.id)
    assert answer["live"]["run"]["details"] is None  # a list row: polled every 2 s
    assert answer["live"]["active"] is False
    assert [s["state"] for s in answer["live"]["steps"]] == ["failed", "skipped", "skipped", "skipped", "skipped",
                                                             "skipped"]
