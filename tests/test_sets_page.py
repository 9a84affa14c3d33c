"""Nightly sets on the admin page, in Debian's Chromium (tests/test_admin_page.py's browser, page and session
fixtures) against the embedded stack: a set is one row with a "set" badge, its member count and its own status
(failed when a member failed), its member backups folded under it, indented, oldest first; the other runs keep
their places, newest first. The page asks for GET runs?group=sets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.devstack.stack import EmbeddedStack
from openwatch_backup.service import BackupService
from openwatch_backup.service.sets import SET_KIND, execute_set, request_set
from tests import test_admin_page as base
from tests.support.page_stack import page_stack, service_of
from tests.test_admin_page import Session

pytestmark = pytest.mark.slow
playwright, browser, session = base.playwright, base.browser, base.session
SCREENSHOT = base.ARTIFACTS / "admin-page-sets.png"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with page_stack(tmp_path_factory.mktemp("admin-page-sets") / "var", redis_db=14, beat=False) as embedded:
        yield embedded


@pytest.fixture
def stack_service(stack: EmbeddedStack) -> Iterator[BackupService]:
    with service_of(stack) as service:
        yield service


def _failed_set(service: BackupService) -> tuple[uuid.UUID, uuid.UUID]:
    """A set whose dump failed, recorded as execute_set records one (member by parent_id and set_id)."""
    recorder = service.recorder
    set_id = recorder.create(SET_KIND, "schedule", "celery-beat", details={"planned": ["full"]})
    recorder.claim(set_id)
    member = recorder.create("full", "schedule", f"set {str(set_id)[:8]}", parent_id=set_id,
                             details={"set_id": str(set_id)})
    recorder.claim(member)
    recorder.finish_unsuccessfully(member, RunStatus.FAILED, "dump_failed", "pg_dump exited with 1 (test)")
    recorder.finish_unsuccessfully(set_id, RunStatus.FAILED, "set_partial", f"set partial: full {str(member)[:8]} "
                                   "failed", details={"outcome": "partial"})
    return set_id, member


def _table_order(runs: list[BackupRun]) -> list[str]:
    """What the table shows: top-level runs newest first, each set's members right under it, oldest first."""
    member_of = {r.id: r.parent_id for r in runs if r.parent_id and r.details.get("set_id") == str(r.parent_id)}
    order: list[str] = []
    for run in runs:
        if run.id in member_of:
            continue
        order.append(str(run.id))
        order += [str(m.id) for m in reversed(runs) if member_of.get(m.id) == run.id]
    return order


def test_sets_are_one_row_with_their_members_under_them(session: Session, stack_service: BackupService) -> None:
    service = stack_service
    good_id, created = request_set(service, requested_by="celery-beat")
    assert created
    good = execute_set(service, good_id)
    assert good.status == "succeeded", good.error
    [good_member] = [r for r in service.recorder.list(limit=20, parent_id=good_id) if r.kind == "full"]
    bad_id, bad_member = _failed_set(service)
    plain = service.backup(service.build_request(), requested_by="test")
    runs = service.recorder.list(limit=200)
    session.use_token()

    page = session.page
    good_row, bad_row = session.row(str(good_id)), session.row(str(bad_id))
    expect(good_row.locator("td").nth(0).locator(".badge.set-badge")).to_have_text("set")
    expect(good_row.locator("td").nth(0)).to_contain_text("set 1 member")
    expect(good_row.locator("td").nth(1)).to_have_text("succeeded")
    expect(good_row.locator("td").nth(6)).to_have_text(re.compile(r"^\d+(\.\d+)? (B|KiB|MiB)$"))  # its dump's size
    expect(good_row.locator("td").nth(7)).to_have_text("-")  # no off-site copies here
    expect(bad_row.locator("td").nth(1)).to_contain_text("failed")
    expect(bad_row.locator("td").nth(1)).to_contain_text("set_partial")
    member_row = session.row(str(good_member.id))
    expect(member_row).to_have_class(re.compile(r"\bset-member\b"))
    expect(member_row).to_have_attribute("data-set-id", str(good_id))
    expect(member_row.locator("td").nth(1)).to_have_text("succeeded")
    verify = member_row.get_by_role("button", name=f"Verify full run {str(good_member.id)[:8]}", exact=True)
    expect(verify).to_be_visible()  # a member is a backup like any other
    expect(session.row(str(bad_member))).to_have_attribute("data-set-id", str(bad_id))
    expect(session.row(str(bad_member)).locator("td").nth(1)).to_contain_text("dump_failed")
    expect(session.row(str(plain.id))).not_to_have_attribute("data-set-id", re.compile(".*"))
    # The member is indented under its set; the set's row is not.
    padding = "td => parseFloat(getComputedStyle(td).paddingLeft)"
    indent = member_row.locator("td").first.evaluate(padding) - good_row.locator("td").first.evaluate(padding)
    assert indent >= 16, indent

    ids = page.locator("#runs tbody tr").evaluate_all("rows => rows.map((tr) => tr.dataset.runId)")
    assert ids == _table_order(runs)
    assert ids.index(str(good_member.id)) == ids.index(str(good_id)) + 1
    assert ids.index(str(bad_member)) == ids.index(str(bad_id)) + 1
    asked = [parse_qs(urlsplit(r.url).query) for r in session.requests if urlsplit(r.url).path.endswith("/runs")]
    assert asked
    assert all(q.get("group") == ["sets"] for q in asked)

    # A refresh finds the same rows in the same places (members stay under their sets).
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_timeout(500)
    assert page.locator("#runs tbody tr").evaluate_all("rows => rows.map((tr) => tr.dataset.runId)") == ids
    base.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    session.check_requests()
