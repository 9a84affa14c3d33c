"""Issue 14 item 8, weight: GET runs answers summaries (details null; a small `summary` per run, retention's word
from the newest prune plan), GET runs/{id} the details; answers of 500 bytes or more go out gzip-compressed when
the client accepts it (downloads never); the page's files have versioned names, cached as immutable, and the old
version's names are a 404.

A real catalog (a real backup, its verify, a failed backup, a real prune plan) behind the router as OpenWatch
mounts it; the answers are read as bytes on the wire (TestClient decodes gzip, so the raw stream is checked)."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openwatch_backup.api.page import IMMUTABLE, assets
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    Catalog,
    bearer,
    catalog_client,
    module_catalog_fixture,
)

ADMIN = bearer("super_admin")


@pytest.fixture(scope="module")
def client(module_catalog: Catalog) -> Iterator[Any]:
    with catalog_client(module_catalog) as client:
        yield client


def _raw(client: Any, path: str, encoding: str | None) -> httpx.Response:
    """The answer as sent: the body's bytes before any decoding."""
    headers = {**ADMIN, "Accept-Encoding": encoding or "identity"}
    with client.stream("GET", f"{PREFIX}{path}", headers=headers) as response:
        response.raw = b"".join(response.iter_raw())
    return response


def test_list_items_carry_a_summary_and_the_detail_the_details(client: Any, module_catalog: Catalog) -> None:
    catalog = module_catalog
    prune = catalog.service.prune(apply=False, requested_by="test")  # a plan only: nothing is deleted
    assert prune.status == "succeeded", prune.error
    decision = next(d for d in prune.details["plan"] if d["run"] == str(catalog.backup.id))

    listed = client.get(f"{PREFIX}/runs", headers=ADMIN, params={"limit": 200})
    assert listed.status_code == 200, listed.text
    items = {item["id"]: item for item in listed.json()["items"]}
    assert set(items) == {str(r.id) for r in catalog.runs()}
    assert all(item["details"] is None for item in items.values())

    backup = items[str(catalog.backup.id)]
    assert backup["summary"]["artifact"] == catalog.backup.details["artifact"]
    assert backup["summary"]["estimate_bytes"] == catalog.backup.details["estimate_bytes"]
    assert backup["summary"]["retention"] == {
        "action": decision["action"], "reason": decision["reason"], "protected": decision["protected"],
        "prune_run": str(prune.id), "planned_at": backup["summary"]["retention"]["planned_at"]}
    assert backup["summary"]["retention"]["planned_at"].startswith(prune.details["planned_at"][:19])
    assert [c["storage"] for c in backup["copies"]] == ["local"]  # copies stay in the list

    verify = items[str(catalog.verify.id)]["summary"]
    assert (verify["result"], verify["deep"], verify["reason"], verify["backup_run"]) == \
        ("passed", False, None, str(catalog.backup.id))
    assert items[str(catalog.failed.id)]["summary"]["retention"] is None  # a failed backup is not in the plan
    assert items[str(prune.id)]["summary"]["result"] is None

    detail = client.get(f"{PREFIX}/runs/{catalog.backup.id}", headers=ADMIN).json()
    assert detail["details"]["row_counts"] == catalog.backup.details["row_counts"]
    assert detail["details"]["server_version"] == catalog.backup.details["server_version"]
    assert detail["summary"]["artifact"] == catalog.backup.details["artifact"]
    # The list is the lighter for it: the prune's plan rides only with GET runs/{id}.
    plan = client.get(f"{PREFIX}/runs/{prune.id}", headers=ADMIN).json()
    assert plan["details"]["plan"] == prune.details["plan"]
    assert len(json.dumps(items[str(prune.id)])) < len(json.dumps(plan)) - len(json.dumps(prune.details["plan"]))


def test_runs_of_a_parent(client: Any, module_catalog: Catalog) -> None:
    """GET runs?parent=<id>: the runs under one run (the page's run details: a backup's verifies and restores)."""
    catalog = module_catalog
    under = client.get(f"{PREFIX}/runs", headers=ADMIN, params={"parent": str(catalog.backup.id)})
    assert under.status_code == 200, under.text
    assert [(i["id"], i["kind"], i["details"]) for i in under.json()["items"]] == [
        (str(catalog.verify.id), "verify", None)]
    none = client.get(f"{PREFIX}/runs", headers=ADMIN, params={"parent": str(catalog.failed.id)})
    assert none.json() == {"items": [], "next_cursor": None}
    bad = client.get(f"{PREFIX}/runs", headers=ADMIN, params={"parent": "nope"})
    assert bad.status_code == 422
    assert "parent" in bad.json()["detail"]


def test_answers_are_gzip_compressed_when_accepted(client: Any, module_catalog: Catalog) -> None:
    plain = _raw(client, "/runs?limit=200", None)
    zipped = _raw(client, "/runs?limit=200", "gzip")
    assert plain.status_code == zipped.status_code == 200
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert json.loads(gzip.decompress(zipped.raw)) == json.loads(plain.raw)
    assert len(zipped.raw) < len(plain.raw)
    # The page's files too; a small answer (under 500 bytes) is left as it is.
    page = _raw(client, f"/ui/{assets().versioned('app.js')}", "gzip")
    assert page.headers["content-encoding"] == "gzip"
    assert gzip.decompress(page.raw) == assets().bodies["app.js"]
    small = _raw(client, "/runs?limit=1&kind=nothing", "gzip")
    assert json.loads(small.raw) == {"items": [], "next_cursor": None}
    assert "content-encoding" not in small.headers
    # A download is the dump as stored, byte for byte, with its length: never re-encoded.
    download = _raw(client, f"/runs/{module_catalog.backup.id}/download", "gzip")
    assert download.status_code == 200
    assert "content-encoding" not in download.headers
    artifact = module_catalog.backup_dir / "postgres" / module_catalog.backup.details["artifact"]
    assert download.raw == artifact.read_bytes()
    assert download.headers["content-length"] == str(artifact.stat().st_size)


def test_static_files_have_versioned_names_cached_as_immutable(client: Any) -> None:
    found = assets()
    html = client.get(f"{PREFIX}/ui")
    assert html.headers["cache-control"] == "no-store"
    names = re.findall(r'(?:src|href)="ui/([^"]+)"', html.text)
    assert names[:2] == [f"app.{found.version}.css", f"app.{found.version}.js"]
    # The other modules are preloaded (all at once, not level by level as imports are read), by versioned names too.
    modules = sorted(name for name in found.bodies if name.endswith(".js") and name != "app.js")
    assert names[2:] == [found.versioned(name) for name in modules]
    app_js = client.get(f"{PREFIX}/ui/app.{found.version}.js")
    assert app_js.status_code == 200
    assert app_js.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert app_js.headers["content-type"] == "text/javascript; charset=utf-8"
    # Its imports name the versioned files too, so a cached app.js never loads another version's modules.
    imports = re.findall(r'from "\./([^"]+)"', app_js.text)
    assert imports
    assert all(re.fullmatch(rf"[a-z]+\.{found.version}\.js", name) for name in imports), imports
    for name in imports:
        module = client.get(f"{PREFIX}/ui/{name}")
        assert (module.status_code, module.headers["cache-control"]) == (200, IMMUTABLE), name
    # The plain name still answers (not cached); another version's name and unknown files do not.
    plain = client.get(f"{PREFIX}/ui/app.js")
    assert (plain.status_code, plain.headers["cache-control"]) == (200, "no-cache")
    assert plain.content == app_js.content
    assert client.get(f"{PREFIX}/ui/app.0123456789ab.js").status_code == 404
    assert client.get(f"{PREFIX}/ui/secret.{found.version}.js").status_code == 404
    assert client.get(f"{PREFIX}/ui/index.html").status_code == 404
