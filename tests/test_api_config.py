"""Config bundles through the API, against real PostgreSQL, real files and the real openssl CLI: GET config lists
the bundles as versions (certificates with their days left, the verify state, copies), POST config/backup queues
one run and hands back that run while it is queued, refuses with one line and queues nothing without a passphrase,
and GET config/{id}/download streams exactly the stored bytes (local, or the S3 copy when the local file is gone),
which `openssl enc -d | tar tz` opens. Only super_admin may download; no answer carries the passphrase or the
master key."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.service import BackupService
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    Services,
    Submitted,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    openwatch_auth,
)
from tests.support.moto_server import SECRET_KEY
from tests.support.offsite import s3_overrides
from tests.support.offsite_copies import copy_offsite

ADMIN = bearer("super_admin")
PASSPHRASE = f"config-api-passphrase-{uuid.uuid4().hex}"
MASTER_KEY = f"master-key-{uuid.uuid4().hex}"
NO_PASSPHRASE = ("no passphrase for config bundles is set: set OPENWATCH_BACKUP_PASSPHRASE_FILE to a file (mode 600) "
                 "holding it on its first line")


def self_signed(common_name: str, days: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days, hours=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Inputs:
    """What a bundle packs (keys, certs, .env with the master key) and the passphrase file."""

    root: Path
    passphrase_file: Path
    paths: list[Path] = field(default_factory=list)

    def overrides(self) -> dict[str, Any]:
        return {"passphrase_file": self.passphrase_file, "config_paths": ",".join(str(p) for p in self.paths[:2]),
                "env_file": self.paths[2]}


def make_inputs(root: Path) -> Inputs:
    keys, certs = root / "keys", root / "certs"
    keys.mkdir(parents=True)
    certs.mkdir()
    (keys / "id_ed25519").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n")
    (keys / "id_ed25519").chmod(0o600)
    (certs / "soon.crt").write_bytes(self_signed("soon.example.test", 10))
    (certs / "later.pem").write_bytes(self_signed("later.example.test", 400))
    env = root / ".env"
    env.write_text(f"OPENWATCH_MASTER_KEY={MASTER_KEY}\nPOSTGRES_PASSWORD=pg-secret\n")
    env.chmod(0o600)
    passphrase = root / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    passphrase.chmod(0o600)
    return Inputs(root, passphrase, [keys, certs, env])


@dataclass
class Api:
    client: Any
    services: Services
    audit: AuditLog
    submitted: Submitted
    bodies: list[bytes]

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        response = self.client.request(method, f"{PREFIX}{path}", headers=headers or ADMIN, **kwargs)
        self.bodies.append(response.content)
        return response

    def service(self) -> BackupService:
        return self.services()


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Inputs:
    # The worker's own settings go into the bundle as openwatch.env: the master key among them.
    monkeypatch.setenv("OPENWATCH_MASTER_KEY", MASTER_KEY)
    return make_inputs(tmp_path / "openwatch")


@pytest.fixture
def bodies() -> Iterator[list[bytes]]:
    """Every answer a test got: none may hold the passphrase or the master key."""
    seen: list[bytes] = []
    yield seen
    assert seen, "the test made no request"
    for body in seen:
        assert PASSPHRASE.encode() not in body
        assert MASTER_KEY.encode() not in body


def _api(catalog: Catalog, bodies: list[bytes], **overrides: Any) -> Iterator[Api]:
    audit, submitted = AuditLog(), Submitted()
    services = Services(catalog.url, catalog.backup_dir, **overrides)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=submitted)) as client:
        yield Api(client, services, audit, submitted, bodies)
    services.close()


@pytest.fixture
def api(catalog: Catalog, inputs: Inputs, bodies: list[bytes]) -> Iterator[Api]:
    yield from _api(catalog, bodies, **inputs.overrides())


@pytest.fixture
def bare_api(catalog: Catalog, inputs: Inputs, bodies: list[bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The same inputs, no passphrase setting at all."""
    monkeypatch.delenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", raising=False)
    monkeypatch.delenv("OPENWATCH_BACKUP_PASSPHRASE", raising=False)
    overrides = {k: v for k, v in inputs.overrides().items() if k != "passphrase_file"}
    yield from _api(catalog, bodies, **overrides)


def config_backup(service: BackupService) -> Any:
    run = service.backup(service.build_request(BackupKind.CONFIG), requested_by="test")
    assert run.status == "succeeded", run.error
    return run


def stored_file(catalog: Catalog, run: Any) -> Path:
    return catalog.backup_dir / "config" / run.details["artifact"]


def config_runs(service: BackupService) -> list[Any]:
    return service.recorder.list(limit=100, kind="config")


# --- GET config ------------------------------------------------------------------------------------------

def test_lists_two_bundles_as_versions_newest_first(api: Api, catalog: Catalog, inputs: Inputs) -> None:
    service = api.service()
    first = config_backup(service)
    verify, _ = service.verify(str(first.id), requested_by="test")
    second = config_backup(service)

    answer = api.request("GET", "/config")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["passphrase_set"] is True
    assert body["passphrase_source"] == "OPENWATCH_BACKUP_PASSPHRASE_FILE"
    assert body["passphrase_problem"] is None
    assert body["paths"] == [str(p) for p in inputs.paths]
    assert body["active"] is None
    versions = body["versions"]
    assert [v["run_id"] for v in versions] == [str(second.id), str(first.id)]
    newest = versions[0]
    assert newest["artifact"] == second.details["artifact"]
    assert newest["artifact"].startswith("config_")
    assert newest["artifact"].endswith(".tar.gz.enc")
    assert (newest["size_bytes"], newest["sha256"]) == (second.size_bytes, second.sha256)
    assert newest["size_bytes"] == stored_file(catalog, second).stat().st_size
    assert newest["key_id"] == second.details["key_id"]
    assert newest["key_id"]
    assert newest["members"] == second.details["members"]
    assert newest["members"] >= 5
    assert newest["paths"] == [str(p) for p in inputs.paths]
    assert newest["present"] is True
    assert newest["verify"] is None  # never verified
    assert [(c["storage"], c["state"]) for c in newest["copies"]] == [("local", "pending")]
    certs = {c["subject"]: c for c in newest["certificates"]}
    assert set(certs) == {"CN=soon.example.test", "CN=later.example.test"}
    assert certs["CN=soon.example.test"]["days_left"] == 10
    assert certs["CN=soon.example.test"]["expiring"] is True
    assert certs["CN=soon.example.test"]["member"].endswith("certs/soon.crt")
    assert certs["CN=later.example.test"]["days_left"] == 400
    assert certs["CN=later.example.test"]["expiring"] is False
    # The older one carries its verify run's outcome, whatever it was.
    older = versions[1]["verify"]
    assert older["run_id"] == str(verify.id)
    if verify.status == "succeeded":
        assert (older["state"], older["reason"]) == ("passed", None)
        assert [c["state"] for c in versions[1]["copies"]] == ["verified"]
    else:
        assert older["state"] == "failed"
        assert older["reason"] == (verify.details.get("verify", {}).get("reason") or verify.error_code)
        assert older["message"] == verify.error

    settings = api.request("GET", "/settings").json()["config"]
    assert (settings["passphrase_set"], settings["passphrase_source"]) == (True, "OPENWATCH_BACKUP_PASSPHRASE_FILE")


def test_a_pruned_bundle_is_listed_as_not_present_and_cannot_be_downloaded(api: Api, catalog: Catalog) -> None:
    run = config_backup(api.service())
    catalog.execute("UPDATE backup_runs SET pruned_at = now() WHERE id = %s", (run.id,))

    versions = api.request("GET", "/config").json()["versions"]

    assert [(v["run_id"], v["present"]) for v in versions] == [(str(run.id), False)]
    refused = api.request("GET", f"/config/{run.id}/download")
    assert refused.status_code == 404
    assert refused.json()["detail"] == f"run {run.id} is not a config bundle that is still stored; GET config " \
                                       "lists them"


# --- POST config/backup -------------------------------------------------------------------------------------

def test_back_up_config_now_queues_one_run(api: Api, catalog: Catalog) -> None:
    service = api.service()

    first = api.request("POST", "/config/backup")

    assert first.status_code == 202, first.text
    run = first.json()
    assert (run["kind"], run["status"], run["trigger"], run["requested_by"]) == (
        "config", "queued", "api", "super_admin-user")
    assert api.submitted.calls == [("config", uuid.UUID(run["id"]))]
    assert api.audit.actions() == ["BACKUP_CONFIG_BACKUP_REQUESTED"]
    assert api.audit.calls[0].details == {"run_id": run["id"], "created": True}
    assert api.request("GET", "/config").json()["active"]["id"] == run["id"]

    # While it is queued, a second click gets that run back (409 with it), and nothing more is queued.
    again = api.request("POST", "/config/backup")
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "busy"
    assert again.json()["run"]["id"] == run["id"]
    assert again.json()["detail"] == f"a config backup is already queued (run {run['id']})"
    assert [r.id for r in config_runs(service)] == [uuid.UUID(run["id"])]
    assert len(api.submitted.calls) == 1

    # "Back up now" with kind config is the same single flight.
    same = api.request("POST", "/runs", json={"kind": "config"})
    assert same.status_code == 409, same.text
    assert same.json()["detail"] == f"a config backup is already queued (run {run['id']})"
    # Single-flight against another config backup only: a database backup is still queued meanwhile.
    full = api.request("POST", "/runs", json={"kind": "full"})
    assert full.status_code == 202, full.text

    # Once the worker has run it, the next click queues a new one; the worker's run makes a version.
    done = service.execute_backup(uuid.UUID(run["id"]))
    assert done.status == "succeeded", done.error
    assert stored_file(catalog, done).is_file()
    third = api.request("POST", "/config/backup")
    assert third.status_code == 202, third.text
    assert third.json()["id"] != run["id"]
    listed = api.request("GET", "/config").json()
    assert [v["run_id"] for v in listed["versions"]] == [run["id"]]
    assert listed["active"]["id"] == third.json()["id"]


def test_no_passphrase_refuses_with_one_line_and_queues_nothing(bare_api: Api, catalog: Catalog) -> None:
    before = [r.id for r in catalog.runs()]

    refused = bare_api.request("POST", "/config/backup")

    assert refused.status_code == 422, refused.text
    assert refused.json() == {"detail": NO_PASSPHRASE}
    assert refused.headers["x-error-code"] == "config"
    by_kind = bare_api.request("POST", "/runs", json={"kind": "config"})  # "Back up now" with kind config
    assert by_kind.status_code == 422, by_kind.text
    assert by_kind.json() == {"detail": NO_PASSPHRASE}
    assert bare_api.submitted.calls == []
    assert bare_api.audit.calls == []
    assert [r.id for r in catalog.runs()] == before
    state = bare_api.request("GET", "/config").json()
    assert (state["passphrase_set"], state["passphrase_source"], state["passphrase_problem"]) == (
        False, None, NO_PASSPHRASE)
    assert state["versions"] == []
    settings = bare_api.request("GET", "/settings").json()["config"]
    assert (settings["passphrase_set"], settings["passphrase_problem"]) == (False, NO_PASSPHRASE)


def test_an_unusable_passphrase_file_names_the_setting(catalog: Catalog, inputs: Inputs,
                                                       bodies: list[bytes]) -> None:
    inputs.passphrase_file.chmod(0o666)
    for api in _api(catalog, bodies, **inputs.overrides()):
        refused = api.request("POST", "/config/backup")
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert detail == f"OPENWATCH_BACKUP_PASSPHRASE_FILE {inputs.passphrase_file} can be written by group or " \
                         f"others (mode 0666): run `chmod 600 {inputs.passphrase_file}`"
        state = api.request("GET", "/config").json()
        assert (state["passphrase_set"], state["passphrase_source"], state["passphrase_problem"]) == (
            False, "OPENWATCH_BACKUP_PASSPHRASE_FILE", detail)
        assert api.submitted.calls == []


# --- GET config/{id}/download -------------------------------------------------------------------------------

def test_download_is_the_stored_bundle_and_openssl_opens_it(api: Api, catalog: Catalog, inputs: Inputs) -> None:
    run = config_backup(api.service())
    stored = stored_file(catalog, run).read_bytes()

    answer = api.request("GET", f"/config/{run.id}/download")

    assert answer.status_code == 200, answer.text
    assert hashlib.sha256(answer.content).hexdigest() == hashlib.sha256(stored).hexdigest() == run.sha256
    assert answer.content.startswith(b"Salted__")  # still encrypted
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"] == f'attachment; filename="{run.details["artifact"]}"'
    assert answer.headers["content-length"] == str(len(stored))
    # Who downloaded: an audit record, and on the run itself.
    assert api.audit.actions() == ["BACKUP_CONFIG_DOWNLOAD"]
    assert api.audit.calls[0].details == {"run_id": str(run.id), "artifact": run.details["artifact"],
                                          "copy": "local"}
    assert api.service().get_run(str(run.id)).details["last_download"]["by"] == "super_admin-user"

    # The guide's command, on nothing of ours.
    downloaded = inputs.root.parent / "downloaded.tar.gz.enc"
    downloaded.write_bytes(answer.content)
    decrypt = subprocess.run(["openssl", "enc", "-d", "-aes-256-cbc", "-salt", "-pbkdf2", "-in", str(downloaded),
                              "-pass", f"file:{inputs.passphrase_file}"], capture_output=True, check=True)
    listing = subprocess.run(["tar", "tz"], input=decrypt.stdout, capture_output=True, check=True)
    members = listing.stdout.decode().splitlines()
    assert "openwatch.env" in members
    for name in ("keys/id_ed25519", "certs/soon.crt", "certs/later.pem", ".env"):
        assert any(m.endswith(name) for m in members), (name, members)


def test_download_refuses_what_is_no_config_bundle(api: Api, catalog: Catalog) -> None:
    for ref in (catalog.backup.id, catalog.failed.id):
        answer = api.request("GET", f"/config/{ref}/download")
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"] == f"run {ref} is not a config bundle that is still stored; GET config " \
                                          "lists them"
        assert answer.headers["x-error-code"] == "run_not_found"
    unknown = uuid.uuid4()
    assert api.request("GET", f"/config/{unknown}/download").status_code == 404
    assert api.audit.calls == []


def test_download_of_a_bundle_whose_file_is_gone(api: Api, catalog: Catalog) -> None:
    run = config_backup(api.service())
    stored_file(catalog, run).unlink()

    answer = api.request("GET", f"/config/{run.id}/download")

    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"].startswith(f"the bundle of run {run.id} is in no copy: ")
    assert api.audit.calls == []


def test_download_reads_the_s3_copy_when_the_local_file_is_gone(catalog: Catalog, inputs: Inputs,
                                                               bodies: list[bytes], moto_endpoint: str,
                                                               bucket: str) -> None:
    for api in _api(catalog, bodies, **inputs.overrides(), **s3_overrides(moto_endpoint, bucket)):
        service = api.service()
        run = config_backup(service)
        key = copy_offsite(service, run)
        assert key == f"config/{run.details['artifact']}"
        original = stored_file(catalog, run).read_bytes()
        stored_file(catalog, run).unlink()

        answer = api.request("GET", f"/config/{run.id}/download")

        assert answer.status_code == 200, answer.text
        assert answer.content == original
        assert answer.headers["content-length"] == str(len(original))
        assert api.audit.calls[0].details["copy"] == "s3"
        listed = api.request("GET", "/config").json()["versions"][0]
        assert [(c["storage"], c["state"]) for c in listed["copies"]] == [("local", "pending"), ("s3", "verified")]
        for body in bodies:
            assert SECRET_KEY.encode() not in body


@pytest.mark.parametrize("role", ["security_admin", "auditor", "guest"])
def test_other_roles_cannot_download(api: Api, catalog: Catalog, role: str) -> None:
    run = config_backup(api.service())

    refused = api.request("GET", f"/config/{run.id}/download", headers=bearer(role))

    assert refused.status_code == 403
    assert refused.json() == {"detail": "Permission system:maintenance required"}
    assert api.request("GET", "/config", headers=bearer(role)).status_code == 403
    assert api.request("POST", "/config/backup", headers=bearer(role)).status_code == 403
    assert api.audit.calls == []
    assert api.submitted.calls == []
    assert "last_download" not in api.service().get_run(str(run.id)).details


def test_the_api_process_never_shows_the_secrets(api: Api, catalog: Catalog) -> None:
    """Every answer of every config endpoint (the bodies fixture checks them all), the run rows included."""
    run = config_backup(api.service())
    api.request("GET", "/config")
    api.request("GET", "/settings")
    api.request("GET", "/status")
    api.request("GET", f"/runs/{run.id}")
    api.request("GET", "/runs", params={"limit": 200})
    api.request("GET", f"/runs/{run.id}/log")
    api.request("POST", "/config/backup")
    api.request("GET", "/openapi.json")
    assert os.environ["OPENWATCH_MASTER_KEY"] == MASTER_KEY  # it was there to leak


def test_a_bundles_verify_does_not_count_as_a_verified_backup(api: Api, catalog: Catalog) -> None:
    service = api.service()
    dump_verified = service.get_run(str(catalog.verify.id)).finished_at
    bundle = config_backup(service)
    verify, result = service.verify(str(bundle.id), requested_by="test")
    assert result is not None
    assert result.passed
    assert verify.finished_at > dump_verified

    status = api.request("GET", "/status").json()

    # The newest verified backup is still the dump the fixture verified, not the newer bundle.
    assert datetime.fromisoformat(status["newest_verified_at"].replace("Z", "+00:00")) == dump_verified
