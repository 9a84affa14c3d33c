"""The checklist's "run this command" hints as links and buttons (issue 14 item 2), in Chromium at 1366 and 390 px.

A full backup whose file was damaged after it was taken, so its quick verify failed, and no drill: the failing
checks name `openwatch-backup show <verify>` and `openwatch-backup verify <backup>`. The page shows each command as
code with "Details of run ..." (the run's details dialog) and "Verify backup ... now" (a verify run queued for
that backup, seen in the catalog), and `openwatch-backup drill` as the command only. A failing test keeps a
screenshot at tests/artifacts/checklist-links-<test>-<width>.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.devstack.stack import EmbeddedStack
from tests import test_admin_page as base
from tests.support.page_session import Session, page_session
from tests.support.page_stack import page_stack, service_of
from tests.support.restore_helpers import flip_byte

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]
QUEUE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with page_stack(tmp_path_factory.mktemp("checklist-links") / "var", redis_db=8, beat=False) as embedded:
        yield embedded


@pytest.fixture(scope="module")
def damaged(stack: EmbeddedStack) -> BackupRun:
    """A full backup whose quick verify failed (one byte flipped in its file, as tests/test_backups_page.py)."""
    with service_of(stack) as service:
        backup = service.backup(service.build_request(), requested_by="test")
        path = service.settings.dir / "postgres" / backup.details["artifact"]
        flip_byte(path)  # the size stays: only the checksum can tell
        bad_verify, _ = service.verify(str(backup.id), requested_by="test")
        assert bad_verify.status == "failed", bad_verify.status
        return service.get_run(str(backup.id))


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack) -> Iterator[Session]:
    with page_session(request, browser, stack, name="checklist-links", width=request.param) as opened:
        yield opened


def _item(session: Session, key: str) -> dict[str, Any]:
    with session.api() as client:
        return next(i for i in client.get("status").json()["checklist"] if i["key"] == key)


def _verifies_of(stack: EmbeddedStack, backup: BackupRun) -> list[BackupRun]:
    with service_of(stack) as service:
        return service.recorder.list(kind="verify", parent_id=backup.id)


def test_failing_checks_link_to_the_run_and_verify_it_now(session: Session, damaged: BackupRun,
                                                          stack: EmbeddedStack) -> None:
    page = session.page
    session.use_token()
    short = str(damaged.id)[:8]
    item = _item(session, "verify_failures")
    assert item["status"] == "fail"
    show = next(a for a in item["actions"] if a["verb"] == "show")
    failed_verify = show["run_id"]
    assert failed_verify is not None
    assert failed_verify in {str(v.id) for v in _verifies_of(stack, damaged)}
    # The API gives the full ids; the fix text is the CLI's, unchanged.
    assert [(a["verb"], a["run_id"]) for a in item["actions"]] == [("show", failed_verify), ("verify", str(damaged.id))]
    assert f"`openwatch-backup verify {short}`" in item["fix"]

    row = page.locator('#checklist tr[data-check="verify_failures"]')
    expect(row.locator("code")).to_have_text([f"openwatch-backup show {failed_verify[:8]}",
                                              f"openwatch-backup verify {short}"])
    # The drill has no API: its command is shown, with nothing to click next to it.
    drill = page.locator('#checklist tr[data-check="restore_drill"]')
    expect(drill.locator("code")).to_have_text(["openwatch-backup drill"])
    expect(drill.locator(".fix").get_by_role("button")).to_have_count(0)
    expect(drill.locator(".fix").get_by_role("link")).to_have_count(0)

    # Under "Failing checks": the details of the failed verify open in the details dialog.
    failing = page.locator('#health-failing-list li[data-check="verify_failures"]')
    expect(failing).to_be_visible()
    failing.get_by_role("link", name=f"Details of run {failed_verify[:8]}", exact=True).click()
    expect(page.locator("#run-details")).to_be_visible()
    expect(page.locator("#details-title")).to_have_text(f"verify run {failed_verify[:8]}")
    assert page.evaluate("location.hash") == f"#run={failed_verify}"
    page.get_by_role("button", name="Close details").click()
    expect(page.locator("#run-details")).to_be_hidden()

    # The checklist's link to the backup opens the backup.
    row.get_by_role("link", name=f"Details of run {short}", exact=True).click()
    expect(page.locator("#details-title")).to_have_text(f"full run {short}")
    page.get_by_role("button", name="Close details").click()

    # "Verify backup ... now": POST runs/{backup}/verify, and a new verify run of that backup in the catalog.
    before = {str(v.id) for v in _verifies_of(stack, damaged)}
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(f"/runs/{damaged.id}/verify")) as sent:
        row.get_by_role("button", name=f"Verify backup {short} now", exact=True).click()
    assert sent.value.post_data_json == {"deep": False}
    expect(page.locator("#notice")).to_have_text(re.compile(rf"^Verify of backup {short} queued: run [0-9a-f]{{8}}\.$"))
    new = [v for v in _verifies_of(stack, damaged) if str(v.id) not in before]
    assert len(new) == 1, new
    assert new[0].parent_id == damaged.id
    assert new[0].trigger == "api"
    # ... and it appears in the activity log.
    expect(session.row(str(new[0].id))).to_be_visible(timeout=QUEUE_TIMEOUT_MS)
    session.check_requests()
