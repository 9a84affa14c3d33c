"""Path tricks: run ids and page names that try to climb out of the API, and forged artifact names in the
catalog, never reach a file outside the backup directory.

Requests go to a real uvicorn on loopback through http.client, which sends the request target verbatim (httpx
would normalise `..` segments away before they reach the server).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    LoopbackServer,
    Services,
    Submitted,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    make_catalog,
    module_catalog_fixture,
    openwatch_auth,
)

ADMIN = bearer("super_admin")
CANARY = b"TOP-SECRET-CANARY-outside-the-backup-dir"
ZERO = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def outside_file(module_catalog: Catalog) -> Path:
    """A file beside the backup directory (not in it) that no request may read."""
    path = module_catalog.backup_dir.parent / "secret.txt"
    path.write_bytes(CANARY)
    return path


@pytest.fixture(scope="module")
def server(module_catalog: Catalog, outside_file: Path) -> Iterator[tuple[LoopbackServer, AuditLog]]:
    audit = AuditLog()
    services = Services(module_catalog.url, module_catalog.backup_dir)
    with LoopbackServer(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as running:
        yield running, audit
    services.close()


def _never_leaks(body: bytes) -> None:
    assert CANARY not in body
    assert b"root:" not in body
    assert b"PRIVATE KEY" not in body


RUN_ID_TRICKS = [
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252fetc%252fpasswd",
    "..%5c..%5cetc%5cpasswd",
    f"{ZERO}/../x",
    f"{ZERO}/..%2f..%2fsecret.txt",
    f"{ZERO}%2f..%2f..%2fsecret.txt",
    "..",
    "%2e%2e",
    "%00",
    f"{ZERO}%00",
]
SUFFIXES = ["", "/download", "/log"]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("trick", RUN_ID_TRICKS)
def test_run_id_tricks(server: tuple[LoopbackServer, AuditLog], trick: str, suffix: str) -> None:
    running, audit = server
    status, headers, body = running.raw_get(f"{PREFIX}/runs/{trick}{suffix}", ADMIN)
    assert status in (404, 422), (status, body[:300])
    assert headers["content-type"] == "application/json"
    _never_leaks(body)
    assert audit.calls == []


@pytest.mark.parametrize("tail", ["/../../../../etc/passwd", "/..%2f..%2f..%2f..%2fetc%2fpasswd",
                                  "%2f..%2f..%2f..%2fsecret.txt"])
def test_download_of_a_real_run_with_a_tail(server: tuple[LoopbackServer, AuditLog], module_catalog: Catalog,
                                            tail: str) -> None:
    running, audit = server
    status, _, body = running.raw_get(f"{PREFIX}/runs/{module_catalog.backup.id}/download{tail}", ADMIN)
    assert status in (404, 422), (status, body[:300])
    _never_leaks(body)
    assert audit.calls == []


def test_the_real_download_still_works(server: tuple[LoopbackServer, AuditLog], module_catalog: Catalog) -> None:
    running, audit = server
    status, headers, body = running.raw_get(f"{PREFIX}/runs/{module_catalog.backup.id}/download", ADMIN)
    assert status == 200
    artifact = module_catalog.backup.details["artifact"]
    assert body == (module_catalog.backup_dir / "postgres" / artifact).read_bytes()
    assert headers["content-disposition"] == f'attachment; filename="{artifact}"'
    assert [c.action for c in audit.calls] == ["BACKUP_DOWNLOAD"]
    audit.clear()


@pytest.mark.parametrize("name", ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                                  "index.html", "..", "%2e%2e", "APP.JS", "app.js%00", "app.js%2f..%2findex.html",
                                  "..%2fapi%2f__init__.py", "..%2fpage.py", "%2e%2e%2fpage.py", "static%2fapp.js"])
def test_page_tricks(server: tuple[LoopbackServer, AuditLog], name: str) -> None:
    running, _ = server
    status, _, body = running.raw_get(f"{PREFIX}/ui/{name}")
    assert status == 404, (status, body[:300])
    _never_leaks(body)
    assert b"import" not in body  # no Python source either


def test_page_allow_list(server: tuple[LoopbackServer, AuditLog]) -> None:
    """The page is public (it holds no data; it calls the API with a token): the page and its allow-listed
    files, nothing else (index.html only as /ui)."""
    from openwatch_backup.api.page import _TYPES

    running, _ = server
    assert "index.html" not in _TYPES
    assert all("/" not in name and ".." not in name for name in _TYPES)
    for path, kind in [("/ui", "text/html"), *((f"/ui/{name}", _TYPES[name].split(";")[0]) for name in _TYPES)]:
        status, headers, body = running.raw_get(PREFIX + path)
        assert status == 200, path
        assert headers["content-type"].startswith(kind)
        assert "default-src 'none'" in headers["content-security-policy"]
        assert body


# --- forged artifact names in the catalog -----------------------------------------------------------------------
def _forge(catalog: Catalog, value: str) -> None:
    catalog.execute("UPDATE backup_runs SET details = jsonb_set(details, '{artifact}', to_jsonb(%s::text)) "
                    "WHERE id = %s", (value, catalog.backup.id))


@pytest.fixture(scope="module")
def forged_module(pg, openwatch_template: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[object, Catalog, AuditLog]]:
    backup_dir = tmp_path_factory.mktemp("forged") / "backups"
    backup_dir.mkdir()
    (backup_dir.parent / "secret.txt").write_bytes(CANARY)
    audit = AuditLog()
    with make_catalog(pg, openwatch_template, backup_dir, "apiforge") as catalog:
        services = Services(catalog.url, catalog.backup_dir)
        with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client:
            yield client, catalog, audit
        services.close()


@pytest.fixture
def forged_app(forged_module: tuple[object, Catalog, AuditLog]) -> Iterator[tuple[object, Catalog, AuditLog]]:
    """The module's forging catalog; the backup's real artifact name is put back after each test."""
    _, catalog, audit = forged_module
    audit.clear()
    yield forged_module
    _forge(catalog, catalog.backup.details["artifact"])


FORGED = ["../../etc/passwd", "../../../../../../../../etc/passwd", "../secret.txt", "x/../../secret.txt",
          "/etc/passwd", "..", ".", "", ".manifest.json", "../postgres/../../secret.txt", "/../secret.txt",
          "./../secret.txt", "..\\..\\secret.txt"]


@pytest.mark.parametrize("forged", FORGED)
def test_forged_artifact_is_never_served(forged_app: tuple[object, Catalog, AuditLog], forged: str) -> None:
    client, catalog, audit = forged_app
    _forge(catalog, forged)
    response = client.get(f"{PREFIX}/runs/{catalog.backup.id}/download", headers=ADMIN)  # type: ignore[attr-defined]
    assert response.status_code != 200, response.headers
    _never_leaks(response.content)
    assert audit.calls == []


@pytest.mark.parametrize("forged", FORGED)
def test_forged_artifact_is_refused_with_404(forged_app: tuple[object, Catalog, AuditLog], forged: str) -> None:
    client, catalog, _ = forged_app
    _forge(catalog, forged)
    response = client.get(f"{PREFIX}/runs/{catalog.backup.id}/download", headers=ADMIN)  # type: ignore[attr-defined]
    assert response.status_code in (404, 422), f"{response.status_code} {response.text[:200]}"


def test_symlink_in_the_backup_dir_is_not_followed(forged_app: tuple[object, Catalog, AuditLog]) -> None:
    client, catalog, _ = forged_app
    link = catalog.backup_dir / "postgres" / f"openwatch_{uuid.uuid4().hex[:8]}.dump"
    link.symlink_to(catalog.backup_dir.parent / "secret.txt")
    _forge(catalog, link.name)
    response = client.get(f"{PREFIX}/runs/{catalog.backup.id}/download", headers=ADMIN)  # type: ignore[attr-defined]
    _never_leaks(response.content)
    assert response.status_code == 404
