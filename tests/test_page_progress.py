"""Live progress on the admin page (issue 14 item 4), in Debian's Chromium against the embedded stack, at 1366 px
and at 390 px: a real "Back up now" run through the worker, watched from queued to verified.

A 5 MiB database dumps in well under a second, too fast to see a bar move; the worker's pg_dump is therefore a
wrapper (OPENWATCH_BACKUP_PG_BIN_DIR) that passes the real pg_dump's output through at a rate that makes the dump
last about DUMP_SECONDS. A first backup, taken at full speed from the CLI, gives the size estimate. A failing test
keeps a screenshot at tests/artifacts/page-progress-<test>-<width>.png.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from openwatch_backup.devstack.stack import EmbeddedStack
from tests import test_admin_page as base
from tests.support.page_session import page_session
from tests.support.page_stack import page_stack, service_of
from tests.test_admin_page import Session

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]
DUMP_SECONDS = 10
RUN_TIMEOUT_MS = 90_000
REDIS_DB = 9  # 11 was assigned, but test_admin_page.py uses 11 too and runs alongside (its worker took our tasks)

# pg_dump, slowed: `--version` answers at once; a dump's output goes through at the rate in the file `rate`.
SLOW_PG_DUMP = '''#!{python}
import os, subprocess, sys, time
REAL = {real!r}
if len(sys.argv) > 1 and sys.argv[1] in ("--version", "-V"):
    os.execv(REAL, [REAL, *sys.argv[1:]])
here = os.path.dirname(os.path.abspath(__file__))
rate = int(open(os.path.join(here, "rate")).read())
fail = os.path.exists(os.path.join(here, "fail"))  # then it breaks off after a second, as a lost server would
dump = subprocess.Popen([REAL, *sys.argv[1:]], stdout=subprocess.PIPE)
out = sys.stdout.buffer
started = time.monotonic()
while True:
    chunk = dump.stdout.read(32768)
    if not chunk:
        break
    out.write(chunk)
    out.flush()
    time.sleep(len(chunk) / rate)
    if fail and time.monotonic() - started > 1:
        dump.kill()
        sys.stderr.write("pg_dump: error: connection to server lost (test)\\n")
        sys.exit(1)
sys.exit(dump.wait())
'''


def _pg_bin() -> Path:
    """The newest installed client folder (the tool takes the oldest one at least the server's major; the newest
    is that or newer)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), key=lambda p: int(p.parent.parent.name))
    assert found, "no PostgreSQL client in /usr/lib/postgresql (apt-get install postgresql-client)"
    return found[-1].parent


@pytest.fixture(scope="module")
def own_tmp() -> Iterator[Path]:
    """Not pytest's tmp_path: pytest keeps only its last 3 base folders, so another pytest started meanwhile on this
    machine deletes them (the worker then found no pg_dump in the deleted folder)."""
    with tempfile.TemporaryDirectory(prefix="owb-page-progress-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def slow_bin(own_tmp: Path) -> Path:
    folder = own_tmp / "slow-pg-bin"
    folder.mkdir()
    real = _pg_bin()
    script = folder / "pg_dump"
    script.write_text(SLOW_PG_DUMP.format(python=sys.executable, real=str(real / "pg_dump")))
    script.chmod(0o755)
    for program in ("pg_restore", "psql"):
        (folder / program).symlink_to(real / program)
    (folder / "rate").write_text("100000000")
    return folder


@pytest.fixture(scope="module")
def stack(own_tmp: Path, slow_bin: Path) -> Iterator[EmbeddedStack]:
    env = {"OPENWATCH_BACKUP_PG_BIN_DIR": str(slow_bin), "OPENWATCH_BACKUP_HEARTBEAT_SECONDS": "0.3"}
    with page_stack(own_tmp / "var", redis_db=REDIS_DB, beat=False,
                    extra_env=env) as embedded:
        yield embedded


@pytest.fixture(scope="module")
def estimate(stack: EmbeddedStack, slow_bin: Path) -> int:
    """A full-speed backup from the CLI (in this process, the real pg_dump): what later dumps should reach. The
    wrapper's rate is set so the worker's dumps take about DUMP_SECONDS."""
    with service_of(stack) as service:
        run = service.backup(service.build_request(), requested_by="test")
    assert run.status == "succeeded", run.error
    size = int(run.details["bytes_in"])
    (slow_bin / "rate").write_text(str(max(1, size // DUMP_SECONDS)))
    return size


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack, estimate: int) -> Iterator[Session]:
    with page_session(request, browser, stack, name="page-progress", width=request.param) as opened:
        yield opened


def _percent(session: Session) -> int | None:
    text = session.page.locator("#live-percent").inner_text().strip()
    return int(text[:-1]) if re.fullmatch(r"\d+%", text) else None


def test_a_backup_shows_its_bar_steps_and_one_end_message(session: Session, estimate: int) -> None:
    page = session.page
    session.use_token()
    button = page.get_by_role("button", name="Back up now")
    steps = page.locator("#live-steps li")
    # The last backup (from the CLI, so nothing follows it) and its steps, before anything runs.
    expect(steps).to_have_count(6)
    expect(page.locator("#live-text")).to_have_text("No run in progress.")
    expect(button).to_be_enabled()
    expect(button).to_have_attribute("aria-describedby", "backup-now-reason")
    expect(page.locator("#backup-now-reason")).to_be_hidden()
    session.record_texts()

    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/runs")) as posted:
        button.click()
    assert posted.value.status == 202, posted.value.text()
    run_id = posted.value.json()["id"]
    short = run_id[:8]

    # Held while it is queued or running, with the reason said next to it (and read with the button).
    expect(button).to_be_disabled()
    expect(page.locator("#backup-now-reason")).to_have_text(
        re.compile(rf"^Backup {short} is (queued|running): Back up now is available again when it ends\.$"))

    # The bar: a percentage that grows, an ETA from the rate; the dump step is the current one.
    expect(page.locator("#live-steps-title")).to_have_text(f"Steps of full backup {short}")
    expect(page.locator("#live-eta")).to_have_text(re.compile(r"^about (\d+ s|\d+ min \d\d s) left$"),
                                                   timeout=RUN_TIMEOUT_MS)
    current = page.locator('#live-steps li[aria-current="step"]')
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("data-step", "dump")
    expect(current).to_have_text("Dump: running")
    expect(steps.nth(0)).to_have_text("Preflight: done")
    expect(steps.nth(2)).to_have_text("Manifest: pending")
    seen: list[int] = []
    deadline = time.monotonic() + DUMP_SECONDS * 3
    while time.monotonic() < deadline and (len(set(seen)) < 2 or page.locator("#live-eta").inner_text() == ""):
        value = _percent(session)
        if value is not None:
            seen.append(value)
        if len(set(seen)) >= 2:
            break
        page.wait_for_timeout(250)
    assert len(set(seen)) >= 2, f"the percentage did not move: {seen}"
    assert seen == sorted(seen), f"the percentage went back: {seen}"
    assert all(0 <= v <= 99 for v in seen), f"not 0-99% before the end: {seen}"
    assert page.locator("#live-bar").get_attribute("value") is not None  # determinate: there is an estimate
    expect(button).to_be_disabled()

    # The end: one message, in the polite live region; the button back; the steps in their final states.
    result = page.locator("#live-result")
    expect(result).to_have_text(
        re.compile(rf"^Backup {short} finished: \d+(\.\d+)? (KiB|MiB) in \d+(\.\d)? s, verified\.$"),
        timeout=RUN_TIMEOUT_MS)
    expect(result).to_have_attribute("role", "status")
    expect(result).to_have_attribute("aria-live", "polite")
    expect(button).to_be_enabled()
    expect(page.locator("#backup-now-reason")).to_be_hidden()
    expect(steps).to_have_text(["Preflight: done", "Dump: done", "Manifest: done", "Verify: done",
                                "Off-site copy: skipped (no off-site bucket)",
                                "Prune: skipped (only after a scheduled backup)"])
    expect(page.locator("#live-steps li[aria-current]")).to_have_count(0)
    expect(page.locator("#live-meter")).to_be_hidden()
    expect(page.locator("#live-text")).to_have_text("No run in progress.")

    # No stale message: the queued notice was shown, and is gone; the end message was said once and stays one.
    expect(page.locator("#notice")).to_have_text("")
    page.wait_for_timeout(4_500)  # two more polls
    seen_texts = session.seen_texts()
    assert f"Backup queued: full run {short}." in seen_texts["notice"], seen_texts
    assert seen_texts["result"] == [result.inner_text()], seen_texts
    expect(page.locator("#notice")).to_have_text("")
    with session.api() as client:
        live = client.get("status").json()["live"]
    assert live["run"]["id"] == run_id
    assert live["active"] is False
    assert [s["state"] for s in live["steps"]] == ["done", "done", "done", "done", "skipped", "skipped"]
    session.check_requests()


def test_a_failed_backup_says_why_once(session: Session, slow_bin: Path) -> None:
    page = session.page
    session.use_token()
    button = page.get_by_role("button", name="Back up now")
    expect(button).to_be_enabled()
    session.record_texts()
    (slow_bin / "fail").touch()
    try:
        with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/runs")) as posted:
            button.click()
        assert posted.value.status == 202, posted.value.text()
        short = posted.value.json()["id"][:8]
        expect(button).to_be_disabled()
        result = page.locator("#live-result")
        expect(result).to_have_text(re.compile(rf"^Backup {short} failed: pg_dump .*connection to server lost"),
                                    timeout=RUN_TIMEOUT_MS)
    finally:
        (slow_bin / "fail").unlink()
    expect(result).to_have_class(re.compile(r"\berror\b"))
    expect(button).to_be_enabled()
    expect(page.locator("#live-steps li")).to_have_text([
        "Preflight: done", re.compile(r"^Dump: failed: pg_dump .*connection to server lost"),
        "Manifest: skipped (not reached)", "Verify: skipped (the backup failed)",
        "Off-site copy: skipped (no off-site bucket)", "Prune: skipped (only after a scheduled backup)"])
    expect(page.locator("#notice")).to_have_text("")
    page.wait_for_timeout(4_500)
    seen_texts = session.seen_texts()
    assert seen_texts["result"] == [result.inner_text()], seen_texts
    session.check_requests()
