"""The guarded restore on the admin page (issue 14 item 5), in Debian's Chromium against the embedded stack, at
1366 px and at 390 px: turning "allow restore" on asks first (Cancel leaves it off); the Restore button appears
only once it is saved on, and only on backups that can be restored; the wizard's checks, then a restore into a
new database followed to its result, the restored database compared with the live one in PostgreSQL; "replace"
keeps its button disabled until the live database's name is typed (never clicked: the stack's database stays).
A failing test keeps a screenshot at tests/artifacts/restore-page-<test>-<width>.png.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.devstack import drop_database
from openwatch_backup.devstack.stack import EmbeddedStack
from openwatch_backup.source.facts import row_counts
from tests import test_admin_page as base
from tests.support.page_session import width_sessions
from tests.support.page_stack import page_stack, service_of
from tests.support.restore_helpers import flip_byte
from tests.test_admin_page import Session
from tests.test_page_a11y import AXE

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]
CHECKS = ["allowed", "restorable", "verified", "file", "compatible", "target", "idle"]


@dataclass
class Backups:
    good: BackupRun  # a full backup, quick verified
    damaged: BackupRun  # its file damaged after the backup: its last verify failed
    failed: BackupRun


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with page_stack(tmp_path_factory.mktemp("restore-page") / "var", redis_db=5, beat=False) as embedded:
        yield embedded


@pytest.fixture(scope="module")
def backups(stack: EmbeddedStack) -> Iterator[Backups]:
    with service_of(stack) as service:
        good = service.backup(service.build_request(), requested_by="test")
        verify, _ = service.verify(str(good.id), requested_by="test")
        damaged = service.backup(service.build_request(), requested_by="test")
        path = service.settings.dir / "postgres" / damaged.details["artifact"]
        flip_byte(path)  # the size stays: only the checksum can tell
        bad_verify, _ = service.verify(str(damaged.id), requested_by="test")
        failed_id = service.recorder.create("full", "cli", "test", details={"request": {"kind": "full"}})
        service.recorder.claim(failed_id)
        service.recorder.finish_unsuccessfully(failed_id, RunStatus.FAILED, "dump_failed", "pg_dump exited with 1")
        assert (good.status, verify.status, bad_verify.status) == ("succeeded", "succeeded", "failed")
        yield Backups(good, service.get_run(str(damaged.id)), service.get_run(str(failed_id)))


session, axe_session = width_sessions("restore-page", WIDTHS)


def _allow(session: Session, value: bool) -> None:
    with session.api() as client:
        response = client.put("settings", json={"allow_restore": value})
        assert response.status_code == 200, response.text


def _allowed(session: Session) -> bool:
    with session.api() as client:
        return bool(client.get("settings").json()["allow_restore"])


def _restore_button(session: Session, run: BackupRun) -> Any:
    return session.page.locator(f'#backups tr[data-run-id="{run.id}"]').get_by_role("button", name="Restore")


def _counts(url: str, dbname: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url, dbname=dbname, autocommit=True) as conn:
        return row_counts(conn, tables)


def test_turning_restore_on_asks_first_and_shows_restore_on_restorable_backups(session: Session,
                                                                              backups: Backups) -> None:
    _allow(session, False)
    page = session.page
    session.use_token()
    expect(page.locator(f'#backups tr[data-run-id="{backups.good.id}"]')).to_be_visible()
    expect(page.locator("#backups button.restore-action")).to_have_count(0)  # off: no Restore anywhere
    box = page.get_by_label("Allow restore through the API")
    expect(box).not_to_be_checked()

    box.click()
    dialog = page.get_by_role("dialog", name="Allow restores through the API?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("over the live database, which replaces OpenWatch's data")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(box).not_to_be_checked()
    expect(box).to_be_focused()

    box.click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # Esc is a Cancel too
    expect(dialog).to_be_hidden()
    expect(box).not_to_be_checked()
    assert _allowed(session) is False

    box.click()
    dialog.get_by_role("button", name="Allow restores").click()
    expect(box).to_be_checked()
    expect(page.locator("#backups button.restore-action")).to_have_count(0)  # not saved yet
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#settings-msg")).to_have_text("Saved")
    assert _allowed(session) is True

    expect(_restore_button(session, backups.good)).to_be_visible()
    expect(page.locator("#backups button.restore-action")).to_have_count(1)  # not the damaged or failed one
    expect(_restore_button(session, backups.damaged)).to_have_count(0)
    expect(_restore_button(session, backups.failed)).to_have_count(0)
    _allow(session, False)
    session.check_requests()


def test_details_opened_from_a_link_on_a_fresh_load_get_restore_once_the_setting_arrives(session: Session,
                                                                                         backups: Backups) -> None:
    """A #run=<id> link opens the details before GET settings answers (held here until the dialog is up, so the
    order is certain): the Restore button comes when the setting does."""
    _allow(session, True)
    page = session.page
    session.use_token()  # kept in sessionStorage across the reload
    expect(page.locator(f'#backups tr[data-run-id="{backups.good.id}"]')).to_be_visible()
    held: list[Any] = []
    settings = re.compile(r"/settings(\?.*)?$")
    page.route(settings, lambda route: held.append(route)
               if route.request.method == "GET" else route.continue_())
    page.goto(f"{session.stack.url}#run={backups.good.id}")
    page.reload()
    dialog = page.locator("#run-details")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#details-facts")).to_contain_text(str(backups.good.id))
    expect(dialog.get_by_role("button", name="Restore")).to_have_count(0)  # the setting is not known yet
    assert held, "the page asked for no settings"
    for route in held:
        route.continue_()
    page.unroute(settings)
    expect(dialog.get_by_role("button", name="Restore")).to_be_visible()
    expect(dialog.locator(".details-actions")).to_have_count(1)
    _allow(session, False)
    session.check_requests()


def test_the_wizard_restores_into_a_new_database(session: Session, backups: Backups, stack: EmbeddedStack) -> None:
    _allow(session, True)
    page = session.page
    session.use_token()
    into = f"restored_{uuid.uuid4().hex[:10]}"
    url = stack.env["OPENWATCH_DATABASE_URL"]
    try:
        _restore_button(session, backups.good).click()
        wizard = page.get_by_role("dialog", name=re.compile(r"^Restore full backup"))
        expect(wizard).to_be_visible()
        checks = wizard.locator("#restore-checks li")
        expect(checks).to_have_count(len(CHECKS))
        assert checks.evaluate_all("items => items.map((li) => li.dataset.check)") == CHECKS
        expect(wizard.locator("#restore-checks li.fail")).to_have_count(0)
        expect(wizard.locator('#restore-checks li[data-check="compatible"]')).to_contain_text(
            "Server version compatible")
        expect(wizard.get_by_role("status")).to_have_text("The checks passed. Next, choose where to restore.")

        wizard.get_by_role("button", name="Next").click()
        name = wizard.get_by_label("New database name")
        expect(name).to_have_value(re.compile(r"^openwatch_restore_\d{8}_\d{4}$"))
        expect(wizard.get_by_label("Into a new database (nothing is replaced)")).to_be_checked()
        start = wizard.get_by_role("button", name="Restore into the new database")
        name.fill("1bad-name")
        expect(start).to_be_disabled()
        expect(wizard.locator("#restore-into-msg")).to_have_text(
            "Use letters, digits and _ (up to 63), not starting with a digit.")
        name.fill(into)
        expect(start).to_be_enabled()
        start.click()

        result = wizard.locator("#restore-result")
        expect(result).to_have_text(re.compile(rf"^Restored into database {into} in [0-9.]+ (s|min)"),
                                    timeout=120_000)
        expect(wizard.locator("#restore-progress-text")).to_contain_text("succeeded")
        tables = list(backups.good.details["row_counts"])
        assert tables
        restored = _counts(url, into, tables)
        assert restored == _counts(url, stack.database, tables)
        assert restored == {t: n for t, n in backups.good.details["row_counts"].items() if t in restored}
        wizard.get_by_role("button", name="Close", exact=True).last.click()
        expect(wizard).to_be_hidden()
        # The restore run is folded under its backup in the backups view.
        expect(page.locator(f'#backups tr[data-run-id="{backups.good.id}"] td.folded')).to_contain_text("restore")
        session.check_requests()
    finally:
        drop_database(stack.pg, into)  # type: ignore[arg-type]
        _allow(session, False)


def test_replace_stays_disabled_until_the_live_name_is_typed(session: Session, backups: Backups,
                                                             stack: EmbeddedStack) -> None:
    _allow(session, True)
    page = session.page
    session.use_token()
    expect(_restore_button(session, backups.good)).to_be_visible()
    page.goto(f"{stack.url}#run={backups.good.id}")  # from the run details this time
    details = page.get_by_role("dialog", name=re.compile(r"^full run"))
    expect(details).to_be_visible()
    details.get_by_role("button", name=re.compile(r"^Restore full backup")).click()
    wizard = page.locator("#restore-wizard")
    expect(wizard).to_be_visible()
    expect(wizard.locator("#restore-checks li")).to_have_count(len(CHECKS))
    wizard.get_by_role("button", name="Next").click()
    wizard.get_by_label("Replace the live database").check()
    start = wizard.get_by_role("button", name=f"Replace {stack.database}")
    expect(start).to_be_disabled()
    expect(wizard.get_by_label("Take a safety backup of the live database first")).to_be_checked()
    confirm = wizard.get_by_label(re.compile(r"^Type the live database's name"))
    expect(wizard.locator("#restore-live")).to_have_text(stack.database)
    confirm.fill(stack.database[:-1])
    expect(start).to_be_disabled()
    confirm.fill(stack.database + "x")
    expect(start).to_be_disabled()
    confirm.fill(stack.database)
    expect(start).to_be_enabled()  # enabled, and never clicked: the stack's live database stays as it is
    page.keyboard.press("Escape")
    expect(wizard).to_be_hidden()
    with session.api() as client:
        restores = client.get("runs", params={"kind": "restore", "parent": str(backups.good.id)}).json()["items"]
    assert all(r["details"] is None or r["details"].get("request", {}).get("confirm") is None for r in restores)
    _allow(session, False)
    session.check_requests()


def _serious(page: Any, state: str) -> list[tuple[str, str, list[Any]]]:
    """axe-core's serious and critical findings (axe is bundled by a test dependency, as in test_page_a11y.py)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE)
    result = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    return [(state, v["id"], [n["target"] for n in v["nodes"]][:5]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def test_axe_finds_nothing_serious_in_the_confirmation_or_the_wizard(axe_session: Session,
                                                                    backups: Backups) -> None:
    _allow(axe_session, False)
    page = axe_session.page
    axe_session.use_token()
    expect(page.locator(f'#backups tr[data-run-id="{backups.good.id}"]')).to_be_visible()
    page.get_by_label("Allow restore through the API").click()
    expect(page.locator("#restore-allow")).to_be_visible()
    bad = _serious(page, "confirmation")
    page.get_by_role("button", name="Cancel").click()
    _allow(axe_session, True)
    try:
        page.reload()
        axe_session.use_token()
        _restore_button(axe_session, backups.good).click()
        wizard = page.locator("#restore-wizard")
        expect(wizard.locator("#restore-checks li")).to_have_count(len(CHECKS))
        bad += _serious(page, "checks")
        wizard.get_by_role("button", name="Next").click()
        wizard.get_by_label("Replace the live database").check()
        bad += _serious(page, "replace")
    finally:
        _allow(axe_session, False)
    assert not bad, bad
