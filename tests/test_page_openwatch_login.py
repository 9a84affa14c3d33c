"""Issue 14 item 0: inside OpenWatch the admin page uses the admin's own OpenWatch login, standalone a pasted token.

Inside OpenWatch the page is served under /api/..., on the React app's origin, so it reads the login that
OpenWatch's frontend keeps in localStorage (`auth_token`, `refresh_token`, `auth_user`, `session_expiry`) and
renews it through `POST /api/auth/refresh` on a 401, as OpenWatch's tokenService.ts does. Here, in Debian's
Chromium at 1366 and 390 px, against a uvicorn on loopback serving:
- the backup router on OpenWatchAuth with tests/api_support.py's OpenWatch stand-ins (HS256 JWTs shaped like
  OpenWatch's access tokens, its RBAC), on a catalog with a backup, a verify, a failed backup and a queued run
  (so the page polls every 2 s);
- the same router on TokenAuth under /standalone/backups (the standalone mode);
- stand-ins for OpenWatch's `POST /api/auth/refresh` and `/login`: OpenWatch's real backend cannot run in the
  tests, so these answer with the shapes its frontend reads (tokenService.ts, authSlice.ts).
A failing test keeps a screenshot at tests/artifacts/openwatch-login-<test>.png.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Request as BrowserRequest

from openwatch_backup.api import TokenAuth, backups_router
from tests import test_admin_page as base
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    LoopbackServer,
    Services,
    Submitted,
    make_token,
    module_catalog_fixture,
    openwatch_auth,
)
from tests.support.page_session import LOOPBACK, recorded_page

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]
STANDALONE = "/standalone/backups"
STANDALONE_TOKEN = "standalone-secret-token"
REFRESH_TOKEN = "refresh-token-of-admin"
ACCESS_SECONDS = 1800  # OpenWatch's access tokens live 30 minutes
ENDED = "Your OpenWatch session has ended: log in to OpenWatch again"


@dataclass
class OpenWatchLogin:
    """A stand-in for OpenWatch's `POST /api/auth/refresh` (OpenWatch's real backend cannot run in the tests):
    `{"refresh_token"}` in, `{"access_token", "token_type", "expires_in"}` out for a refresh token it issued,
    401 otherwise. It answers after `delay` seconds, so requests that fail together really overlap it."""

    valid: set[str] = field(default_factory=lambda: {REFRESH_TOKEN})
    calls: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    delay: float = 0.4

    def reset(self) -> None:
        self.calls.clear()
        self.issued.clear()


def build_app(catalog: Catalog, login: OpenWatchLogin, services: Services) -> FastAPI:
    app = FastAPI(title="OpenWatch (test)")
    app.include_router(backups_router(auth=openwatch_auth(AuditLog()), submit=Submitted(), service_factory=services),
                       prefix=PREFIX)
    app.include_router(backups_router(auth=TokenAuth(STANDALONE_TOKEN), submit=Submitted(),
                                      service_factory=services), prefix=STANDALONE)

    @app.post("/api/auth/refresh")
    async def refresh(request: Request) -> JSONResponse:  # stand-in for OpenWatch's endpoint, see OpenWatchLogin
        body = await request.json()
        given = body.get("refresh_token") if isinstance(body, dict) else None
        login.calls.append(str(given))
        await asyncio.sleep(login.delay)
        if given not in login.valid:
            return JSONResponse({"detail": "Invalid refresh token"}, status_code=401)
        access = make_token("super_admin", username="admin", expires_in=ACCESS_SECONDS)
        login.issued.append(access)
        return JSONResponse({"access_token": access, "token_type": "bearer", "expires_in": ACCESS_SECONDS})

    @app.get("/login")
    def login_page() -> HTMLResponse:  # stand-in for OpenWatch's React /login route
        return HTMLResponse("<!doctype html><title>Login</title><h1>OpenWatch login (stand-in)</h1>")

    return app


@dataclass
class Served:
    origin: str
    catalog: Catalog
    login: OpenWatchLogin
    queued_id: str


@pytest.fixture(scope="module")
def served(module_catalog: Catalog) -> Iterator[Served]:
    # A queued run the stand-in submit never starts: the page polls every 2 s while it is there, so "polling
    # stops" below is measured against a page that would otherwise ask again within seconds.
    queued = module_catalog.service.recorder.create("full", "api", "test", details={"request": {"kind": "full"}})
    login = OpenWatchLogin()
    services = Services(module_catalog.url, module_catalog.backup_dir)
    try:
        with LoopbackServer(build_app(module_catalog, login, services)) as server:
            yield Served(f"http://{LOOPBACK}:{server.port}", module_catalog, login, str(queued))
    finally:
        services.close()


@dataclass
class Browsing:
    page: Page
    served: Served
    requests: list[BrowserRequest] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def open(self, path: str, storage: dict[str, str]) -> None:
        """OpenWatch's login in localStorage (written from the origin's /login page, as the React app does),
        then the admin page."""
        self.page.goto(self.served.origin + "/login")
        self.page.evaluate("(items) => { localStorage.clear(); sessionStorage.clear(); "
                           "for (const [k, v] of Object.entries(items)) localStorage.setItem(k, v); }", storage)
        self.requests.clear()
        self.page.goto(self.served.origin + path)

    def api_requests(self) -> list[BrowserRequest]:
        return [r for r in self.requests if "/ui" not in urlsplit(r.url).path and urlsplit(r.url).path.startswith(
            (PREFIX, STANDALONE))]

    def storage(self, key: str) -> Any:
        return self.page.evaluate("(key) => localStorage.getItem(key)", key)

    def backup_row(self) -> Any:
        return self.page.locator(f'#runs tr[data-run-id="{self.served.catalog.backup.id}"]')

    def check(self, *secrets: str) -> None:
        """No token in an address or on the console, nothing blocked by the CSP, nothing uncaught."""
        for request in self.requests:
            for secret in secrets:
                assert secret not in request.url, f"a token is in an address: {request.method} {request.url[:80]}"
        for line in self.console:
            for secret in secrets:
                assert secret not in line, "a token is on the console"
        assert not self.problems, self.problems


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def browsing(request: pytest.FixtureRequest, browser: Browser, served: Served) -> Iterator[Browsing]:
    with recorded_page(request, browser, name="openwatch-login", width=request.param) as recorded:
        served.login.reset()
        yield Browsing(recorded.page, served, recorded.requests, recorded.console, recorded.problems)


def openwatch_login(access: str, refresh: str = REFRESH_TOKEN) -> dict[str, str]:
    """What OpenWatch's authSlice writes at login."""
    return {"auth_token": access, "refresh_token": refresh,
            "auth_user": json.dumps({"id": "1", "username": "admin", "email": "admin@example.test",
                                     "role": "super_admin", "mfaEnabled": False}),
            "session_expiry": str(int(time.time() * 1000) + ACCESS_SECONDS * 1000)}


def _bearer(request: BrowserRequest) -> str | None:
    return request.headers.get("authorization")


# --- inside OpenWatch ---------------------------------------------------------------------------------------

def test_the_openwatch_login_loads_the_page_with_no_token_form(browsing: Browsing) -> None:
    access = make_token("super_admin", username="admin", expires_in=ACCESS_SECONDS)
    browsing.open(f"{PREFIX}/ui", openwatch_login(access))
    page = browsing.page
    expect(page.locator("html")).to_have_attribute("data-auth", "openwatch")
    expect(browsing.backup_row()).to_be_visible()
    expect(page.locator(f'#runs tr[data-run-id="{browsing.served.queued_id}"]')).to_be_visible()
    expect(page.get_by_label("API token")).to_be_hidden()
    expect(page.locator("#token-form")).to_be_hidden()
    expect(page.get_by_role("button", name="Use token")).to_be_hidden()
    expect(page.locator("#token-source")).to_be_hidden()
    expect(page.locator("#access-state")).to_have_text("Signed in with your OpenWatch login (admin).")
    expect(page.get_by_role("alert")).not_to_contain_text(re.compile("OpenWatch|session|token", re.I))
    expect(page.get_by_label("Backup cron")).not_to_have_value("")  # GET settings answered
    sent = browsing.api_requests()
    assert {urlsplit(r.url).path.removeprefix(PREFIX) for r in sent} >= {"/runs", "/status", "/settings", "/config"}
    assert all(_bearer(r) == f"Bearer {access}" for r in sent), {_bearer(r) for r in sent}
    assert browsing.served.login.calls == []  # a valid access token needs no refresh
    assert browsing.storage("auth_token") == access
    # The admin never handles an API token in here: no word of one, once loaded nor in the cards' first words
    # (the served HTML, painted before any script ran).
    expect(page.locator("#offsite-state")).not_to_have_text("Loading...")
    expect(page.locator("#config-state")).not_to_have_text("Loading...")
    assert "api token" not in page.locator("body").inner_text().lower()
    served = page.request.get(browsing.served.origin + f"{PREFIX}/ui").text()
    for card in ("offsite-state", "config-state"):
        first = re.search(rf'<p id="{card}"[^>]*>([^<]*)</p>', served)
        assert first is not None, card
        assert first.group(1) == "Loading...", card
    browsing.check(access, REFRESH_TOKEN)


def test_an_expired_access_token_is_refreshed_once_for_parallel_requests(browsing: Browsing) -> None:
    expired = make_token("super_admin", username="admin", expires_in=-60)
    browsing.open(f"{PREFIX}/ui", {**openwatch_login(expired), "session_expiry": str(int(time.time() * 1000))})
    page, login = browsing.page, browsing.served.login
    expect(browsing.backup_row()).to_be_visible()
    expect(page.get_by_label("Backup cron")).not_to_have_value("")
    expect(page.get_by_role("alert")).not_to_contain_text(re.compile("OpenWatch|session|token", re.I))
    # The page's first requests (settings, status, runs, config) went out together with the expired token, each
    # got a 401, and they shared one refresh.
    stale = [r for r in browsing.api_requests() if _bearer(r) == f"Bearer {expired}"]
    assert len(stale) >= 3, [urlsplit(r.url).path for r in stale]
    page.wait_for_timeout(2500)  # a poll more: still one refresh
    assert login.calls == [REFRESH_TOKEN], login.calls
    assert len(login.issued) == 1
    fresh = login.issued[0]
    assert browsing.storage("auth_token") == fresh
    expiry = int(browsing.storage("session_expiry"))
    assert abs(expiry - (time.time() + ACCESS_SECONDS) * 1000) < 60_000, expiry  # as OpenWatch's authSlice
    assert browsing.storage("refresh_token") == REFRESH_TOKEN
    # Every request that was not one of the stale ones carried the new token: each stale one retried once.
    later = [r for r in browsing.api_requests() if _bearer(r) != f"Bearer {expired}"]
    assert later
    assert all(_bearer(r) == f"Bearer {fresh}" for r in later), {_bearer(r) for r in later}
    for request in stale:
        path = urlsplit(request.url).path
        assert any(urlsplit(r.url).path == path for r in later), f"{path} was not retried"
    browsing.check(expired, fresh, REFRESH_TOKEN)


def test_a_failed_refresh_says_so_links_to_login_and_stops_polling(browsing: Browsing) -> None:
    access = make_token("super_admin", username="admin", expires_in=ACCESS_SECONDS)
    browsing.open(f"{PREFIX}/ui", openwatch_login(access))
    page, login = browsing.page, browsing.served.login
    expect(browsing.backup_row()).to_be_visible()
    # The premise: with a run queued, the page asks for the runs again within a few seconds.
    asked = len([r for r in browsing.api_requests() if urlsplit(r.url).path.endswith("/runs")])
    expect(page.locator("#live-text")).to_contain_text("queued")
    page.wait_for_timeout(4500)
    assert len([r for r in browsing.api_requests() if urlsplit(r.url).path.endswith("/runs")]) > asked

    # The access token expires and OpenWatch refuses the refresh token (revoked, or expired too).
    expired = make_token("super_admin", username="admin", expires_in=-60)
    page.evaluate("(t) => { localStorage.setItem('auth_token', t); localStorage.setItem('refresh_token', 'revoked'); }",
                  expired)
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(ENDED, timeout=10_000)
    link = alert.get_by_role("link", name="log in to OpenWatch again")
    expect(link).to_have_attribute("href", "/login")
    expect(page.locator("#access-state")).to_have_text("Not signed in: your OpenWatch session has ended.")
    expect(page.get_by_label("API token")).to_be_hidden()  # still nothing to paste inside OpenWatch
    assert login.calls == ["revoked"], login.calls
    # Like OpenWatch's own logout after a refused refresh: its stored login is cleared.
    assert [browsing.storage(k) for k in ("auth_token", "refresh_token", "auth_user", "session_expiry")] == [None] * 4

    # Polling stopped: no API request for 5 s (it polled every 2 s before), and "Refresh" sends nothing either.
    page.wait_for_timeout(300)
    before = len(browsing.api_requests())
    page.wait_for_timeout(5000)
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_timeout(500)
    assert len(browsing.api_requests()) == before, [r.url for r in browsing.api_requests()[before:]]
    assert login.calls == ["revoked"]
    expect(alert).to_have_text(ENDED)

    # A login in another tab of the same browser (OpenWatch's /login writes auth_token) picks the page up again.
    other = page.context.new_page()
    other.goto(browsing.served.origin + "/login")
    again = make_token("super_admin", username="admin", expires_in=ACCESS_SECONDS)
    other.evaluate("(items) => { for (const [k, v] of Object.entries(items)) localStorage.setItem(k, v); }",
                   openwatch_login(again))
    expect(alert).not_to_contain_text("session")
    expect(page.locator("#access-state")).to_have_text("Signed in with your OpenWatch login (admin).")
    expect(page.get_by_label("Backup cron")).not_to_have_value("")
    resumed = browsing.api_requests()[before:]
    assert resumed
    assert all(_bearer(r) == f"Bearer {again}" for r in resumed)
    other.close()

    # The link takes the admin to OpenWatch's login page.
    link_page = page
    page.evaluate("() => { localStorage.setItem('auth_token', 'x.y.z'); localStorage.removeItem('refresh_token'); }")
    page.get_by_role("button", name="Refresh").click()
    expect(alert).to_have_text(ENDED)
    link_page.get_by_role("link", name="log in to OpenWatch again").click()
    expect(page).to_have_url(browsing.served.origin + "/login")
    expect(page.get_by_role("heading")).to_have_text("OpenWatch login (stand-in)")
    browsing.check(access, expired, again, REFRESH_TOKEN)


def test_an_openwatch_user_without_the_permission_is_told_so(browsing: Browsing) -> None:
    auditor = make_token("auditor", username="audrey", expires_in=ACCESS_SECONDS)
    browsing.open(f"{PREFIX}/ui", openwatch_login(auditor))
    page = browsing.page
    expect(page.get_by_role("alert")).to_have_text(
        "Your OpenWatch login may not manage backups (Permission system:maintenance required): it needs the "
        "system:maintenance permission.")
    expect(page.locator("#access-state")).to_have_text(
        "Signed in to OpenWatch, without the permission to manage backups.")
    before = len(browsing.api_requests())
    page.wait_for_timeout(3000)
    assert len(browsing.api_requests()) == before  # stopped: it would only be refused again
    assert browsing.served.login.calls == []  # a 403 is not an expired login: no refresh
    assert browsing.storage("auth_token") == auditor  # and OpenWatch's login is left alone
    browsing.check(auditor, REFRESH_TOKEN)


# --- standalone -------------------------------------------------------------------------------------------------

def test_the_standalone_page_asks_for_the_token_and_says_where_it_comes_from(browsing: Browsing) -> None:
    # An OpenWatch login in the same origin's localStorage is not the standalone API's token: it is not used.
    openwatch_access = make_token("super_admin", username="admin", expires_in=ACCESS_SECONDS)
    browsing.open(f"{STANDALONE}/ui", openwatch_login(openwatch_access))
    page = browsing.page
    expect(page.locator("html")).to_have_attribute("data-auth", "token")
    expect(page.get_by_label("API token")).to_be_focused()
    expect(page.locator("#token-source")).to_have_text(
        "The token is the value of OPENWATCH_BACKUP_API_TOKEN in the backup API's environment "
        "(openwatch-backup demo prints the demo's).")
    expect(page.locator("#token-source")).to_be_in_viewport()
    expect(page.locator("#access-state")).to_be_hidden()
    # Standalone, the cards' first words ask for the token (set from common.js over the served "Loading...").
    expect(page.locator("#offsite-state")).to_have_text("Enter the API token to see where off-site copies go.")
    expect(page.locator("#config-state")).to_have_text("Enter the API token to see the configuration bundles.")
    page.wait_for_timeout(500)
    assert browsing.api_requests() == []  # nothing is sent before a token is entered

    page.get_by_label("API token").fill(STANDALONE_TOKEN)
    page.get_by_role("button", name="Use token").click()
    expect(browsing.backup_row()).to_be_visible()
    expect(page.locator("#token-state")).to_have_text("Token in use for this browser tab.")
    sent = browsing.api_requests()
    assert sent
    assert all(_bearer(r) == f"Bearer {STANDALONE_TOKEN}" for r in sent), {_bearer(r) for r in sent}
    assert all(urlsplit(r.url).path.startswith(STANDALONE) for r in sent)
    assert browsing.served.login.calls == []
    assert browsing.storage("auth_token") == openwatch_access  # left as it was
    browsing.check(STANDALONE_TOKEN, openwatch_access)
