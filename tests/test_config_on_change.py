"""On change: the dispatcher's config check (once per config_check_minutes, a bundle only when the keyed digest of
the inputs changed), and the checklist's three config items (passphrase, bundle, certificates).

Real PostgreSQL, real files, real bundles (the queued runs are carried out), a real webhook receiver for the
alerts; the check's clock is passed in, so "an hour later" needs no sleeping."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.operations.checklist import CheckItem
from openwatch_backup.operations.config_schedule import CHECKED_KEY
from openwatch_backup.service import BackupService
from tests.celery_support import WebhookReceiver
from tests.support.certificates import certificate
from tests.support.prune import Env, make_env, sql

CLI = Path(sys.executable).with_name("openwatch-backup")
NO_PASSPHRASE = ("no passphrase for config bundles is set: set OPENWATCH_BACKUP_PASSPHRASE_FILE to a file (mode 600) "
                 "holding it on its first line")
HOUR = timedelta(minutes=60)


@pytest.fixture
def webhook() -> Any:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsample\n-----END OPENSSH "
                                       "PRIVATE KEY-----\n")
    (folder / "id_ed25519").chmod(0o600)
    return folder


def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text("a long sample passphrase for the on-change test\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, keys: Path, webhook: WebhookReceiver) -> Env:
    return make_env(backup_env, make_service, monkeypatch, config_paths=str(keys), config_env_snapshot=False,
                    passphrase_file=passphrase_file(tmp_path), webhook_url=webhook.url)


def config_runs(service: BackupService) -> list[BackupRun]:
    return service.recorder.list(limit=100, kind="config")


def check(service: BackupService, now: datetime) -> list[BackupRun]:
    """One dispatcher check at `now`; the queued bundle is carried out, as the worker would."""
    queued = service.dispatch_config(now)
    for kind, run_id in queued:
        assert kind == "config"
        assert service.execute_backup(run_id).status == "succeeded"
    return [service.get_run(str(run_id)) for _, run_id in queued]


def test_a_bundle_is_taken_only_when_the_inputs_change(env: Env, keys: Path) -> None:
    service = env.service
    start = datetime.now(UTC)

    first = check(service, start)

    assert [(r.kind, r.trigger, r.requested_by) for r in first] == [("config", "schedule",
                                                                    "celery-beat (first bundle)")]
    stored = service.settings_store.get(CHECKED_KEY)
    assert stored == {"at": start.isoformat(), "outcome": "first bundle", "detail": "no config bundle yet"}
    assert first[0].details["inputs_digest"] not in json.dumps(service.settings_store.all())  # never stored
    assert service.next_config_check(start + timedelta(minutes=5)) == start + HOUR

    # Within the interval: no check at all, even though a file changed meanwhile.
    (keys / "known_hosts").write_text("host ssh-ed25519 AAAA\n")
    assert check(service, start + timedelta(minutes=59)) == []
    assert service.settings_store.get(CHECKED_KEY)["at"] == start.isoformat()

    # An interval later: changed -> exactly one new bundle.
    changed = check(service, start + HOUR)
    assert [r.requested_by for r in changed] == ["celery-beat (changed)"]
    assert changed[0].details["inputs_digest"] != first[0].details["inputs_digest"]

    # Unchanged at the next check: no bundle; the check time moves on.
    assert check(service, start + 2 * HOUR) == []
    assert service.settings_store.get(CHECKED_KEY) == {"at": (start + 2 * HOUR).isoformat(), "outcome": "unchanged",
                                                       "detail": "unchanged since the newest bundle"}

    # A mode alone is a change.
    (keys / "known_hosts").chmod(0o600)
    assert [r.requested_by for r in check(service, start + 3 * HOUR)] == ["celery-beat (changed)"]
    assert check(service, start + 4 * HOUR) == []
    assert len(config_runs(service)) == 3


def test_the_interval_is_a_setting(env: Env, make_service: Callable[..., BackupService], tmp_path: Path,
                                   keys: Path) -> None:
    service = make_service(env.url, env.dir, config_paths=str(keys), config_env_snapshot=False,
                           passphrase_file=passphrase_file(tmp_path), config_check_minutes=5)
    start = datetime.now(UTC)
    assert len(check(service, start)) == 1
    (keys / "id_ed25519").write_text("another key\n")
    assert check(service, start + timedelta(minutes=4)) == []
    assert len(check(service, start + timedelta(minutes=5))) == 1


def test_no_passphrase_no_check(env: Env, make_service: Callable[..., BackupService], keys: Path) -> None:
    service = make_service(env.url, env.dir, config_paths=str(keys))

    assert service.dispatch_config(datetime.now(UTC)) == []
    assert service.settings_store.get(CHECKED_KEY) is None
    assert service.next_config_check() is None
    assert config_runs(service) == []
    items = {i.key: i for i in service.checklist()}
    assert (items["config_passphrase"].status.value, items["config_passphrase"].detail) == ("fail", NO_PASSPHRASE)
    assert "OPENWATCH_BACKUP_PASSPHRASE_FILE" in items["config_passphrase"].fix
    assert (items["config_bundle"].status.value, items["certificates"].status.value) == ("skip", "skip")


def test_check_cli_without_passphrase_fails_with_the_line(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    result = subprocess.run([str(CLI), "check", "--json"], capture_output=True, text=True, timeout=60)

    assert result.returncode == 1, result.stderr
    items = {i["key"]: i for i in json.loads(result.stdout)["items"]}
    assert (items["config_passphrase"]["status"], items["config_passphrase"]["detail"]) == ("fail", NO_PASSPHRASE)

    shown = subprocess.run([str(CLI), "schedule", "--json"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["config_check"] == {
        "every_minutes": 60, "next_check": None,
        "note": "not checked: no passphrase for config bundles is set (set OPENWATCH_BACKUP_PASSPHRASE_FILE)"}


def test_a_missing_input_alerts_once_per_interval_and_makes_no_run(env: Env, keys: Path,
                                                                    webhook: WebhookReceiver) -> None:
    service = env.service
    start = datetime.now(UTC)
    assert len(check(service, start)) == 1
    (keys / "id_ed25519").unlink()
    keys.rmdir()
    line = f"config path {keys} does not exist: create it or remove it from OPENWATCH_BACKUP_CONFIG_PATHS"

    for minutes in (60, 61, 62, 90, 119):  # beat ticks every minute; one check per interval
        assert service.dispatch_config(start + timedelta(minutes=minutes)) == []
    assert [d.body["message"] for d in webhook.events("config_check_failed")] == [f"config bundle check: {line}"]
    assert service.dispatch_config(start + 2 * HOUR) == []
    assert len(webhook.events("config_check_failed")) == 2
    assert len(config_runs(service)) == 1  # no failed run per tick
    stored = service.settings_store.get(CHECKED_KEY)
    assert (stored["outcome"], stored["detail"]) == ("problem", line)

    from openwatch_backup.operations.checklist import run_checklist

    items = {i.key: i for i in run_checklist(service.context, last_config_check=stored)}
    assert items["config_bundle"].status.value == "fail"
    assert items["config_bundle"].detail == f"the on-change check at {stored['at']} could not read the inputs: {line}"


def _items(service: BackupService) -> dict[str, CheckItem]:
    return {i.key: i for i in service.checklist()}


def test_checklist_config_items(env: Env, keys: Path) -> None:
    service = env.service
    items = _items(service)
    assert (items["config_passphrase"].status.value, items["config_passphrase"].detail) == (
        "ok", "set (OPENWATCH_BACKUP_PASSPHRASE_FILE)")
    assert (items["config_bundle"].status.value, items["config_bundle"].detail) == ("fail", "no config bundle yet")
    assert items["config_bundle"].fix == "run `openwatch-backup backup --kind config`"

    (keys / "site.crt").write_bytes(certificate("CN=soon.example,O=Sample", days=10))
    (keys / "chain.pem").write_bytes(certificate("CN=later.example", days=300))
    run = check(service, datetime.now(UTC))[0]
    member = str(keys / "site.crt").lstrip("/")
    expires = datetime.fromisoformat(next(c["not_after"] for c in run.details["certificates"]
                                          if c["member"] == member)).date().isoformat()

    items = _items(service)
    certs = items["certificates"]
    assert (certs.key, certs.status.value) == ("certificates", "warn")
    assert certs.detail == f"CN=soon.example,O=Sample ({member}) expires on {expires}, in 10 day(s)"
    assert certs.fix == f"renew the certificate in {member}; the next on-change check takes a new bundle"
    bundle = items["config_bundle"]
    assert (bundle.status.value, bundle.detail) == (
        "fail", f"no verified config bundle ({run.details['artifact']}, the newest, was taken 0.0 h ago and never "
                "verified)")
    assert bundle.fix == f"run `openwatch-backup verify {str(run.id)[:8]}`"

    verified, _ = service.verify(str(run.id))
    assert verified.status == "succeeded", verified.error
    bundle = _items(service)["config_bundle"]
    assert (bundle.status.value, bundle.detail) == ("ok", f"{run.details['artifact']} taken 0.0 h ago, verified "
                                                          "0.0 h ago")

    # Already expired: the item fails.
    (keys / "site.crt").write_bytes(certificate("CN=gone.example", days=-1))
    check(service, datetime.now(UTC) + HOUR)
    certs = _items(service)["certificates"]
    assert certs.status.value == "fail"
    assert certs.detail.startswith(f"CN=gone.example ({member}) expired on ")


def test_far_certificates_are_ok(env: Env, keys: Path) -> None:
    (keys / "site.crt").write_bytes(certificate("CN=far.example", days=200))
    check(env.service, datetime.now(UTC))
    certs = _items(env.service)["certificates"]
    assert certs.status.value == "ok"
    assert certs.detail.startswith(f"1 certificate(s), the first to expire: CN=far.example "
                                   f"({str(keys / 'site.crt').lstrip('/')}) on ")
    assert certs.fix == ""


def test_a_bundles_verify_does_not_hide_a_stale_database(env: Env, webhook: WebhookReceiver) -> None:
    """The sweeper's "no verified backup for N hours" counts database backups: a config bundle verified an hour
    ago (bundles come on change, at any time) says nothing about the dumps."""
    service = env.service
    dump = service.backup(service.build_request())
    assert dump.status == "succeeded", dump.error
    sql(env.url, "UPDATE backup_runs SET created_at = now() - interval '30 hours' WHERE id = %s", dump.id)
    bundle = check(service, datetime.now(UTC))[0]
    verified, _ = service.verify(str(bundle.id))
    assert verified.status == "succeeded", verified.error

    delivery = service._stale_backup_alert(datetime.now(UTC) + HOUR)

    assert delivery is not None
    assert [d.body["message"].split(" for ")[0] for d in webhook.events("no_verified_backup")] == [
        "no backup has ever verified"]


def test_schedule_shows_the_config_check(env: Env, keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    start = datetime.now(UTC)
    check(env.service, start)
    monkeypatch.setenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", str(tmp_path / "passphrase"))
    monkeypatch.setenv("OPENWATCH_BACKUP_CONFIG_PATHS", str(keys))

    shown = subprocess.run([str(CLI), "schedule", "--json"], capture_output=True, text=True, timeout=60)

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["config_check"] == {
        "every_minutes": 60, "next_check": (start + HOUR).isoformat(),
        "last_check": {"at": start.isoformat(), "outcome": "first bundle", "detail": "no config bundle yet"}}
    human = subprocess.run([str(CLI), "schedule"], capture_output=True, text=True, timeout=60)
    assert f"config: on change, checked every 60 min, next check {(start + HOUR).isoformat()}" in human.stdout
