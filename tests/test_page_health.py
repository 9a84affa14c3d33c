"""The health card on the admin page (issue 14 item 3), in Debian's Chromium against the embedded stack, at 1366 px
and at 390 px, in the Australia/Adelaide time zone (UTC+10:30 in December: UTC and local differ by hours and
minutes).

Real runs through the service on the stack's catalog: three full backups, the newest verified, and a restore drill
(the database corruption row of the RTO table is measured; no prune applied, so checks fail). The size budget is
set through the API as the settings form does. The chart is checked with those backups, then with 34 older ones
written into backup_runs (it keeps the newest 30). A failing test keeps a screenshot at
tests/artifacts/health-page-<test>-<width>.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.retention import GIB
from openwatch_backup.devstack.stack import EmbeddedStack
from tests import test_admin_page as base
from tests.support.page_session import page_session
from tests.support.page_stack import page_stack, service_of
from tests.test_admin_page import Session

pytestmark = pytest.mark.slow
playwright, browser = base.playwright, base.browser
WIDTHS = [1366, 390]
ZONE = "Australia/Adelaide"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    with page_stack(tmp_path_factory.mktemp("health-page") / "var", redis_db=10, beat=False) as embedded:
        yield embedded


@pytest.fixture(scope="module")
def backups(stack: EmbeddedStack) -> list[BackupRun]:
    """Three succeeded full backups, newest first; the newest verified and restored by a drill."""
    with service_of(stack) as service:
        made = [service.backup(service.build_request(), requested_by="test") for _ in range(3)]
        assert all(run.status == "succeeded" for run in made), [run.error for run in made]
        verify, _ = service.verify(str(made[-1].id), requested_by="test")
        drill = service.drill(requested_by="test")
        assert (verify.status, drill.status) == ("succeeded", "succeeded"), (verify.error, drill.error)
        return [service.get_run(str(run.id)) for run in reversed(made)]


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def session(request: pytest.FixtureRequest, browser: Browser, stack: EmbeddedStack,
            backups: list[BackupRun]) -> Iterator[Session]:
    with page_session(request, browser, stack, name="health-page", width=request.param, timezone_id=ZONE,
                      locale="en-US") as opened:
        opened.use_token()
        yield opened


def _status(session: Session) -> dict[str, Any]:
    with session.api() as client:
        return dict(client.get("status").json())


# The page's formatting (common.js humanBytes, humanSeconds), to compare its words with the API's numbers.
def to_fixed(value: float, digits: int) -> str:
    """JavaScript's toFixed: the double's exact value, a tie rounded up (Python's format rounds it to even)."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP))


def human_bytes(count: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value, unit = float(count), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{int(count)} B" if unit == 0 else f"{to_fixed(value, 2 if value < 10 else 1)} {units[unit]}"


def human_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{to_fixed(seconds, 1)} s"
    total = int(seconds + 0.5)
    hours, minutes, secs = total // 3600, total // 60 % 60, total % 60
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def clock(at: datetime, zone: ZoneInfo) -> str:
    """"07:00", with "Tue 2 Dec " first when that is not today in the zone (health.js clock)."""
    there = at.astimezone(zone)
    time = f"{there:%H:%M}"
    return time if there.date() == datetime.now(zone).date() else f"{there:%a} {there.day} {there:%b} {time}"


def _fits(session: Session, selector: str) -> None:
    width = session.page.evaluate("document.documentElement.clientWidth")
    box = session.page.locator(selector).evaluate(
        "el => ({right: el.getBoundingClientRect().right, scroll: el.scrollWidth, client: el.clientWidth})")
    assert box["right"] <= width, (selector, box, width)
    wider = session.page.locator(f"{selector} *").evaluate_all(
        "(nodes, right) => nodes.filter((n) => n.getBoundingClientRect().right > right + 0.5)"
        ".map((n) => n.tagName + '#' + n.id + '.' + n.className)", box["right"])
    assert box["scroll"] <= box["client"], (selector, box, wider)


def test_the_verdict_counts_the_failing_checks_and_next_runs_say_utc_and_local(session: Session,
                                                                                backups: list[BackupRun]) -> None:
    page = session.page
    status = _status(session)
    failing = status["failing_checks"]
    assert "retention_applied" in failing  # no prune applied yet
    assert status["healthy"] is False
    verdict = page.locator("#health-verdict")
    expect(verdict).to_have_text(status["verdict"])
    many = "check failing" if len(failing) == 1 else "checks failing"
    assert status["verdict"].startswith(f"Unhealthy: {len(failing)} {many}"), status["verdict"]
    expect(verdict).to_have_class(re.compile(r"\bunhealthy\b"))
    expect(page.locator("#health-failing-list li")).to_have_count(len(failing))

    newest = backups[0]
    assert newest.size_bytes is not None
    assert newest.started_at is not None
    assert newest.finished_at is not None
    took = (newest.finished_at - newest.started_at).total_seconds()
    expect(page.locator("#health-last")).to_contain_text(
        f"{human_bytes(newest.size_bytes)} in {human_seconds(took)}, full, ")
    expect(page.locator("#health-last a")).to_have_attribute("href", f"#run={newest.id}")

    zone = ZoneInfo(ZONE)
    for key in ("backup", "drill"):
        at = datetime.fromisoformat(status["next_runs"][key])
        cell = page.locator(f'#health-next dd[data-next="{key}"]')
        expect(cell.locator("time")).to_have_attribute("datetime", status["next_runs"][key])
        expect(cell.locator("time")).to_have_text(f"{clock(at, UTC)} UTC · {clock(at, zone)} local ({ZONE})")
        text = cell.inner_text()
        match = re.fullmatch(r"in (\d+) h(?: (\d+) min)? · .+", text)
        assert match, text
        shown = int(match[1]) * 60 + int(match[2] or 0)
        expected = (at - datetime.now(UTC)) / timedelta(minutes=1)
        assert abs(shown - expected) <= 2, (text, expected)
    expect(page.locator("#health-next dt")).to_have_text(["Backup", "Restore drill"])  # no Docker, no off-site
    _fits(session, 'section[aria-labelledby="health-title"]')
    session.check_requests()


def test_storage_against_the_size_budget_and_without_one(session: Session) -> None:
    page = session.page
    used = page.locator("#health-used")
    meter = page.locator("#health-meter")
    expect(page.locator("#health-budget")).to_have_text("no size budget")
    expect(meter).to_be_hidden()

    with session.api() as client:
        saved = client.put("settings", json={"retention": {"size_budget_gib": 0.5}})
        assert saved.status_code == 200, saved.text
    try:
        page.get_by_role("button", name="Refresh").click()
        status = _status(session)
        budget, stored = status["size_budget_bytes"], status["storage_used_bytes"]
        assert budget == GIB // 2
        share = 100 * stored / budget
        words = f"{share:.1f}% of the 512.0 MiB size budget" if share < 10 else \
            f"{round(share)}% of the 512.0 MiB size budget"
        expect(page.locator("#health-budget")).to_have_text(words)
        expect(used).to_have_text(human_bytes(stored))
        expect(meter).to_be_visible()
        expect(meter).to_have_attribute("aria-label", f"Storage used: {words}")
        assert meter.evaluate("m => [m.max, m.value]") == [budget, stored]
        expect(page.get_by_role("meter", name=f"Storage used: {words}")).to_have_count(1)
    finally:
        with session.api() as client:
            assert client.put("settings", json={"retention": {"size_budget_gib": 0}}).status_code == 200
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#health-budget")).to_have_text("no size budget")
    expect(meter).to_be_hidden()
    session.check_requests()


def test_the_measured_rto_per_scenario(session: Session) -> None:
    page = session.page
    rows = page.locator("#health-rto tbody tr")
    status = _status(session)
    expect(rows).to_have_count(4)
    assert rows.evaluate_all("rows => rows.map((tr) => tr.dataset.scenario)") == \
        [row["scenario"] for row in status["rto"]]
    drill = next(row for row in status["rto"] if row["scenario"] == "database_corruption")
    assert drill["state"] == "ok", drill
    assert drill["seconds"] is not None

    def cells(scenario: str) -> list[str]:
        return [text.strip() for text in page.locator(f'#health-rto tr[data-scenario="{scenario}"] > *')
                .evaluate_all("cells => cells.map((c) => c.innerText)")]

    measured = cells("database_corruption")
    assert measured[:3] == ["database corruption", human_seconds(drill["seconds"]), "15-30 min"], measured
    assert re.match(r"^\d+\.\d h ago \(", measured[3]), measured
    assert measured[4] == "ok", measured
    assert cells("volume_loss") == ["volume loss", "never measured", "15-30 min", "-", "warn"]
    assert cells("container_restart")[1:] == ["stated, not measured", "< 2 min", "-", "stated"]
    _fits(session, 'section[aria-labelledby="health-title"]')
    session.check_requests()


def _chart_matches(session: Session, points: list[dict[str, Any]]) -> None:
    """The chart has one bar and one dot per backup; its text alternative says the same numbers, oldest first."""
    page = session.page
    chart = page.locator("#health-chart svg")
    expect(chart.locator(".size-point")).to_have_count(len(points))
    expect(chart.locator(".duration-point")).to_have_count(len(points))
    oldest_first = list(reversed(points))
    sizes = [p["size_bytes"] for p in points]
    durations = [p["duration_seconds"] for p in points]
    summary = (f"{len(points)} backups, size {human_bytes(min(sizes))} to {human_bytes(max(sizes))}, "
               f"duration {human_seconds(min(durations))} to {human_seconds(max(durations))}")
    expect(page.locator("#health-chart .chart-summary")).to_have_text(summary)
    expect(chart.locator("desc")).to_have_text(summary)
    expect(chart).to_have_attribute("role", "img")
    expect(page.get_by_role("img", name=re.compile(r"^Backup size and duration"))).to_have_count(1)
    table = page.locator("#health-chart table.chart-table tbody tr")
    expect(table).to_have_count(len(points))
    shown = table.evaluate_all("rows => rows.map((tr) => [...tr.cells].slice(1).map((td) => td.textContent))")
    assert shown == [[p["kind"], human_bytes(p["size_bytes"]), human_seconds(p["duration_seconds"])]
                     for p in oldest_first]
    titles = chart.locator(".size-point title").all_text_contents()
    assert titles[-1].endswith(f": {human_bytes(points[0]['size_bytes'])}, {human_seconds(durations[0])}")
    expect(chart).to_have_attribute("viewBox", re.compile(r"^0 0 \d+ \d+$"))
    _fits(session, "#health-chart")


def test_the_chart_of_the_backups_so_far(session: Session, backups: list[BackupRun]) -> None:
    points = _status(session)["recent_backups"]
    assert [p["id"] for p in points] == [str(run.id) for run in backups]
    _chart_matches(session, points)
    session.check_requests()


@pytest.fixture(scope="module")
def older(stack: EmbeddedStack, backups: list[BackupRun]) -> None:
    """34 older full backups written into backup_runs (1-34 days old, 1-34 MiB, 1-34 s): the chart keeps 30."""
    with psycopg.connect(stack.env["OPENWATCH_DATABASE_URL"], autocommit=True) as conn:
        for i in range(1, 35):
            conn.execute(
                "INSERT INTO backup_runs (id, kind, status, trigger, created_at, started_at, finished_at, "
                "size_bytes) VALUES (gen_random_uuid(), 'full', 'succeeded', 'schedule', "
                "now() - make_interval(days => %s), now() - make_interval(days => %s), "
                "now() - make_interval(days => %s, secs => -%s), %s)", (i, i, i, i, i << 20))


def test_the_chart_keeps_the_newest_30(session: Session, backups: list[BackupRun], older: None) -> None:
    session.page.get_by_role("button", name="Refresh").click()
    points = _status(session)["recent_backups"]
    assert len(points) == 30
    assert [p["id"] for p in points[:3]] == [str(run.id) for run in backups]
    assert [p["size_bytes"] for p in points[3:]] == [i << 20 for i in range(1, 28)]
    _chart_matches(session, points)
    session.check_requests()
