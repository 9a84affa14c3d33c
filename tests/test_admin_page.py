"""The admin page in a real browser: Debian's Chromium, driven by Playwright's sync API, against the embedded
stack (PostgreSQL with sample data, Redis, a real Celery worker, the API under uvicorn; beat is left out, see `stack`).

Nothing is skipped: without /usr/bin/chromium the tests fail and say how to install it. The stack gets its own
database (`owb_page_<pid>_<hex>`, dropped at the end) and Redis database 11, so it does not meet the demo's
`openwatch_demo`. A full-page screenshot is kept at tests/artifacts/admin-page.png.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from playwright.sync_api import Browser, Playwright, Request, Route, expect, sync_playwright

from openwatch_backup.api import TokenAuth, backups_router
from openwatch_backup.devstack.stack import EmbeddedStack
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from tests.support.page_session import ARTIFACTS, Session, page_session
from tests.support.page_stack import far_schedules, page_stack, service_of

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOT = ARTIFACTS / "admin-page.png"
RUN_TIMEOUT_MS = 60_000  # a 5 MiB backup takes well under a second; the worker's start-up is the slow part
SIZE = re.compile(r"^\d+(\.\d+)? (B|KiB|MiB|GiB)$")


# --- fixtures ----------------------------------------------------------------------------------------------

_far_schedules = far_schedules  # the name other page tests import


def _stored(stack: EmbeddedStack, key: str) -> Any:
    with service_of(stack) as service:
        return service.settings_store.get(key)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    # Beat runs too, ticking every few seconds: a schedule's first run waits for its fire time (beat queues nothing
    # at its first ticks), and the schedules fire twelve hours from now, so no scheduled run lands among the runs
    # these tests start and count (test_back_up_... checks that beat ticked and queued nothing).
    with page_stack(tmp_path_factory.mktemp("admin-page") / "var", redis_db=11, beat=True) as embedded:
        yield embedded


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"Debian's Chromium is not installed at {CHROMIUM}; install it with `apt-get install chromium` "
                    "(scripts/bootstrap does so when run as root)", pytrace=False)
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack) -> Iterator[Session]:
    with page_session(request, browser, stack, name="admin-page", width=1400, accept_downloads=True) as opened:
        yield opened


def _post_json(request: Request) -> Any:
    return json.loads(request.post_data or "null")


# --- the API bug the page works around by saying so in its health panel -------------------------------------

def test_status_answers_before_the_first_backup(stack: EmbeddedStack, tmp_path: Path) -> None:
    from fastapi import FastAPI

    with warnings.catch_warnings():  # Starlette 1.x warns at import that its TestClient wants `httpx2`
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    services: list[BackupService] = []

    def factory() -> BackupService:
        services.append(BackupService(load_settings(database_url=stack.env["OPENWATCH_DATABASE_URL"],
                                                    dir=tmp_path / "no-backup-yet")))
        return services[-1]

    app = FastAPI()
    app.include_router(backups_router(auth=TokenAuth("t"), submit=lambda kind, run_id: None,
                                      service_factory=factory))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            answer = client.get("/status", headers={"Authorization": "Bearer t"})
    finally:
        for service in services:
            service.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["storage_used_bytes"] == 0


# --- the page -----------------------------------------------------------------------------------------------

def test_a_refused_token_is_asked_for_again(session: Session) -> None:
    page = session.page
    expect(page.get_by_label("API token")).to_be_focused()
    expect(page.get_by_label("API token")).to_have_attribute("type", "password")
    session.use_token("not-the-token")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("invalid token")  # the API's detail
    expect(alert).to_contain_text("Enter the API token again")
    expect(page.get_by_label("API token")).to_be_focused()
    assert page.evaluate("Object.keys(sessionStorage).length") == 0

    session.use_token()
    expect(alert).to_have_text("")
    expect(page.locator("#token-state")).to_have_text("Token in use for this browser tab.")
    expect(page.get_by_label("Backup cron")).not_to_have_value("")  # GET settings answered
    sent = [r for r in session.requests if urlsplit(r.url).path.endswith("/runs")]
    assert sent, "the page did not ask for the runs"
    assert sent[-1].headers.get("authorization") == f"Bearer {session.stack.token}"
    session.check_requests()


def test_back_up_verify_log_download_keyboard_and_settings(session: Session) -> None:
    page = session.page
    session.use_token()

    # Back up now: the new run appears in the table, highlighted, and succeeds.
    session.record_texts()
    page.get_by_role("button", name="Back up now").click()
    first = page.locator("#runs tr.highlight").get_attribute("data-run-id")
    assert first
    expect(session.cell(first, 1)).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    assert f"Backup queued: full run {first[:8]}." in session.seen_texts()["notice"]  # said, then dropped
    expect(session.cell(first, 0)).to_contain_text("full")
    expect(session.cell(first, 2)).to_have_text("api")
    expect(session.cell(first, 3)).to_have_text("api-token")
    size = session.cell(first, 6).inner_text().strip()
    assert SIZE.match(size), f"the size cell says {size!r}"
    with session.api() as client:
        assert client.get(f"runs/{first}").json()["size_bytes"] > 0
    expect(session.cell(first, 1).locator(".badge.succeeded")).to_be_visible()  # colour class and text

    # The worker queues a quick verify after every backup; it shows up and succeeds.
    verify_row = page.locator("#runs tr").filter(has_text=f"after backup {first[:8]}").filter(has_text="verify")
    expect(verify_row).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(verify_row.locator("td").nth(1)).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)

    # Health: a verified backup, but no prune applied and no drill yet: unhealthy, and the health panel lists the
    # failing checklist items (the checklist below lists every item with ok/fail/skip).
    failing = page.locator("#health-failing-list li")
    expect(failing).to_have_text([
        re.compile(r"^Old backups cleaned up per retention policy: no applied prune in 2 days \(never applied\)$"),
        # No passphrase for config bundles in this stack: the checklist says so (operations/checklist_config.py).
        re.compile(r"^Config bundle passphrase set: no passphrase for config bundles is set: set "
                   r"OPENWATCH_BACKUP_PASSPHRASE_FILE to a file \(mode 600\) holding it on its first line$"),
        re.compile(r"^Full restore test performed, recovery time measured against the RTO: no passed drill in 90 "
                   r"days \(never run\)$")], timeout=RUN_TIMEOUT_MS)
    expect(failing.nth(0)).to_have_attribute("data-check", "retention_applied")
    expect(page.locator("#health-verdict")).to_have_text(re.compile(r"^Unhealthy: 3 checks failing\b"))
    expect(page.locator("#health-verified")).to_contain_text(re.compile(r"\d h ago \(alert after 26 h\)"))
    expect(page.locator("#health-audit")).to_be_hidden()
    expect(page.locator("#health-error")).to_be_hidden()
    expect(page.locator('#checklist tr[data-check="backup_present"] .badge')).to_have_text("ok")
    expect(page.locator("#health-used")).to_have_text(SIZE)
    # The card changes every 2 s and is no live region; the end of a backup is said once, in #live-result
    # (tests/test_page_progress.py follows a backup through it).
    expect(page.locator("#live")).not_to_have_attribute("aria-live", re.compile("."))
    expect(page.locator("#live-result")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#live progress")).to_have_count(1)
    expect(page.locator("#live-text")).to_have_text("No run in progress.", timeout=RUN_TIMEOUT_MS)

    # Its log, in the panel.
    session.row(first).get_by_role("button", name=re.compile("^Log")).click()
    expect(page.locator("#log-title")).to_have_text(f"Log of full run {first[:8]}")
    expect(page.locator("#log-title")).to_be_focused()
    expect(page.locator("#log-lines")).to_contain_text("dumping")
    expect(page.locator("#log-lines")).to_contain_text("succeeded")

    # Download: fetched with the token in a header and saved from a blob.
    with page.expect_download() as waiting:
        session.row(first).get_by_role("link", name=re.compile("^Download")).click()
    download = waiting.value
    assert download.suggested_filename.endswith(".dump.zst"), download.suggested_filename
    with session.api() as client:
        expected = client.get(f"runs/{first}").json()["size_bytes"]
    assert Path(download.path()).stat().st_size == expected

    # The keyboard: from the token field, Tab reaches "Use token", then "Back up now"; Enter starts a backup, and
    # the button is held until it ends (so a second Enter cannot start another; the 409 is the API tests').
    page.get_by_label("API token").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Use token")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Back up now")).to_be_focused()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/runs")) as started:
        page.keyboard.press("Enter")
    assert started.value.status == 202
    second = started.value.json()["id"]
    expect(session.row(second)).to_have_count(1)
    held, reason = page.evaluate("[document.getElementById('backup-now').disabled, "
                                 "document.getElementById('backup-now-reason').textContent]")
    if held:  # read together: the backup may end between two reads
        assert re.match(rf"(Queuing the backup|Backup {second[:8]} is (queued|running))", reason), reason
    else:  # enabled again: the page saw it end
        with session.api() as client:
            assert client.get(f"runs/{second}").json()["status"] == "succeeded"
    expect(page.get_by_role("button", name="Back up now")).to_be_enabled(timeout=RUN_TIMEOUT_MS)
    runs = [second]
    for run_id in runs:
        expect(session.cell(run_id, 1)).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    assert page.locator("#runs tr[data-run-id]").filter(has_text="api-token").filter(
        has=page.locator(".kind", has_text="full")).count() == 1 + len(runs)

    # Beat ticked all along and queued nothing: the first runs wait for their schedule, twelve hours away.
    assert _stored(session.stack, "scheduler.seen.backup")["expression"] == session.stack.env[
        "OPENWATCH_BACKUP_SCHEDULE"]
    with session.api() as client:
        assert [r["trigger"] for r in client.get("runs", params={"limit": 200}).json()["items"]
                if r["trigger"] == "schedule"] == []

    # Settings: a changed schedule is saved (only the changed groups are sent) and persisted.
    drill = session.stack.env["OPENWATCH_BACKUP_DRILL_SCHEDULE"]
    changed = "45" + session.stack.env["OPENWATCH_BACKUP_SCHEDULE"].removeprefix("0")  # still far from now
    expect(page.get_by_label("Backup cron")).to_have_value(session.stack.env["OPENWATCH_BACKUP_SCHEDULE"])
    page.get_by_label("Backup cron").fill(changed)
    page.get_by_label("Keep database backups (days)").fill("45")
    with page.expect_request(lambda r: r.method == "PUT") as saving:
        page.get_by_role("button", name="Save").click()
    assert _post_json(saving.value) == {"schedule": {"backup": changed, "drill": drill},
                                        "retention": {"days": 45}}
    expect(page.locator("#settings-msg")).to_have_text("Saved")
    with session.api() as client:
        stored = client.get("settings").json()
    assert stored["schedule"]["backup"] == changed
    assert stored["retention"]["days"] == 45
    assert stored["allow_restore"] is False

    # A bad cron: the API's own message is shown next to the form, and nothing changes.
    page.get_by_label("Backup cron").fill("61 * * * *")
    with session.api() as client:
        refused = client.put("settings", json={"schedule": {"backup": "61 * * * *", "drill": "0 4 * * 0"}})
    assert refused.status_code == 422
    page.get_by_role("button", name="Save").click()
    message = page.locator("#settings-msg")
    expect(message).to_have_text(refused.json()["detail"])
    expect(message).to_contain_text("not a valid cron expression")
    expect(page.get_by_label("Backup cron")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Backup cron")).to_have_attribute("aria-describedby", re.compile(r"\bsettings-msg\b"))
    with session.api() as client:
        assert client.get("settings").json()["schedule"]["backup"] == changed

    # A plan for the screenshot: what retention keeps, and why.
    page.get_by_role("button", name="Plan prune").click()
    expect(page.locator("#prune-plan tbody tr").first).to_be_visible()
    expect(page.locator("#prune-plan")).to_contain_text("keep")
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"^(a backup is already .*)?$"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    session.check_requests()


def _running_backup() -> dict[str, Any]:
    """A backup in its dumping phase, as GET status reports one (the real ones here take under a second)."""
    now = datetime.now(UTC)
    return {"id": "0f0e0d0c-0000-4000-8000-000000000001", "kind": "full", "status": "running", "trigger": "api",
            "requested_by": "api-token", "parent_id": None, "phase": "dumping",
            "created_at": (now - timedelta(seconds=80)).isoformat(),
            "started_at": (now - timedelta(seconds=75)).isoformat(),
            "finished_at": None, "heartbeat_at": now.isoformat(), "duration_seconds": None, "bytes_done": 12 << 20,
            "artifact_location": None, "size_bytes": None, "sha256": None, "pinned": False, "pruned_at": None,
            "details": {"rate_bytes_per_s": 3 << 20}, "error_code": None, "error": None}


def test_live_progress_polls_every_2_s_while_a_run_is_running(session: Session) -> None:
    page = session.page
    running = {"now": True}

    def status(route: Route) -> None:  # the real answer, with a running backup while running["now"]
        answer = route.fetch()
        body = answer.json()
        if running["now"]:
            body["running"] = _running_backup()
        route.fulfill(response=answer, json=body)

    def polls() -> int:
        return sum(1 for r in session.requests if urlsplit(r.url).path.endswith("/status"))

    page.route("**/status", status)
    session.use_token()
    expect(page.locator("#live-text")).to_have_text("full run 0f0e0d0c is running.")
    expect(page.locator("#live progress")).to_be_visible()
    expect(page.locator("#live-phase")).to_have_text("dumping")
    expect(page.locator("#live-bytes")).to_have_text("12.0 MiB")
    expect(page.locator("#live-rate")).to_have_text("3.00 MiB/s")
    expect(page.locator("#live-elapsed")).to_have_text(re.compile(r"^1 min 1\d s$"))
    before = polls()
    page.wait_for_timeout(4_500)
    assert polls() - before >= 2, "GET status was not polled every 2 s while a run was running"

    running["now"] = False
    expect(page.locator("#live-text")).to_have_text("No run in progress.")
    expect(page.locator("#live progress")).to_be_hidden()
    before = polls()
    page.wait_for_timeout(4_500)
    assert polls() == before, "GET status was still polled every 2 s with no run in progress (15 s expected)"
    session.check_requests()


def test_prune_is_applied_only_after_confirmation(session: Session) -> None:
    page = session.page
    session.use_token()
    apply = page.get_by_role("button", name="Apply prune")
    expect(apply).to_be_disabled()  # nothing to apply before a plan
    page.get_by_role("button", name="Plan prune").click()
    expect(page.locator("#prune-summary")).to_contain_text("keeps")
    expect(apply).to_be_enabled()

    apply.click()
    dialog = page.get_by_role("dialog", name="Apply prune?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("cannot be brought back")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert not [r for r in session.requests if r.method == "POST" and r.url.endswith("/prune")]

    apply.click()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/prune")) as applying:
        dialog.get_by_role("button", name="Delete backups").click()
    assert applying.value.status == 202
    assert _post_json(applying.value.request) == {"apply": True}
    prune = applying.value.json()["id"]
    expect(page.get_by_role("status")).to_contain_text(f"Prune queued: run {prune[:8]}")
    expect(session.cell(prune, 1)).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    with session.api() as client:
        assert client.get(f"runs/{prune}").json()["details"]["summary"]["apply"] is True
    session.check_requests()


def test_older_runs_come_a_page_at_a_time(session: Session) -> None:
    with session.api() as client:
        total = len(client.get("runs", params={"limit": 200}).json()["items"])
        for _ in range(max(0, 51 - total)):  # plans are quick, synchronous runs: enough for a second page
            assert client.post("prune/plan").status_code == 200
        total = len(client.get("runs", params={"limit": 200}).json()["items"])
    assert total > 50
    page = session.page
    session.use_token()
    rows = page.locator("#runs tr[data-run-id]")
    expect(rows).to_have_count(50)
    older = page.get_by_role("button", name="Older runs")
    older.click()
    expect(rows).to_have_count(total)
    expect(older).to_be_hidden()
    created = [str(page.locator("#runs tr[data-run-id] time").nth(i).get_attribute("datetime")) for i in (0, total - 1)]
    assert created[0] >= created[1]  # newest first
    session.check_requests()


def test_the_health_panel_shows_an_audit_write_openwatch_refused(session: Session) -> None:
    page = session.page

    def status(route: Route) -> None:  # the real answer, with an audit failure (OpenWatchAuth keeps one; TokenAuth not)
        answer = route.fetch()
        body = answer.json()
        body["audit"] = {"last_error": "can't adapt type 'dict'", "last_error_at": datetime.now(UTC).isoformat(),
                         "last_error_action": "backup_requested"}
        route.fulfill(response=answer, json=body)

    page.route("**/status", status)
    session.use_token()
    audit = page.locator("#health-audit")
    expect(audit).to_be_visible()
    expect(audit).to_have_text(re.compile(r"^Audit log: the last record was not written \(backup_requested\) .+: "
                                          r"can't adapt type 'dict'$"))
    expect(audit.locator("time")).to_have_count(1)
    session.check_requests()


def test_bad_values_stored_by_hand_are_shown_and_fixed_from_the_form(session: Session) -> None:
    """psql wrote a schedule celery's crontab refuses and a retention value out of bounds: the form still loads,
    lists both with the allowed values, marks their inputs, and Save replaces them; health says it meanwhile."""
    stack = session.stack
    with psycopg.connect(stack.env["OPENWATCH_DATABASE_URL"], autocommit=True) as conn:
        for key, value in (("retention.days", "1e20"), ("schedule.backup", '"61 * * * *"')):
            conn.execute("INSERT INTO backup_settings (key, value, updated_by) VALUES (%s, %s::json, 'psql') "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, value))
    page = session.page
    session.use_token()

    problems = page.locator("#settings-problems li")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_have_attribute("data-key", "schedule.backup")
    expect(problems.nth(0)).to_contain_text("backup_settings schedule.backup '61 * * * *' is not a valid cron "
                                            "expression (Invalid end range: 61 > 59)")
    expect(problems.nth(1)).to_have_attribute("data-key", "retention.days")
    expect(problems.nth(1)).to_contain_text("(allowed: 1 to 36,500)")
    backup_cron = page.get_by_label("Backup cron")
    expect(backup_cron).to_have_value(stack.env["OPENWATCH_BACKUP_SCHEDULE"])  # the environment's, in force meanwhile
    expect(backup_cron).to_have_attribute("aria-invalid", "true")
    days = page.get_by_label("Keep database backups (days)")
    expect(days).to_have_value("100000000000000000000")
    expect(days).to_have_attribute("aria-invalid", "true")
    unhealthy = page.locator('#health-failing-list li[data-check="settings_valid"]')
    expect(unhealthy).to_contain_text("backup_settings schedule.backup '61 * * * *'")
    expect(page.locator("#health-verdict")).to_have_text(re.compile(r"^Unhealthy: (.+, )?\d+ checks? failing\b"))

    days.fill("30")
    with page.expect_request(lambda r: r.method == "PUT") as saving:
        page.get_by_role("button", name="Save").click()
    # The schedule, left as shown, is sent too: saving replaces the stored bad value.
    assert _post_json(saving.value) == {"schedule": {"backup": stack.env["OPENWATCH_BACKUP_SCHEDULE"],
                                                     "drill": stack.env["OPENWATCH_BACKUP_DRILL_SCHEDULE"]},
                                        "retention": {"days": 30}}
    expect(page.locator("#settings-msg")).to_have_text("Saved")
    expect(page.locator("#settings-problems")).to_be_hidden()
    expect(backup_cron).not_to_have_attribute("aria-invalid", "true")
    expect(unhealthy).to_have_count(0)
    with session.api() as client:
        stored = client.get("settings").json()
    assert (stored["problems"], stored["retention"]["days"]) == ([], 30)
    assert stored["schedule_source"]["backup"] == "database"
    session.check_requests()
