"""The admin page's off-site parts in Debian's Chromium (tests/test_admin_page.py's browser, page and session
fixtures) against the embedded stack with off-site copies on moto's S3 over HTTP: each backup's copies as badges
(a failed one with its error on hover), the copies panel, "Test connection" passing against moto, and the button
off, with the reason, when no bucket is configured."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Route, expect

from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.devstack.stack import EmbeddedStack
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from tests import test_admin_page as base
from tests.support.moto_server import ACCESS_KEY, REGION, SECRET_KEY, raw_client
from tests.support.moto_server import PREFIX as S3_PREFIX
from tests.support.offsite import s3_env
from tests.support.offsite_copies import backup_keys, copy_offsite
from tests.support.page_stack import page_stack
from tests.test_admin_page import SIZE, Session

pytestmark = pytest.mark.slow
# The browser and the page of tests/test_admin_page.py; `session` takes this module's `stack` below.
playwright, browser, session = base.playwright, base.browser, base.session
SCREENSHOT = base.ARTIFACTS / "admin-page-offsite.png"
FAILED_COPY = "cannot reach bucket: the connection to http://127.0.0.1:9 refused (test)"


@pytest.fixture(scope="module")
def offsite_bucket(moto_endpoint: str) -> str:
    name = f"owb-page-{uuid.uuid4().hex[:12]}"
    raw_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, offsite_bucket: str) -> Iterator[EmbeddedStack]:
    """The page's stack (as tests/test_admin_page.py's) with off-site copies on: the bucket's settings and the test
    credentials in the environment of the API, the worker and beat."""
    credentials = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                   "AWS_EC2_METADATA_DISABLED": "true"}
    with page_stack(tmp_path_factory.mktemp("admin-page-offsite") / "var", redis_db=12, beat=True,
                    extra_env={**s3_env(moto_endpoint, offsite_bucket), **credentials}) as embedded:
        yield embedded


@pytest.fixture
def stack_service(stack: EmbeddedStack, aws_env: pytest.MonkeyPatch) -> Iterator[BackupService]:
    """The stack's catalog and storages, in this process (to make backups and copies directly)."""
    env = stack.env
    overrides = {name.removeprefix("OPENWATCH_BACKUP_").lower(): value for name, value in env.items()
                 if name.startswith("OPENWATCH_BACKUP_S3_")}
    with BackupService(load_settings(database_url=env["OPENWATCH_DATABASE_URL"], dir=env["OPENWATCH_BACKUP_DIR"],
                                     **overrides)) as service:
        yield service


def _backup(service: BackupService) -> str:
    run = service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    assert run.status == "succeeded", run.error
    return str(run.id)


def test_copies_badges_panel_and_connection_test(session: Session, stack_service: BackupService,
                                                 offsite_bucket: str) -> None:
    page = session.page
    service = stack_service
    copied = service.get_run(_backup(service))
    copy_offsite(service, copied)
    failed = service.get_run(_backup(service))
    copy_offsite(service, failed, verify=False)
    assert service.copies.failed(failed.id, CopyStorage.S3, FAILED_COPY)
    session.use_token()

    # The runs table: a badge per copy, text and colour; the failed one says why on hover.
    s3_badge = session.row(str(copied.id)).locator('td.copies .badge[data-storage="s3"]')
    expect(s3_badge).to_have_text("s3 verified")
    expect(s3_badge).to_have_class(re.compile(r"\bverified\b"))
    expect(session.row(str(copied.id)).locator('td.copies .badge[data-storage="local"]')).to_have_text(
        re.compile(r"^local (pending|verified)$"))
    failed_badge = session.row(str(failed.id)).locator('td.copies .badge[data-storage="s3"]')
    expect(failed_badge).to_have_text("s3 failed")
    expect(failed_badge).to_have_attribute("title", f"s3 copy failed: {FAILED_COPY}")
    expect(session.cell(str(copied.id), 7)).to_contain_text("s3 verified")  # the Copies column, before Actions

    # The run's copies: where each is, its size, when it was verified and re-read.
    opener = session.row(str(copied.id)).get_by_role("button", name=re.compile("^Copies"))
    opener.click()
    expect(page.locator("#copies-title")).to_have_text(f"Copies of full run {str(copied.id)[:8]}")
    expect(page.locator("#copies-title")).to_be_focused()
    s3_row = page.locator('#copies tr[data-storage="s3"]')
    key, _ = backup_keys(copied)
    expect(s3_row.locator("td").nth(0)).to_have_text("off-site (S3)")
    expect(s3_row.locator("td").nth(2)).to_have_text(f"s3://{offsite_bucket}/{S3_PREFIX}/{key}")
    expect(s3_row.locator("td").nth(3)).to_have_text(SIZE)
    expect(s3_row.locator("td").nth(4).locator("time")).to_have_count(1)
    expect(s3_row.locator("td").nth(5)).to_have_text("-")
    expect(page.locator('#copies tr[data-storage="local"] td').nth(2)).to_have_text(
        f"{session.stack.env['OPENWATCH_BACKUP_DIR']}/{key}")
    page.get_by_role("button", name="Close copies").click()
    expect(page.locator("#copies-panel")).to_be_hidden()
    expect(opener).to_be_focused()

    # The off-site card: where copies go, and the connection test against moto, step by step.
    expect(page.locator("#offsite-bucket")).to_have_text(offsite_bucket)
    expect(page.locator("#offsite-prefix")).to_have_text(S3_PREFIX)
    expect(page.locator("#offsite-endpoint")).to_have_text(session.stack.env["OPENWATCH_BACKUP_S3_ENDPOINT_URL"])
    button = page.get_by_role("button", name="Test connection")
    expect(button).to_be_enabled()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/offsite/test")) as tested:
        button.click()
    assert tested.value.status == 200
    assert SECRET_KEY not in tested.value.text()
    expect(page.locator("#offsite-summary")).to_have_text("The connection works.")
    steps = page.locator("#offsite-steps li")
    expect(steps).to_have_count(4)
    assert [steps.nth(i).get_attribute("data-step") for i in range(4)] == ["put", "head", "get", "delete"]
    expect(page.locator('#offsite-steps li[data-ok="true"]')).to_have_count(4)
    expect(steps.first).to_contain_text(re.compile(r"^ok put \(\d+ ms\)$"))
    assert raw_client(session.stack.env["OPENWATCH_BACKUP_S3_ENDPOINT_URL"]).list_objects_v2(
        Bucket=offsite_bucket, Prefix=f"{S3_PREFIX}/.openwatch-probe-").get("KeyCount") == 0
    opener.click()  # the copies panel open again, for the screenshot
    expect(page.locator("#copies-panel")).to_be_visible()
    base.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    session.check_requests()


def test_the_test_button_is_off_without_a_bucket(session: Session) -> None:
    """GET settings as a host without OPENWATCH_BACKUP_S3_BUCKET answers it: the button is disabled and says why."""
    page = session.page

    def no_offsite(route: Route) -> None:
        if route.request.method != "GET":
            route.fallback()
            return
        answer = route.fetch()
        body = answer.json()
        body["offsite"] = {"configured": False, "bucket": None, "prefix": None, "region": None, "endpoint": None}
        route.fulfill(response=answer, body=json.dumps(body))

    page.route(re.compile(r".*/settings$"), no_offsite)
    session.use_token()

    expect(page.locator("#offsite-state")).to_contain_text("Off-site copies are off: set OPENWATCH_BACKUP_S3_BUCKET")
    expect(page.get_by_role("button", name="Test connection")).to_be_disabled()
    expect(page.get_by_role("button", name="Test connection")).to_have_attribute("aria-describedby", "offsite-state")
    expect(page.locator("#offsite-facts")).to_be_hidden()
    session.check_requests()
