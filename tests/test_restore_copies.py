"""A restore keeps each backup's copy rows: dumps leave backup_copies' rows out with backup_runs' (their rows
point at runs the dump does not carry), and a full restore carries the live ones over with the runs."""

from __future__ import annotations

import psycopg
import pytest

from openwatch_backup.operations.restore import RestoreRequest
from tests.support.restore_helpers import Lab, content, modify

pytestmark = pytest.mark.usefixtures("restore_env")


def _copies(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(r), s, st) for r, s, st in conn.execute(
            "SELECT run_id, storage, state FROM backup_copies ORDER BY created_at, run_id")]


def test_the_second_backup_restores_and_every_copy_row_survives(lab: Lab) -> None:
    first = lab.backup()
    assert lab.service.verify(str(first.id))[0].status == "succeeded"
    second = lab.backup()  # its dump was taken while the first backup's copy row existed
    at_second = content(lab.url)
    before = _copies(lab.url)
    assert [(r, s) for r, s, _ in before] == [(str(first.id), "local"), (str(second.id), "local")]
    modify(lab.url)

    run = lab.service.restore(str(second.id), RestoreRequest(confirm=lab.name, safety_backup=False))

    assert run.status == "succeeded", run.error
    assert content(lab.url) == at_second
    assert _copies(lab.url) == before  # carried over from the live catalog, states included
    with psycopg.connect(lab.url) as conn:
        dumped = conn.execute("SELECT count(*) FROM backup_copies WHERE run_id NOT IN (SELECT id FROM backup_runs)")
        assert dumped.fetchone() == (0,)
