"""The settings form on the admin page (issue 14 item 6), in Debian's Chromium against the embedded stack, at 1366
px and at 390 px, in the Europe/Berlin time zone: each cron read back in words as it is typed (the server's words,
GET settings/cron-preview) with the local time; errors under their field in words; retention inputs bounded by the
server's limits. A failing test keeps a screenshot at tests/artifacts/settings-page-<test>-<width>.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect

from openwatch_backup.devstack.stack import EmbeddedStack
from tests import test_admin_page as base
from tests.support.page_session import api_client, page_session
from tests.support.page_stack import page_stack
from tests.test_admin_page import Session

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]
ZONE = "Europe/Berlin"
MINUTE_61 = "the minute '61' is not valid (61 is more than 59); it takes 0-59, e.g. 30, */15 or 0,30"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with page_stack(tmp_path_factory.mktemp("settings-page") / "var", redis_db=6, beat=False) as embedded:
        yield embedded


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack) -> Iterator[Session]:
    with api_client(stack) as client:
        before = client.get("settings").json()
    try:
        with page_session(request, browser, stack, name="settings-page", width=request.param, timezone_id=ZONE,
                          locale="en-GB") as opened:
            opened.use_token()
            expect(opened.page.get_by_label("Backup cron")).not_to_have_value("")  # GET settings answered
            yield opened
    finally:
        with api_client(stack) as client:  # the next width starts from the same settings
            client.put("settings", json={"schedule": before["schedule"], "retention": before["retention"]})


def _previews(session: Session) -> list[str]:
    """The expressions the page asked GET settings/cron-preview about, in order."""
    asked = [parse_qs(urlsplit(r.url).query).get("expr", [""])[0] for r in session.requests
             if urlsplit(r.url).path.endswith("/settings/cron-preview")]
    return [expr for expr in asked if expr]


def _fits(session: Session, selector: str) -> None:
    box = session.page.locator(selector).bounding_box()
    width = session.page.evaluate("document.documentElement.clientWidth")
    assert box is not None, selector
    assert box["x"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= width + 1, (selector, box, width)


def test_cron_in_words_with_the_local_time_and_next_runs(session: Session) -> None:
    page = session.page
    cron = page.get_by_label("Backup cron")
    hint = page.locator("#cron-backup-hint")
    expect(hint).to_have_attribute("aria-live", "polite")
    expect(cron).to_have_attribute("aria-describedby", re.compile(r"\bcron-backup-hint\b"))
    # The value loaded is read back at once, and said to be the stored one.
    expect(hint.locator(".cron-words")).to_contain_text(re.compile(r"^daily at \d\d:00 UTC, \d\d:00 your time"))
    expect(hint).to_contain_text("(set in the ")

    asked = len(_previews(session))
    with page.expect_response(lambda r: "/settings/cron-preview" in r.url and "30+1" in r.url) as answered:
        cron.fill("")
        cron.press_sequentially("30 1 * * *", delay=40)  # 10 keys, 40 ms apart: one debounced question
    preview = answered.value.json()
    assert preview["text"] == "daily at 01:30 UTC"
    local = datetime.fromisoformat(preview["next_runs"][0].replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE))
    words = hint.locator(".cron-words")
    expect(words).to_have_text(f"daily at 01:30 UTC, {local:%H:%M} your time ({ZONE})")
    assert f"{local:%H:%M}" == "02:30"  # December: CET, UTC+1
    times = hint.locator(".cron-next time")
    expect(times).to_have_count(3)
    for index, iso in enumerate(preview["next_runs"]):
        expect(times.nth(index)).to_have_attribute("datetime", iso)
        expect(times.nth(index)).to_contain_text("02:30")
    expect(hint).to_contain_text("(not saved yet)")
    typed = _previews(session)[asked:]
    assert typed[-1] == "30 1 * * *"
    assert len(typed) <= 3, typed  # debounced: not one question per key
    expect(page.locator("#cron-backup-error")).to_be_hidden()
    expect(cron).not_to_have_attribute("aria-invalid", "true")

    # Steps and weekdays, in the server's words; a weekly one names the local weekday only when it differs.
    cron.fill("0 */6 * * *")
    expect(words).to_have_text("at minute 0 of every 6th hour (00:00, 06:00, 12:00 and 18:00 UTC)")
    cron.fill("0 3 * * sun")
    expect(words).to_have_text(f"every Sunday at 03:00 UTC, 04:00 your time ({ZONE})")
    cron.fill("30 23 * * sat")
    expect(words).to_have_text(f"every Saturday at 23:30 UTC, Sunday 00:30 your time ({ZONE})")
    _fits(session, "#cron-backup-hint")
    assert not session.problems, session.problems


def test_a_bad_cron_is_explained_under_its_field_and_save_is_refused(session: Session) -> None:
    page = session.page
    cron = page.get_by_label("Backup cron")
    with session.api() as client:
        stored = client.get("settings").json()["schedule"]["backup"]
    cron.fill("61 * * * *")
    error = page.locator("#cron-backup-error")
    expect(error).to_have_text(MINUTE_61)  # from the preview, before any Save
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(cron).to_have_attribute("aria-describedby", re.compile(r"^cron-backup-error\b"))
    expect(page.locator("#cron-backup-hint")).to_have_text("")

    with page.expect_response(lambda r: r.request.method == "PUT") as saving:
        page.get_by_role("button", name="Save").click()
    assert saving.value.status == 422
    refused = saving.value.json()
    assert refused["errors"] == [{"field": "schedule.backup", "message": MINUTE_61}]
    expect(error).to_have_text(MINUTE_61)
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(cron).to_be_focused()
    expect(page.locator("#settings-msg")).to_have_text(refused["detail"])
    assert "greater_than" not in error.inner_text()
    assert "Input should" not in refused["detail"]
    _fits(session, "#cron-backup-error")
    with session.api() as client:
        assert client.get("settings").json()["schedule"]["backup"] == stored

    # Fixed as it is typed: the words come back, the mark goes.
    cron.fill("0 2 * * *")
    expect(error).to_be_hidden()
    expect(cron).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#cron-backup-hint .cron-words")).to_contain_text("daily at 02:00 UTC")
    assert not session.problems, session.problems


def test_retention_inputs_carry_the_servers_bounds_and_refuse_past_them(session: Session) -> None:
    page = session.page
    with session.api() as client:
        settings = client.get("settings").json()
    limits: dict[str, Any] = settings["limits"]
    assert limits["days"] == {"min": 1, "max": 36_500, "step": "1"}
    for key, limit in limits.items():
        field = page.locator(f"#ret-{key}")
        expect(field).to_have_attribute("min", str(int(limit["min"])))
        expect(field).to_have_attribute("max", str(int(limit["max"])))
        expect(field).to_have_attribute("step", limit["step"])

    days = page.get_by_label("Keep database backups (days)")
    days.fill("40000")
    assert days.evaluate("input => input.validity.rangeOverflow") is True  # the browser's own check agrees
    assert "36500" in days.evaluate("input => input.validationMessage").replace(",", "")
    keep_last = page.get_by_label("Keep last (verified)")
    keep_last.fill("-1")
    puts: list[Any] = []
    page.on("request", lambda r: puts.append(r) if r.method == "PUT" else None)
    page.get_by_role("button", name="Save").click()
    error = page.locator("#ret-days-error")
    expect(error).to_have_text("must be at most 36,500")
    expect(days).to_have_attribute("aria-invalid", "true")
    expect(days).to_have_attribute("aria-describedby", re.compile(r"^ret-days-error\b"))
    expect(page.locator("#ret-keep_last-error")).to_have_text("must be at least 0")
    expect(page.locator("#settings-msg")).to_have_text("Not saved: fix the values marked above.")
    expect(days).to_be_focused()
    _fits(session, "#ret-days-error")
    assert puts == []  # refused before asking the server, with the server's bounds and words

    # The server says the same, in the same words, when asked directly.
    with session.api() as client:
        answer = client.put("settings", json={"retention": {"days": 40_000}})
    assert answer.json()["errors"] == [{"field": "retention.days", "message": "must be at most 36,500"}]

    days.fill("45")
    expect(error).to_be_hidden()
    expect(days).not_to_have_attribute("aria-invalid", "true")
    keep_last.fill("2")
    with page.expect_request(lambda r: r.method == "PUT") as saving:
        page.get_by_role("button", name="Save").click()
    assert base._post_json(saving.value) == {"retention": {"days": 45, "keep_last": 2}}
    expect(page.locator("#settings-msg")).to_have_text("Saved")
    expect(page.locator("#settings-form .field-error:not([hidden])")).to_have_count(0)
    assert not session.problems, session.problems
