"""GET runs?group=sets: a nightly set is one item with its member backups under it (`members`, each with
parent_id the set), the members are not listed on their own, pages count top-level items and walk every run once;
without group=sets the list is as before (members listed, with parent_id). GET runs/{id} of a set has its members.

A real set (the dump, verified) taken by service/sets.py against the real catalog, and one recorded as the set
code records a failed member, so the set's own status (failed) stands for its members'."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.service.sets import SET_KIND, execute_set, request_set
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    Catalog,
    bearer,
    catalog_client,
    catalog_fixture,
)

ADMIN = bearer("super_admin")


@pytest.fixture
def client(catalog: Catalog) -> Iterator[Any]:
    with catalog_client(catalog) as client:
        yield client


def _failed_set(catalog: Catalog) -> tuple[uuid.UUID, uuid.UUID]:
    """A set whose one member failed, recorded as execute_set records it (member by parent_id and set_id)."""
    recorder = catalog.service.recorder
    set_id = recorder.create(SET_KIND, "schedule", "celery-beat", details={"planned": ["full"]})
    recorder.claim(set_id)
    member = recorder.create("full", "schedule", f"set {str(set_id)[:8]}", parent_id=set_id,
                             details={"set_id": str(set_id)})
    recorder.claim(member)
    recorder.finish_unsuccessfully(member, RunStatus.FAILED, "dump_failed", "pg_dump exited with 1 (test)")
    recorder.finish_unsuccessfully(set_id, RunStatus.FAILED, "set_partial", f"set partial: full {str(member)[:8]} "
                                   "failed", details={"outcome": "partial"})
    return set_id, member


def _top_level(runs: list[BackupRun]) -> list[str]:
    return [str(r.id) for r in runs if not (r.parent_id and r.details.get("set_id") == str(r.parent_id))]


def test_runs_grouped_by_set(client: Any, catalog: Catalog) -> None:
    service = catalog.service
    good_id, created = request_set(service, requested_by="celery-beat")
    assert created
    good = execute_set(service, good_id)
    assert good.status == "succeeded", good.error
    [good_member] = [r for r in catalog.runs() if r.parent_id == good_id]
    bad_id, bad_member = _failed_set(catalog)
    plain = service.backup(service.build_request(), requested_by="test")  # a run of its own after the sets
    everything = catalog.runs()  # newest first
    top = _top_level(everything)
    assert str(good_member.id) not in top
    assert str(bad_member) not in top
    assert top[0] == str(plain.id)
    assert len(top) == len(everything) - 2

    page = client.get(f"{PREFIX}/runs", params={"group": "sets"}, headers=ADMIN)
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert [i["id"] for i in items] == top
    assert page.json()["next_cursor"] is None
    by_id = {i["id"]: i for i in items}
    good_item, bad_item = by_id[str(good_id)], by_id[str(bad_id)]
    assert (good_item["kind"], good_item["status"], good_item["set_offsite"]) == ("set", "succeeded", False)
    assert [(m["id"], m["kind"], m["status"], m["parent_id"]) for m in good_item["members"]] == [
        (str(good_member.id), "full", "succeeded", str(good_id))]
    assert [c["storage"] for c in good_item["members"][0]["copies"]] == ["local"]
    assert (bad_item["status"], bad_item["error_code"], bad_item["set_offsite"]) == ("failed", "set_partial", False)
    assert [(m["id"], m["status"], m["error_code"]) for m in bad_item["members"]] == [
        (str(bad_member), "failed", "dump_failed")]
    assert all(i["members"] is None and i["set_offsite"] is None for i in items if i["kind"] != "set")

    # Pages count top-level items: every page size walks each of them once, in order, members never on their own.
    for limit in (1, 2, 3):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"group": "sets", "limit": limit, **({"cursor": cursor} if cursor else {})}
            answer = client.get(f"{PREFIX}/runs", params=params, headers=ADMIN).json()
            assert 1 <= len(answer["items"]) <= limit
            seen += [i["id"] for i in answer["items"]]
            cursor = answer["next_cursor"]
            if cursor is None:
                break
        assert seen == top, limit

    # kind filters the top-level items: the sets, with their members.
    sets = client.get(f"{PREFIX}/runs", params={"group": "sets", "kind": "set"}, headers=ADMIN).json()["items"]
    assert [(i["id"], len(i["members"])) for i in sets] == [(str(bad_id), 1), (str(good_id), 1)]

    # Without group=sets, as before: every run, members with parent_id the set, no members folded.
    flat = client.get(f"{PREFIX}/runs", params={"limit": 200}, headers=ADMIN).json()["items"]
    assert [i["id"] for i in flat] == [str(r.id) for r in everything]
    assert {i["id"]: i["parent_id"] for i in flat if i["kind"] == "full" and i["parent_id"]} == {
        str(good_member.id): str(good_id), str(bad_member): str(bad_id)}
    assert all(i["members"] is None for i in flat)

    one = client.get(f"{PREFIX}/runs/{good_id}", headers=ADMIN).json()
    assert [m["id"] for m in one["members"]] == [str(good_member.id)]
    assert client.get(f"{PREFIX}/runs/{plain.id}", headers=ADMIN).json()["members"] is None


def test_an_unknown_group_is_one_line(client: Any) -> None:
    answer = client.get(f"{PREFIX}/runs", params={"group": "kinds"}, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["detail"] == "query parameter group: must be 'sets'"
