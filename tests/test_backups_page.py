"""The backups view and run details on the admin page (issue 14 items 1 and 2), in Debian's Chromium against the
embedded stack, at 1366 px and at 390 px (tests/test_admin_page.py's browser; contexts of these widths here).

Real runs, taken through the service on the stack's catalog: a full backup verified quick and deep and restored
into a new database; a schema backup, pinned; a full backup whose file was then damaged, so its quick verify
failed (checksum); a failed backup; a prune plan (nothing deleted) whose reasons the view shows. A failing test
keeps a screenshot at tests/artifacts/backups-page-<test>-<width>.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.devstack import drop_database, scratch_database_name
from openwatch_backup.devstack.stack import EmbeddedStack
from openwatch_backup.operations.restore import RestoreRequest
from openwatch_backup.service import BackupService
from tests import test_admin_page as base
from tests.support.page_session import page_session
from tests.support.page_stack import page_stack, service_of
from tests.support.restore_helpers import flip_byte
from tests.test_admin_page import Session

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]


@dataclass
class Runs:
    verified: BackupRun  # quick and deep verified, restored once
    pinned: BackupRun  # a schema backup, pinned, quick verified
    damaged: BackupRun  # its file damaged after the backup: its quick verify failed
    failed: BackupRun
    quick: BackupRun
    deep: BackupRun
    restore: BackupRun
    bad_verify: BackupRun
    prune: BackupRun


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with page_stack(tmp_path_factory.mktemp("backups-page") / "var", redis_db=15, beat=False) as embedded:
        yield embedded


def _artifact(service: BackupService, run: BackupRun) -> Any:
    return service.settings.dir / "postgres" / run.details["artifact"]


@pytest.fixture(scope="module")
def runs(stack: EmbeddedStack) -> Iterator[Runs]:
    with service_of(stack) as service:
        verified = service.backup(service.build_request(), requested_by="test")
        quick, _ = service.verify(str(verified.id), requested_by="test")
        deep, _ = service.verify(str(verified.id), deep=True, requested_by="test")
        into = scratch_database_name("restored")
        restore = service.restore(str(verified.id), RestoreRequest(into=into), requested_by="test")
        try:
            pinned = service.backup(service.build_request(BackupKind.SCHEMA), requested_by="test")
            service.verify(str(pinned.id), requested_by="test")
            pinned = service.pin(str(pinned.id), requested_by="test")
            damaged = service.backup(service.build_request(), requested_by="test")
            path = _artifact(service, damaged)
            flip_byte(path)  # the size stays: only the checksum can tell
            bad_verify, _ = service.verify(str(damaged.id), requested_by="test")
            failed_id = service.recorder.create("full", "cli", "test", details={"request": {"kind": "full"}})
            service.recorder.claim(failed_id)
            service.recorder.finish_unsuccessfully(failed_id, RunStatus.FAILED, "dump_failed",
                                                   "pg_dump exited with 1 (test)")
            prune = service.prune(apply=False, requested_by="test")
            found = Runs(service.get_run(str(verified.id)), pinned, service.get_run(str(damaged.id)),
                         service.get_run(str(failed_id)), quick, deep, restore, bad_verify, prune)
            for run in (verified, quick, deep, restore, pinned, damaged, prune):
                assert run.status == "succeeded", (run.kind, run.error)
            assert bad_verify.status == "failed"
            yield found
        finally:
            drop_database(stack.pg, into)  # type: ignore[arg-type]


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack) -> Iterator[Session]:
    with page_session(request, browser, stack, name="backups-page", width=request.param) as opened:
        opened.page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                              origin=stack.url.split("/api")[0])
        yield opened


def _fits(session: Session, selector: str) -> None:
    """The element stays inside the viewport and does not scroll sideways itself (other cards of the page are
    issue 14 item 7's)."""
    width = session.page.evaluate("document.documentElement.clientWidth")
    box = session.page.locator(selector).evaluate(
        "el => ({right: el.getBoundingClientRect().right, scroll: el.scrollWidth, client: el.clientWidth})")
    assert box["right"] <= width, (selector, box, width)
    assert box["scroll"] <= box["client"], (selector, box)


def _decision(runs: Runs, run: BackupRun) -> dict[str, Any]:
    return next(d for d in runs.prune.details["plan"] if d["run"] == str(run.id))


def test_backups_view_one_row_per_backup_with_its_proof(session: Session, runs: Runs) -> None:
    page = session.page
    session.use_token()
    table = page.locator("#backups")
    backups = [runs.damaged, runs.pinned, runs.verified]  # newest first; the failed one is newer still
    expect(table.locator("tbody tr")).to_have_count(4)
    ids = table.locator("tbody tr").evaluate_all("rows => rows.map((tr) => tr.dataset.runId)")
    assert ids == [str(runs.failed.id), *(str(b.id) for b in backups)]

    def cell(run: BackupRun, label: str) -> Any:
        return table.locator(f'tr[data-run-id="{run.id}"] [data-label="{label}"]')

    # Verified: the newest pass is the deep one; both verifies and the restore are folded under it.
    expect(cell(runs.verified, "Verification")).to_contain_text("deep verified")
    expect(cell(runs.verified, "Verification").locator(".verify-failure")).to_have_count(0)
    expect(cell(runs.verified, "Copies")).to_have_text("local: verified")
    decision = _decision(runs, runs.verified)
    assert decision["action"] == "keep"
    expect(cell(runs.verified, "Retention")).to_contain_text(f"kept: {decision['reason']}")
    expect(cell(runs.verified, "Retention").get_by_role("link", name=re.compile("prune run"))).to_have_attribute(
        "href", f"#run={runs.prune.id}")
    expect(cell(runs.verified, "Retention")).to_contain_text(
        f"past {runs.prune.details['policy']['retention_days']} days on")
    folded = cell(runs.verified, "Verify, restore").locator("li")
    assert folded.evaluate_all("items => items.map((li) => li.dataset.runId)") == \
        [str(runs.restore.id), str(runs.deep.id), str(runs.quick.id)]
    expect(folded.nth(0)).to_contain_text("restore")
    expect(folded.nth(1)).to_contain_text("verify (deep)")
    expect(folded.nth(2)).to_contain_text(re.compile(r"verify\s+succeeded"))
    # The damaged one: its last verify failed, with the reason; its local copy says so too.
    expect(cell(runs.damaged, "Verification")).to_contain_text("verify failed")
    reason = runs.bad_verify.details["verify"]["reason"]
    assert reason == "checksum"
    expect(cell(runs.damaged, "Verification").locator(".verify-failure")).to_contain_text(
        "Last failure (quick, ")
    expect(cell(runs.damaged, "Verification").locator(".verify-failure")).to_contain_text(f"): {reason} - ")
    expect(cell(runs.damaged, "Copies")).to_contain_text("local: failed")
    # Pinned; the failed backup has no verification and no copies.
    expect(cell(runs.pinned, "Retention")).to_contain_text("pinned kept until unpinned")
    expect(cell(runs.pinned, "Retention")).not_to_contain_text("days on")
    expect(cell(runs.failed, "Verification")).to_have_text("-")
    expect(cell(runs.failed, "Copies")).to_have_text("-")

    # Filters: by kind, by status, both; "no match" said in words.
    page.get_by_label("Kind", exact=True).select_option("schema")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_have_attribute("data-run-id", str(runs.pinned.id))
    page.get_by_label("Kind", exact=True).select_option("")
    page.get_by_label("Status", exact=True).select_option("failed")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_have_attribute("data-run-id", str(runs.failed.id))
    page.get_by_label("Kind", exact=True).select_option("schema")
    expect(table.locator("tbody tr")).to_have_count(0)
    expect(page.locator("#backups-empty")).to_have_text("No backup matches these filters.")
    page.get_by_label("Status", exact=True).select_option("")
    page.get_by_label("Kind", exact=True).select_option("")
    expect(table.locator("tbody tr")).to_have_count(4)

    if page.viewport_size and page.viewport_size["width"] < 600:  # rows become cards; targets of 44 px
        assert table.locator("tbody tr").first.evaluate("tr => getComputedStyle(tr).display") == "block"
        assert table.locator("thead").evaluate("el => el.getBoundingClientRect().height") <= 1
        height = cell(runs.verified, "Backup").get_by_role("link").evaluate("a => a.getBoundingClientRect().height")
        assert height >= 44, height
        _fits(session, "#backups-card")
    session.check_requests()


def test_run_details_open_from_any_row_and_by_link(session: Session, runs: Runs, stack: EmbeddedStack) -> None:
    page = session.page
    session.use_token()
    verified = runs.verified
    dialog = page.locator("#run-details")
    # From the backups view.
    page.locator(f'#backups tr[data-run-id="{verified.id}"]').get_by_role(
        "link", name=f"Details of full run {str(verified.id)[:8]}").click()
    expect(dialog).to_be_visible()
    assert page.evaluate("location.hash") == f"#run={verified.id}"
    expect(page.locator("#details-title")).to_have_text(f"full run {str(verified.id)[:8]}")
    expect(page.locator("#details-title")).to_be_focused()

    def fact(term: str) -> Any:
        return page.locator("#details-facts dt", has_text=re.compile(f"^{re.escape(term)}$")).locator(
            "xpath=following-sibling::dd[1]")

    d = verified.details
    expect(fact("File")).to_have_text(d["artifact"])
    expect(fact("Size")).to_contain_text(" before compression)")
    expect(fact("Compression ratio")).to_have_text(f"{d['bytes_in'] / verified.size_bytes:.2f} : 1")
    expect(page.locator("#details-sha")).to_have_text(str(verified.sha256))
    expect(fact("Server version")).to_have_text(d["server_version"])
    expect(fact("pg_dump version")).to_have_text(d["pg_dump_version"])
    expect(fact("Migration (alembic head)")).to_have_text(d["openwatch_alembic_head"])
    expect(fact("Peak memory")).to_have_text(re.compile(r"^\d+(\.\d+)? (KiB|MiB|GiB)$"))
    counts = page.locator("#details-rows tbody tr")
    expect(counts).to_have_count(len(d["row_counts"]))
    table, rows = next(iter(d["row_counts"].items()))
    expect(counts.filter(has_text=table).first.locator("td").nth(1)).to_have_text(str(rows))
    expect(page.locator("#details-phases")).to_contain_text("dumping")
    history = page.locator("#details-history tbody tr")
    assert history.evaluate_all("rows => rows.map((tr) => tr.dataset.runId)") == \
        [str(runs.restore.id), str(runs.deep.id), str(runs.quick.id)]
    expect(history.nth(0).locator("td").nth(3)).to_have_text(re.compile(r"^\d+(\.\d)? s$"))  # the restore's time
    expect(history.nth(1)).to_contain_text("deep verify")
    # The sha256 is copied as it is.
    page.get_by_role("button", name="Copy the SHA-256").click()
    expect(page.get_by_role("button", name="Copy the SHA-256")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == verified.sha256
    if page.viewport_size and page.viewport_size["width"] < 600:
        _fits(session, "#run-details")

    # Parent and child links: the restore names its backup; the backup's history links to the restore.
    history.nth(0).get_by_role("link").click()
    expect(page.locator("#details-title")).to_have_text(f"restore run {str(runs.restore.id)[:8]}")
    assert page.evaluate("location.hash") == f"#run={runs.restore.id}"
    fact("Parent run").get_by_role("link").click()
    expect(page.locator("#details-title")).to_have_text(f"full run {str(verified.id)[:8]}")

    # A failed verify shows its reason; Esc closes and the address forgets the run.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(r"^[^#]*$"))  # no #run= (the close event comes a task after close())
    session.row(str(runs.bad_verify.id)).get_by_role("link").click()  # from the activity log too
    expect(fact("Status")).to_contain_text(f"verify_checksum: {runs.bad_verify.error}")
    page.get_by_role("button", name="Close details").click()
    expect(dialog).to_be_hidden()

    # A link opens it on a fresh load (the token is kept for the tab).
    page.goto(f"{stack.url}#run={runs.pinned.id}")
    page.reload()
    expect(dialog).to_be_visible()
    expect(page.locator("#details-title")).to_have_text(f"schema run {str(runs.pinned.id)[:8]}")
    session.check_requests()
