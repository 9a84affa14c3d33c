"""A browser tab on the admin page for the page tests: every request and page error recorded, a screenshot kept
when the test failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request

from openwatch_backup.devstack.stack import EmbeddedStack

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
LOOPBACK = "127.0.0.1"


def api_client(stack: EmbeddedStack) -> httpx.Client:
    """The stack's backup API, with its token."""
    return httpx.Client(base_url=stack.url.removesuffix("ui"), timeout=30,
                        headers={"Authorization": f"Bearer {stack.token}"})


# Every text the notice and the end-message region ever held, recorded in the page as they change: "Backup queued"
# may be up for less time than an expect() poll takes (a 5 MiB backup ends within a second).
_RECORD_TEXTS = """() => {
  window.seen = { result: [], notice: [] };
  for (const [id, key] of [["live-result", "result"], ["notice", "notice"]]) {
    const node = document.getElementById(id);
    new MutationObserver(() => { if (node.textContent) window.seen[key].push(node.textContent); })
      .observe(node, { childList: true, characterData: true, subtree: true });
  }
}"""


@dataclass
class Session:
    """A browser page on the admin page, with every request and console problem it saw."""

    page: Page
    stack: EmbeddedStack
    requests: list[Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def api(self) -> httpx.Client:
        return api_client(self.stack)

    def use_token(self, value: str | None = None) -> None:
        self.page.get_by_label("API token").fill(self.stack.token if value is None else value)
        self.page.get_by_role("button", name="Use token").click()

    def record_texts(self) -> None:
        """From now on keep every text of the notice and the end message (seen_texts() gives them)."""
        self.page.evaluate(_RECORD_TEXTS)

    def seen_texts(self) -> dict[str, list[str]]:
        return dict(self.page.evaluate("window.seen"))

    def row(self, run_id: str) -> Any:
        return self.page.locator(f'#runs tr[data-run-id="{run_id}"]')

    def cell(self, run_id: str, column: int) -> Any:
        return self.row(run_id).locator("td").nth(column)

    def check_requests(self) -> None:
        """Nothing left the loopback address, the token never went into an address, the CSP blocked nothing."""
        assert self.requests, "the page made no requests at all"
        for request in self.requests:
            url = urlsplit(request.url)
            if url.scheme in ("data", "blob"):
                continue
            assert url.scheme == "http", f"a request left the loopback: {request.url}"
            assert url.hostname == LOOPBACK, f"a request left the loopback: {request.url}"
            assert self.stack.token not in request.url, f"the token is in an address: {request.method} {url.path}"
        assert not self.problems, f"the page had errors: {self.problems}"


@dataclass
class RecordedPage:
    """A browser page and what it did: its requests, every console line, and its problems (uncaught errors, what
    the CSP blocked)."""

    page: Page
    requests: list[Request] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@contextmanager
def recorded_page(request: pytest.FixtureRequest, browser: Browser, *, name: str, width: int,
                  **context_options: Any) -> Iterator[RecordedPage]:
    """A new context `width` px wide (context_options: timezone_id, bypass_csp, ...) with one page, nothing loaded;
    on a failed test a full-page screenshot at tests/artifacts/<name>-<test id>.png."""
    context = browser.new_context(viewport={"width": width, "height": 900}, **context_options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    recorded = RecordedPage(page)
    failures = request.session.testsfailed
    page.on("request", lambda r: recorded.requests.append(r))
    page.on("pageerror", lambda error: recorded.problems.append(f"uncaught: {error}"))
    page.on("console", lambda message: recorded.console.append(message.text))
    page.on("console", lambda message: recorded.problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text else None)
    try:
        yield recorded
    finally:
        if request.session.testsfailed > failures:  # the call's report is in before teardown: kept on failure
            ARTIFACTS.mkdir(exist_ok=True)
            test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
            page.screenshot(path=str(ARTIFACTS / f"{name}-{test}.png"), full_page=True)
        context.close()


@contextmanager
def page_session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack, *, name: str,
                 width: int, **context_options: Any) -> Iterator[Session]:
    """The stack's admin page loaded in a recorded_page()."""
    with recorded_page(request, browser, name=name, width=width, **context_options) as recorded:
        recorded.page.goto(stack.url)
        yield Session(recorded.page, stack, recorded.requests, recorded.problems)


def width_sessions(name: str, widths: list[int]) -> tuple[Any, Any]:
    """A page module's two fixtures, each once per width: `session`, and `axe_session`, whose browser context
    bypasses the page's CSP (script-src 'self' would refuse axe's injected script). Bind them to those names:
    `session, axe_session = width_sessions("a11y", WIDTHS)`."""

    def _open(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack, *,
              bypass_csp: bool = False) -> Iterator[Session]:
        with page_session(request, browser, stack, name=name, width=request.param, bypass_csp=bypass_csp) as opened:
            yield opened

    @pytest.fixture(params=widths, ids=[f"{width}px" for width in widths])
    def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack) -> Iterator[Session]:
        yield from _open(request, browser, stack)

    @pytest.fixture(params=widths, ids=[f"{width}px" for width in widths])
    def axe_session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack) -> Iterator[Session]:
        yield from _open(request, browser, stack, bypass_csp=True)

    return session, axe_session
