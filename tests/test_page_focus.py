"""Keyboard focus survives the polling redraw (issue 14): in Debian's Chromium against the embedded stack, at 1366
and 390 px, a keyboard user on a row's control (the backups view's Details link, the activity log's Verify button,
the Details link of a running run, whose row is redrawn on every poll) is still on the same control after two
polls. The polls are forced by clicking Refresh from script (a click from script leaves focus where it is).
A failing test keeps a screenshot at tests/artifacts/focus-page-<test>.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, expect

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.devstack.stack import EmbeddedStack
from tests import test_admin_page as base
from tests.support.page_session import page_session
from tests.support.page_stack import page_stack, service_of
from tests.test_admin_page import Session

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]


@dataclass
class Runs:
    backup: BackupRun  # a succeeded full backup: Verify in the activity log, Details in the backups view
    running: str  # a run claimed and never finished: its row is redrawn each poll, and the page polls every 2 s


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with page_stack(tmp_path_factory.mktemp("focus-page") / "var", redis_db=3, beat=False) as embedded:
        yield embedded


@pytest.fixture(scope="module")
def runs(stack: EmbeddedStack) -> Runs:
    with service_of(stack) as service:
        backup = service.backup(service.build_request(), requested_by="test")
        running = service.recorder.create("plain", "cli", "test", details={"request": {"kind": "plain"}})
        assert service.recorder.claim(running)
        assert backup.status == "succeeded"
        return Runs(backup, str(running))


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack) -> Iterator[Session]:
    with page_session(request, browser, stack, name="focus-page", width=request.param) as opened:
        yield opened


def _short(run_id: str) -> str:
    return run_id[:8]


def _two_polls(session: Session) -> None:
    """Two GET runs answered and drawn, each started by Refresh clicked from script (focus stays put), each in a
    later second than the last draw (a running row's redraw is keyed to the second)."""
    for _ in range(2):
        session.page.wait_for_timeout(1100)
        with session.page.expect_response(lambda r: r.request.method == "GET"
                                          and r.url.split("?")[0].endswith("/runs")):
            session.page.evaluate("() => document.getElementById('refresh').click()")
        session.page.wait_for_timeout(300)  # the answer drawn


def _focused_label(session: Session) -> str | None:
    return session.page.evaluate("() => document.activeElement && document.activeElement.getAttribute('aria-label')")


@pytest.mark.parametrize("where", ["backups-details", "runs-verify", "running-details"])
def test_focus_stays_on_the_same_control_across_polls(session: Session, runs: Runs, where: str) -> None:
    page = session.page
    session.use_token()
    backup_id = str(runs.backup.id)
    control, redrawn = {
        "backups-details": (page.locator(f'#backups tr[data-run-id="{backup_id}"] th a.run-link'), True),
        "runs-verify": (page.locator(f'#runs tr[data-run-id="{backup_id}"]').get_by_role(
            "button", name=f"Verify full run {_short(backup_id)}", exact=True), False),
        "running-details": (page.locator(f'#runs tr[data-run-id="{runs.running}"] a.run-link'), True),
    }[where]
    expect(control).to_be_visible()
    label = control.get_attribute("aria-label")
    assert label
    control.focus()
    page.evaluate("() => { window.focusedBefore = document.activeElement; }")
    assert _focused_label(session) == label
    _two_polls(session)
    assert _focused_label(session) == label
    same_node = page.evaluate("() => window.focusedBefore === document.activeElement")
    # The backups view and a running row are drawn anew each poll: focus moved to the redrawn twin. The activity
    # log's buttons are kept while the run's status stays: focus never left them.
    assert same_node is not redrawn
    expect(control).to_be_focused()
    session.check_requests()
