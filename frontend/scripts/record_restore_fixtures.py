"""Record the restore wizard's API answers (frontend/src/test/fixtures/restore_*.json) from a stack of its own.

    PYTHONPATH=. .venv/bin/python frontend/scripts/record_restore_fixtures.py [REDIS_DB]

Starts an EmbeddedStack (scratch database owb_page_..., the given Redis db, default 12; no beat), takes a full
backup and verifies it, turns "allow restore" on, then saves each answer as the API gave it: the checks (all
passing; and with an existing database name), a restore into a new database (202), that run once it ended, and
the 409 for the name now taken. The stack, its database and the restored database are removed at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from openwatch_backup.devstack import drop_database
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from tests.support.page_stack import page_stack

OUT = Path(__file__).resolve().parent.parent / "src" / "test" / "fixtures"
DONE = {"succeeded", "failed", "abandoned", "cancelled"}


def save(name: str, method: str, path: str, answer: httpx.Response) -> Any:
    body = answer.json()
    (OUT / f"{name}.json").write_text(json.dumps({"method": method, "path": f"/api/system/backups{path}",
                                                  "status": answer.status_code, "body": body}, indent=2) + "\n")
    print(f"{name}: {method} {path} -> {answer.status_code}", file=sys.stderr)
    return body


def main(redis_db: int) -> None:
    with tempfile.TemporaryDirectory() as var, page_stack(Path(var) / "var", redis_db=redis_db, beat=False) as stack:
        with BackupService(load_settings(database_url=stack.env["OPENWATCH_DATABASE_URL"],
                                         dir=stack.env["OPENWATCH_BACKUP_DIR"])) as service:
            backup = service.backup(service.build_request(), requested_by="fixtures")
            service.verify(str(backup.id), requested_by="fixtures")
        into = f"openwatch_restore_{uuid.uuid4().hex[:8]}"
        client = httpx.Client(base_url=stack.url.removesuffix("ui"), timeout=30,
                              headers={"Authorization": f"Bearer {stack.token}"})
        try:
            client.put("settings", json={"allow_restore": True}).raise_for_status()
            check = f"/runs/{backup.id}/restore/check"
            save("restore_check_ok", "GET", check, client.get(check.lstrip("/"), params={"into": into}))
            started = save("restore_post_202", "POST", f"/runs/{backup.id}/restore",
                           client.post(f"runs/{backup.id}/restore", json={"into": into}))
            deadline = time.monotonic() + 180
            while client.get(f"runs/{started['id']}").json()["status"] not in DONE:
                if time.monotonic() > deadline:
                    raise SystemExit("the restore did not end within 180 s")
                time.sleep(0.5)
            save("restore_run_succeeded", "GET", f"/runs/{started['id']}", client.get(f"runs/{started['id']}"))
            save("restore_check_taken", "GET", check, client.get(check.lstrip("/"), params={"into": into}))
            save("restore_post_409", "POST", f"/runs/{backup.id}/restore",
                 client.post(f"runs/{backup.id}/restore", json={"into": into}))
        finally:
            client.close()
            if stack.pg is not None:
                drop_database(stack.pg, into)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
