"""GET runs: newest first, keyset pagination on (created_at, id), filters.

The catalog gets runs with identical created_at (ties broken by id), ones a microsecond apart, and a mix of
kinds and statuses; walking every page at several page sizes gives exactly the catalog's order, each run once,
and next_cursor null on the last page.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    Services,
    Submitted,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    make_catalog,
    openwatch_auth,
)

ADMIN = bearer("super_admin")
KINDS = ("full", "full", "schema", "tables", "verify", "prune", "restore")
STATUSES = ("succeeded", "succeeded", "failed", "cancelled", "abandoned")


def _insert_runs(url: str, count: int, rng: random.Random) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        if n < 20:
            created = base  # twenty runs at the very same instant: only the id orders them
        elif n < 30:
            created = base + timedelta(microseconds=n)  # a microsecond apart
        else:
            created = base + timedelta(minutes=rng.randint(1, 100_000))
        rows.append((uuid.uuid4(), rng.choice(KINDS), rng.choice(STATUSES), "schedule", created,
                     json.dumps({"log": [f"run {n}"]})))
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO backup_runs (id, kind, status, trigger, created_at, details) "
                        "VALUES (%s, %s, %s, %s, %s, %s::jsonb)", rows)


def _expected(url: str, where: str = "", params: tuple[Any, ...] = ()) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT id FROM backup_runs {where} ORDER BY created_at DESC, id DESC",
                            params).fetchall()
    return [str(r[0]) for r in rows]


def _paged(catalog: Catalog) -> Iterator[tuple[Any, Catalog]]:
    _insert_runs(catalog.url, 137, random.Random(7))
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(AuditLog()), services=services, submit=Submitted())) as client:
        yield client, catalog
    services.close()


@pytest.fixture(scope="module")
def paged(pg: Any, openwatch_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Catalog]]:
    """The module's catalog of 140 runs (read only)."""
    with make_catalog(pg, openwatch_template, tmp_path_factory.mktemp("paged"), "apipage") as catalog:
        yield from _paged(catalog)


@pytest.fixture
def paged_own(catalog: Catalog) -> Iterator[tuple[Any, Catalog]]:
    """A catalog of 140 runs for a test that changes it."""
    yield from _paged(catalog)


def _walk(client: Any, limit: int, **filters: str) -> tuple[list[str], int]:
    ids: list[str] = []
    cursor, pages = None, 0
    while True:
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get(f"{PREFIX}/runs", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        ids += [r["id"] for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert len(body["items"]) == limit
        assert pages < 1000


@pytest.mark.parametrize("limit", [1, 7, 20, 50, 140, 200])
def test_walk_every_page(paged: tuple[Any, Catalog], limit: int) -> None:
    client, catalog = paged
    expected = _expected(catalog.url)
    assert len(expected) == 140
    ids, pages = _walk(client, limit)
    assert ids == expected
    assert len(set(ids)) == len(ids)
    assert pages == max(1, -(-len(expected) // limit))  # no empty page after an exactly full one


def test_default_page_is_fifty_newest(paged: tuple[Any, Catalog]) -> None:
    client, catalog = paged
    body = client.get(f"{PREFIX}/runs", headers=ADMIN).json()
    assert [r["id"] for r in body["items"]] == _expected(catalog.url)[:50]
    assert body["next_cursor"]


@pytest.mark.parametrize("filters", [{"kind": "verify"}, {"status": "failed"}, {"kind": "full", "status": "succeeded"},
                                     {"kind": "drill"}, {"kind": "tables", "status": "abandoned"}])
def test_filters_across_pages(paged: tuple[Any, Catalog], filters: dict[str, str]) -> None:
    client, catalog = paged
    where = " AND ".join(f"{k} = %s" for k in filters)
    expected = _expected(catalog.url, f"WHERE {where}", tuple(filters.values()))
    for limit in (1, 3, 200):
        ids, _ = _walk(client, limit, **filters)
        assert ids == expected, (filters, limit)


def test_cursor_is_stable_while_runs_are_added_and_removed(paged_own: tuple[Any, Catalog]) -> None:
    """A run created (newer) or deleted between pages neither repeats nor skips the older runs."""
    client, catalog = paged_own
    expected = _expected(catalog.url)
    first = client.get(f"{PREFIX}/runs", params={"limit": 25}, headers=ADMIN).json()
    catalog.service.recorder.create("full", "api", "between pages")
    catalog.execute("DELETE FROM backup_runs WHERE id = %s", (uuid.UUID(expected[24]),))  # the cursor's own run
    rest: list[str] = []
    cursor = first["next_cursor"]
    while cursor:
        body = client.get(f"{PREFIX}/runs", params={"limit": 25, "cursor": cursor}, headers=ADMIN).json()
        rest += [r["id"] for r in body["items"]]
        cursor = body["next_cursor"]
    assert [r["id"] for r in first["items"]] + rest == expected


def test_cursor_is_opaque_but_round_trips(paged: tuple[Any, Catalog]) -> None:
    client, _ = paged
    body = client.get(f"{PREFIX}/runs", params={"limit": 5}, headers=ADMIN).json()
    created, run_id = base64.urlsafe_b64decode(body["next_cursor"]).decode().split("|")
    last = body["items"][-1]
    assert run_id == last["id"]
    assert datetime.fromisoformat(created) == datetime.fromisoformat(last["created_at"].replace("Z", "+00:00"))
