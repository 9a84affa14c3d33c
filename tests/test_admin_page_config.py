"""The admin page's Configuration card in Debian's Chromium (tests/test_admin_page.py's browser, page and session
fixtures) against the embedded stack with a passphrase file and real config inputs (keys, certificates, a .env
holding the master key): "Back up config now" queues a run the worker turns into a version, the version shows its
size, members, verify state and certificates (the one expiring within 30 days marked), its download is exactly
the stored bundle, and without a usable passphrase the card warns and the button is off with the reason. The page
never shows the passphrase or the master key."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Route, expect

from openwatch_backup.devstack.stack import EmbeddedStack
from tests import test_admin_page as base
from tests.support.page_stack import page_stack
from tests.test_admin_page import RUN_TIMEOUT_MS, SIZE, Session
from tests.test_api_config import MASTER_KEY, PASSPHRASE, Inputs, make_inputs

pytestmark = pytest.mark.slow
# The browser and the page of tests/test_admin_page.py; `session` takes this module's `stack` below.
playwright, browser, session = base.playwright, base.browser, base.session
SCREENSHOT = base.ARTIFACTS / "admin-page-config.png"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("config-inputs") / "openwatch")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, inputs: Inputs) -> Iterator[EmbeddedStack]:
    """The page's stack with config bundles on: the passphrase file, the paths and the .env file in the environment
    of the API, the worker and beat, and the master key among the worker's own settings (its openwatch.env)."""
    keys, certs, env = inputs.paths
    extra = {"OPENWATCH_BACKUP_PASSPHRASE_FILE": str(inputs.passphrase_file),
             "OPENWATCH_BACKUP_CONFIG_PATHS": f"{keys},{certs}", "OPENWATCH_BACKUP_ENV_FILE": str(env),
             "OPENWATCH_MASTER_KEY": MASTER_KEY}
    with page_stack(tmp_path_factory.mktemp("admin-page-config") / "var", redis_db=13, beat=True,
                    extra_env=extra) as embedded:
        yield embedded


def _no_secrets(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    assert PASSPHRASE.encode() not in data
    assert MASTER_KEY.encode() not in data


def test_back_up_config_now_versions_and_download(session: Session, inputs: Inputs) -> None:
    page = session.page
    session.use_token()
    card = page.locator("#config-versions")
    expect(page.locator("#config-warning")).to_be_hidden()
    expect(page.locator("#config-source")).to_have_text("from OPENWATCH_BACKUP_PASSPHRASE_FILE")
    expect(page.locator("#config-paths")).to_have_text(", ".join(str(p) for p in inputs.paths))
    button = page.get_by_role("button", name="Back up config now")
    expect(button).to_be_enabled()

    # The button queues a config run (or, if the dispatcher was first, hands back the one under way).
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/config/backup")) as posted:
        button.click()
    answer = posted.value
    assert answer.status in (202, 409), answer.text()
    run = answer.json() if answer.status == 202 else answer.json()["run"]
    assert run["kind"] == "config"
    if answer.status == 202:
        expect(page.get_by_role("status").filter(has_text=f"Config backup queued: run {run['id'][:8]}")).to_be_visible()
    expect(session.row(run["id"])).to_have_count(1)  # in the runs table too
    expect(session.cell(run["id"], 1)).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    expect(session.cell(run["id"], 6)).to_have_text(SIZE)  # the bundle's size in the runs table too

    # The version: when, size, members, verify state, certificates (the one expiring in 10 days marked).
    row = card.locator(f'tr[data-run-id="{run["id"]}"]')
    expect(row).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    with session.api() as client:
        listed = client.get("config").json()
    version = next(v for v in listed["versions"] if v["run_id"] == run["id"])
    cells = row.locator("td")
    expect(cells.nth(0).locator("time")).to_have_count(1)
    expect(cells.nth(1)).to_have_text(SIZE)
    expect(cells.nth(2)).to_have_text(str(version["members"]))
    # The worker verifies after every backup: the cell follows it to passed or failed (with the reason).
    expect(cells.nth(3).locator(".badge")).to_have_text(re.compile(r"^(passed|failed: [a-z_]+)$"),
                                                        timeout=RUN_TIMEOUT_MS)
    soon = cells.nth(4).locator("li", has_text="CN=soon.example.test")
    expect(soon).to_have_attribute("data-expiring", "true")
    expect(soon).to_have_class(re.compile(r"\bexpiring\b"))
    expect(soon).to_contain_text("< 30 days")
    expect(soon).to_contain_text("(10 days left)")
    later = cells.nth(4).locator("li", has_text="CN=later.example.test")
    expect(later).to_have_attribute("data-expiring", "false")
    expect(later).to_contain_text("(400 days left)")
    expect(cells.nth(5)).to_contain_text("local")

    # Download: fetched with the token in a header, exactly the stored (still encrypted) bundle.
    stored = Path(session.stack.env["OPENWATCH_BACKUP_DIR"]) / "config" / version["artifact"]
    with page.expect_download() as waiting:
        row.get_by_role("link", name=f"Download config bundle {run['id'][:8]}").click()
    download = waiting.value
    assert download.suggested_filename == version["artifact"]
    data = Path(download.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(stored.read_bytes()).hexdigest() == version["sha256"]
    expect(page.get_by_role("status")).to_contain_text(f"Downloaded {version['artifact']}")

    _no_secrets(page.content())
    _no_secrets(json.dumps(listed))
    base.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    session.check_requests()


def test_an_unusable_passphrase_file_turns_the_button_off(session: Session, inputs: Inputs) -> None:
    """The real API with the passphrase file gone: the warning names the setting and the file, the button is off."""
    moved = inputs.passphrase_file.with_name("passphrase.away")
    inputs.passphrase_file.rename(moved)
    try:
        session.use_token()
        warning = session.page.locator("#config-warning")
        expect(warning).to_be_visible()
        expect(warning).to_have_text(f"Config bundles are off: OPENWATCH_BACKUP_PASSPHRASE_FILE "
                                     f"{inputs.passphrase_file} does not exist: create it (mode 600) with the "
                                     "passphrase on its first line, or fix the path")
        button = session.page.get_by_role("button", name="Back up config now")
        expect(button).to_be_disabled()
        expect(button).to_have_attribute("aria-describedby", "config-state")
        expect(session.page.locator("#config-state")).to_contain_text("Back up config now is off: "
                                                                      "OPENWATCH_BACKUP_PASSPHRASE_FILE")
        expect(session.page.locator("#config-source")).to_have_text("not set")
    finally:
        moved.rename(inputs.passphrase_file)
    session.check_requests()


def test_the_warning_without_any_passphrase_setting(session: Session) -> None:
    """GET config as a host without OPENWATCH_BACKUP_PASSPHRASE(_FILE) answers it."""
    page = session.page

    def no_passphrase(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        body.update(passphrase_set=False, passphrase_source=None, passphrase_problem=(
            "no passphrase for config bundles is set: set OPENWATCH_BACKUP_PASSPHRASE_FILE to a file (mode 600) "
            "holding it on its first line"))
        route.fulfill(response=answer, body=json.dumps(body))

    page.route(re.compile(r".*/config$"), no_passphrase)
    session.use_token()

    expect(page.locator("#config-warning")).to_have_text(re.compile(
        r"^Config bundles are off: set OPENWATCH_BACKUP_PASSPHRASE_FILE to a file \(mode 600\) holding the "
        r"passphrase on its first line, in the environment of the API and the worker\."))
    expect(page.get_by_role("button", name="Back up config now")).to_be_disabled()
    expect(page.locator("#config-state")).to_have_text(
        "Back up config now is off: no passphrase for config bundles is set: set OPENWATCH_BACKUP_PASSPHRASE_FILE "
        "to a file (mode 600) holding it on its first line")
    session.check_requests()
