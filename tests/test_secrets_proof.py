"""The proof that the config bundle's master key fits the data (issue 11, item 6), against real PostgreSQL:
the sample database's credentials are encrypted the way OpenWatch does it under SAMPLE_MASTER_KEY; the drill and
`verify --deep` decrypt a sample of them in the restored scratch database with the key of the newest bundle."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.cli import app
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.core.naming import manifest_name
from openwatch_backup.operations.bundle_key import master_key_from_newest_bundle, newest_bundle
from openwatch_backup.operations.secrets_proof import COLUMNS, SAMPLE_SIZE, prove_secrets
from openwatch_backup.sample.credentials import SAMPLE_MASTER_KEY
from openwatch_backup.secrets.openwatch_crypto import stored_blob
from openwatch_backup.service import BackupService
from tests.support.offsite import s3_overrides

OTHER_KEY = "another-master-key-which-encrypted-nothing-here-0123"
MISMATCH = ("verify failed (secrets_mismatch): the master key in config bundle {run} decrypts 0 of {n} encrypted "
            "credentials sampled from the restored database: they were encrypted under another OPENWATCH_MASTER_KEY; "
            "take a config backup (`openwatch-backup backup --kind config`) where the worker runs with the key "
            "OpenWatch uses, and keep the bundle holding the old one")


@dataclass
class Proof:
    url: str
    dir: Path
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    make_service: Callable[..., BackupService]

    def service(self) -> BackupService:
        return self.make_service(self.url, self.dir)  # settings from the environment, as the CLI reads them

    def bundle(self, master_key: str | None) -> BackupRun:
        """A config bundle taken while the worker's OPENWATCH_MASTER_KEY is master_key (None: unset)."""
        if master_key is None:
            self.monkeypatch.delenv("OPENWATCH_MASTER_KEY", raising=False)
        else:
            self.monkeypatch.setenv("OPENWATCH_MASTER_KEY", master_key)
        service = self.service()
        run = service.backup(service.build_request(BackupKind.CONFIG))
        assert run.status == "succeeded", run.error
        return run

    def sampled(self) -> int:
        """How many values the proof samples from this database: SAMPLE_SIZE, or all when there are fewer."""
        return min(SAMPLE_SIZE, encrypted_count(self.url))

    def full(self) -> BackupRun:
        service = self.service()
        run = service.backup(service.build_request())
        assert run.status == "succeeded", run.error
        return run


@pytest.fixture
def proof(backup_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          make_service: Callable[..., BackupService]) -> Proof:
    """backup_env (a fresh sample database) + a config path and passphrase file; nothing else of the shell's."""
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id_ed25519").write_text("sample key\n")
    (tmp_path / "passphrase").write_text("a long passphrase for the secrets proof\n")
    (tmp_path / "passphrase").chmod(0o600)
    monkeypatch.setenv("OPENWATCH_BACKUP_CONFIG_PATHS", str(tmp_path / "keys"))
    monkeypatch.setenv("OPENWATCH_BACKUP_PASSPHRASE_FILE", str(tmp_path / "passphrase"))
    return Proof(backup_env.url, Path(backup_env.dir), tmp_path, monkeypatch, make_service)


def encrypted_count(url: str) -> int:
    """Non-null encrypted values in the five columns of the source database."""
    total = 0
    with psycopg.connect(url) as conn:
        for table, column in COLUMNS:
            row = conn.execute(f"SELECT count({column}) FROM {table}").fetchone()
            total += int(row[0]) if row else 0
    return total


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def secrets_of(run: dict[str, Any] | BackupRun, key: str = "drill") -> dict[str, Any]:
    details = run["details"] if isinstance(run, dict) else run.details
    verify = details[key]["verify"] if key == "drill" else details["verify"]
    return dict(verify["checks"]["secrets"])


def test_the_sample_holds_openwatch_credentials_under_the_sample_key(proof: Proof) -> None:
    with psycopg.connect(proof.url) as conn:
        hosts = conn.execute("SELECT auth_method, encrypted_credentials FROM hosts").fetchall()
        mfa = conn.execute("SELECT mfa_enabled, mfa_secret FROM users").fetchall()
    assert all((method == "system_default") == (value is None) for method, value in hosts)
    assert any(value is not None for _, value in hosts)
    assert all(enabled == (secret is not None) for enabled, secret in mfa)
    assert encrypted_count(proof.url) > 10


def test_drill_decrypts_every_sampled_credential_with_the_bundles_key(proof: Proof) -> None:
    proof.full()
    n = proof.sampled()
    bundle = proof.bundle(SAMPLE_MASTER_KEY)

    human = invoke("drill")
    assert human.exit_code == 0, human.output
    drilled = json.loads(invoke("drill", "--json").stdout)

    assert drilled["status"] == "succeeded"
    found = secrets_of(drilled)
    columns = found.pop("columns")
    assert found.pop("seconds") >= 0
    assert found == {"sampled": n, "decrypted": n, "bundle_run": str(bundle.id),
                     "key_member": "openwatch.env"}
    assert set(columns) == {f"{t}.{c}" for t, c in COLUMNS}
    assert sum(c["sampled"] for c in columns.values()) == n
    assert all(c["decrypted"] == c["sampled"] > 0 for c in columns.values()), columns
    assert human.stdout.splitlines()[1] == f"master key: {n} of {n} credentials decrypted with the key of config " \
                                           f"bundle {bundle.id}"
    assert SAMPLE_MASTER_KEY not in human.stdout + json.dumps(drilled)


def test_a_bundle_from_another_master_key_fails_the_drill(proof: Proof) -> None:
    proof.full()
    n = proof.sampled()
    bundle = proof.bundle(OTHER_KEY)

    result = invoke("drill", "--json")

    assert result.exit_code != 0
    drilled = json.loads(result.stdout)
    expected = MISMATCH.format(run=bundle.id, n=n)
    assert (drilled["status"], drilled["error_code"], drilled["error"]) == ("failed", "verify_secrets_mismatch",
                                                                            expected)
    found = secrets_of(drilled)
    assert (found["sampled"], found["decrypted"], found["bundle_run"]) == (n, 0, str(bundle.id))
    assert drilled["details"]["drill"]["verify"]["reason"] == "secrets_mismatch"
    assert OTHER_KEY not in result.stdout + result.stderr


def test_deep_verify_of_a_full_backup_uses_the_newest_bundle_not_failed_by_a_verify(proof: Proof) -> None:
    full = proof.full()
    n = proof.sampled()
    right = proof.bundle(SAMPLE_MASTER_KEY)
    service = proof.service()

    passed, result = service.verify(str(full.id), deep=True)
    assert passed.status == "succeeded", passed.error
    assert result is not None
    assert result.passed
    assert {k: secrets_of(passed, "verify")[k] for k in ("sampled", "decrypted", "bundle_run")} == {
        "sampled": n, "decrypted": n, "bundle_run": str(right.id)}

    wrong = proof.bundle(OTHER_KEY)  # newer: a rotated key the data does not fit
    failed, result = service.verify(str(full.id), deep=True)
    assert (failed.status, failed.error_code, failed.error) == (
        "failed", "verify_secrets_mismatch", MISMATCH.format(run=wrong.id, n=n))
    assert result is not None
    assert str(result.reason) == "secrets_mismatch"
    cli = invoke("verify", str(full.id), "--deep")
    assert cli.exit_code == 9, cli.output

    # A verify that failed the newer bundle sends the proof back to the older, fitting one.
    verdict = service.recorder.create("verify", "cli", parent_id=wrong.id)
    assert service.recorder.claim(verdict)
    service.recorder.finish_unsuccessfully(verdict, RunStatus.FAILED, "verify_checksum", "damaged", {})
    again, _ = service.verify(str(full.id), deep=True)
    assert again.status == "succeeded", again.error
    assert secrets_of(again, "verify")["bundle_run"] == str(right.id)


def test_without_a_bundle_the_drill_passes_and_says_it_skipped(proof: Proof) -> None:
    proof.full()
    n = proof.sampled()

    result = invoke("drill")
    drilled = proof.service().list_runs(limit=1, kind="drill")[0]

    assert result.exit_code == 0, result.output
    assert drilled.status == "succeeded"
    assert secrets_of(drilled) == {"sampled": n, "skipped": "no config bundle"}
    assert result.stdout.splitlines()[1] == "master key not checked: no config bundle"


def test_the_key_comes_from_a_dotenv_member_when_the_snapshot_is_off(proof: Proof) -> None:
    env = proof.tmp / "openwatch" / ".env"
    env.parent.mkdir()
    env.write_text(f'# OpenWatch\nSECRET_KEY=s\nexport MASTER_KEY="{SAMPLE_MASTER_KEY}"\n')
    env.chmod(0o600)
    proof.monkeypatch.setenv("OPENWATCH_BACKUP_ENV_FILE", str(env))
    proof.monkeypatch.setenv("OPENWATCH_BACKUP_CONFIG_ENV_SNAPSHOT", "false")
    bundle = proof.bundle(OTHER_KEY)  # not in the bundle: the snapshot is off
    service = proof.service()

    found = master_key_from_newest_bundle(service.context)

    assert found is not None
    assert (found.run.id, found.member, found.master_key, found.verified_before) == (
        bundle.id, str(env).lstrip("/"), SAMPLE_MASTER_KEY, False)
    assert SAMPLE_MASTER_KEY not in repr(found)
    assert service.context.redact(f"x {SAMPLE_MASTER_KEY} y") != f"x {SAMPLE_MASTER_KEY} y"  # redacted from now on


def test_proof_on_an_older_schema_with_legacy_and_missing_columns(proof: Proof) -> None:
    """Straight on a database (no restore): a missing table and column are left out, a never-encrypted legacy
    value is counted apart, a bundle with no master key and no passphrase each skip with their reason."""
    legacy = base64.b64encode(json.dumps({"username": "root", "password": "pw"}).encode())
    with psycopg.connect(proof.url) as conn:
        conn.execute("DROP TABLE unified_credentials")
        conn.execute("ALTER TABLE users DROP COLUMN mfa_secret")
        conn.execute("UPDATE hosts SET encrypted_credentials = %s WHERE id = (SELECT id FROM hosts WHERE "
                     "encrypted_credentials IS NOT NULL ORDER BY id LIMIT 1)", (legacy,))
        values = [r[0] for r in conn.execute("SELECT encrypted_credentials FROM hosts WHERE encrypted_credentials "
                                             "IS NOT NULL")]
    encrypted = sum(1 for v in values if stored_blob(v) is not None)
    assert 0 < encrypted == len(values) - 1
    dbname = proof.url.rsplit("/", 1)[1]
    proof.bundle(SAMPLE_MASTER_KEY)
    ctx = proof.service().context

    checks: dict[str, Any] = {}
    assert prove_secrets(ctx, dbname, checks) is None
    assert checks["secrets"]["columns"] == {"hosts.encrypted_credentials": {"sampled": encrypted,
                                                                            "decrypted": encrypted}}
    assert (checks["secrets"]["sampled"], checks["secrets"]["not_encrypted"]) == (encrypted, 1)

    keyless = proof.bundle(None)  # newer, and without any master key
    checks = {}
    assert prove_secrets(ctx, dbname, checks) is None
    assert checks["secrets"]["skipped"].startswith(f"config bundle {keyless.id} holds no OPENWATCH_MASTER_KEY")

    proof.monkeypatch.delenv("OPENWATCH_BACKUP_PASSPHRASE_FILE")
    checks = {}
    assert prove_secrets(proof.service().context, dbname, checks) is None
    assert checks["secrets"]["skipped"] == (
        f"config bundle {keyless.id}: no passphrase for config bundles is set: set OPENWATCH_BACKUP_PASSPHRASE_FILE "
        "to a file (mode 600) holding the passphrase this bundle was made with")
    assert newest_bundle(ctx) is not None


def test_a_larger_database_is_sampled_to_the_limit_across_every_column(proof: Proof) -> None:
    with psycopg.connect(proof.url) as conn:
        for _ in range(3):  # copies of every credential row: 4x the values, more than SAMPLE_SIZE
            conn.execute("INSERT INTO unified_credentials (name, scope, target_id, username, auth_method, "
                         "encrypted_password, encrypted_private_key, encrypted_passphrase, is_default) "
                         "SELECT name, scope, target_id, username, auth_method, encrypted_password, "
                         "encrypted_private_key, encrypted_passphrase, false FROM unified_credentials")
    assert encrypted_count(proof.url) > 2 * SAMPLE_SIZE
    proof.bundle(SAMPLE_MASTER_KEY)

    checks: dict[str, Any] = {}
    assert prove_secrets(proof.service().context, proof.url.rsplit("/", 1)[1], checks) is None

    found = checks["secrets"]
    assert found["sampled"] == found["decrypted"] == SAMPLE_SIZE
    assert sum(c["sampled"] for c in found["columns"].values()) == SAMPLE_SIZE
    with psycopg.connect(proof.url) as conn:
        counts = {f"{t}.{c}": conn.execute(f"SELECT count({c}) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t, c in COLUMNS}
    # Spread: each column gives at least its even share (or all it has), none takes everything.
    assert all(found["columns"][name]["sampled"] >= min(n, SAMPLE_SIZE // len(COLUMNS))
               for name, n in counts.items()), (found["columns"], counts)


def test_a_drill_reading_the_dump_from_s3_reads_the_bundle_from_its_local_file(proof: Proof, moto_endpoint: str,
                                                                               bucket: str) -> None:
    n = proof.sampled()
    proof.monkeypatch.setenv("OPENWATCH_MASTER_KEY", SAMPLE_MASTER_KEY)
    service = proof.make_service(proof.url, proof.dir, **s3_overrides(moto_endpoint, bucket))
    backup = service.backup(service.build_request())
    assert service.copy_offsite(str(backup.id)).status == "succeeded"
    bundle = service.backup(service.build_request(BackupKind.CONFIG))
    assert service.copies.get(bundle.id, CopyStorage.S3) is None  # the bundle is only here
    for name in (backup.details["artifact"], manifest_name(backup.details["artifact"])):
        (proof.dir / "postgres" / name).unlink()  # the dump only there

    drilled = service.drill()

    assert drilled.status == "succeeded", drilled.error
    assert drilled.details["drill"]["read_from"] == "s3"
    found = secrets_of(drilled)
    assert (found["sampled"], found["decrypted"], found["bundle_run"]) == (n, n, str(bundle.id))
