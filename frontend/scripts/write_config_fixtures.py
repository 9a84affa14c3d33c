"""Write the config panel's fixtures (frontend/src/test/fixtures/config_*.json) from the API's own models, without a
running stack: GET config as ConfigOut with two versions (newest first; one certificate 20 days from expiry, one
verify failed), the same without a passphrase (passphrase_problem as secrets/passphrase.py words it), POST
config/backup's 202 (the queued RunOut), 409 (api/runs.py conflict()'s ErrorOut) and 422 (translated() of
require_passphrase(None, None), FastAPI's {"detail": ...}).

    .venv/bin/python frontend/scripts/write_config_fixtures.py
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException
from fixture_files import save

from openwatch_backup.api.errors import translated
from openwatch_backup.api.schemas import (
    CertificateOut,
    ConfigOut,
    ConfigVersionOut,
    CopyOut,
    ErrorOut,
    RunOut,
    VerifyStateOut,
)
from openwatch_backup.secrets.passphrase import require_passphrase

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
NEW_ID = "f6d03c55-4268-45d5-9bd6-39a4e8c67659"
OLD_ID = "07e14d66-5379-46e6-8ce7-4ab5f9d7876a"
QUEUED_ID = "18f25e77-648a-47f7-9df8-5bc6a0e8987b"
VERIFY_NEW_ID = "29a36f88-759b-48a8-8e09-6cd7b1f9a98c"
VERIFY_OLD_ID = "3ab47099-86ac-49b9-9f1a-7de8c20ab99d"
PATHS = ["/etc/openwatch/.env", "/etc/openwatch/tls", "/etc/openwatch/ssh"]
FILE_SETTING = "OPENWATCH_BACKUP_PASSPHRASE_FILE"



def version(run_id: str, age: timedelta, size: int, verify: VerifyStateOut, days_left: int) -> ConfigVersionOut:
    at = NOW - age
    name = f"config_{at:%Y%m%d_%H%M%S}.tar.gz.enc"
    return ConfigVersionOut(
        run_id=run_id, artifact=name, trigger="schedule", requested_by=None, created_at=at,
        finished_at=at + timedelta(seconds=2), size_bytes=size, sha256="9f" * 32, key_id="k1:3fa9c2d1e07b", members=7,
        paths=PATHS, env_snapshot=True,
        certificates=[CertificateOut(subject="CN=openwatch.example.org", member="etc/openwatch/tls/server.crt",
                                     not_after=(NOW + timedelta(days=days_left)).isoformat(), days_left=days_left,
                                     expiring=days_left < 30)],
        verify=verify,
        copies=[CopyOut(storage="local", state="verified", location=f"/var/backups/openwatch/{name}", size_bytes=size,
                        sha256="9f" * 32, attempts=1, error=None, created_at=at, updated_at=at, verified_at=at,
                        reverified_at=None, deleted_at=None)],
        present=True)


def main() -> None:
    versions = [
        version(NEW_ID, timedelta(minutes=4), 5321, VerifyStateOut(state="passed", run_id=VERIFY_NEW_ID,
                                                                   at=NOW - timedelta(minutes=3)), 20),
        version(OLD_ID, timedelta(days=1, minutes=4), 5298,
                VerifyStateOut(state="failed", run_id=VERIFY_OLD_ID, at=NOW - timedelta(days=1),
                               reason="checksum", message="sha256 differs from the manifest"), 21),
    ]
    config = ConfigOut(passphrase_set=True, passphrase_source=FILE_SETTING, paths=PATHS, versions=versions)
    save("config", "GET", "/config", 200, json.loads(config.model_dump_json()))
    try:
        with translated():
            require_passphrase(None, None)
    except HTTPException as exc:
        problem = str(exc.detail)
        save("config_backup_422", "POST", "/config/backup", exc.status_code, {"detail": problem})
    else:
        raise SystemExit("require_passphrase(None, None) was accepted")
    off = ConfigOut(passphrase_set=False, passphrase_source=None, passphrase_problem=problem, paths=PATHS, versions=[])
    save("config_no_passphrase", "GET", "/config", 200, json.loads(off.model_dump_json()))
    queued = RunOut(id=QUEUED_ID, kind="config", status="queued", trigger="api", requested_by="admin", parent_id=None,
                    phase=None, created_at=NOW, started_at=None, finished_at=None, heartbeat_at=None,
                    duration_seconds=None, bytes_done=0, artifact_location=None, size_bytes=None, sha256=None,
                    pinned=False, pruned_at=None, details={}, error_code=None, error=None)
    save("config_backup_202", "POST", "/config/backup", 202, json.loads(queued.model_dump_json()))
    busy = ErrorOut(detail=f"a config backup is already queued (run {QUEUED_ID})", code="busy", run=queued)
    save("config_backup_409", "POST", "/config/backup", 409, busy.model_dump(mode="json"))


if __name__ == "__main__":
    main()
