"""Record the API answers the frontend tests replay (frontend/src/test/fixtures/*.json), from a running demo.

Start a demo on its own database and Redis db, then run this with the demo's environment and token:

    .venv/bin/openwatch-backup demo --var /tmp/fe/var --port 8791 --database owb_fe_fixtures --redis-db 13 &
    OPENWATCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/owb_fe_fixtures \
    OPENWATCH_BACKUP_DIR=/tmp/fe/var/backups OPENWATCH_REDIS_URL=redis://127.0.0.1:6379/13 \
    OPENWATCH_BACKUP_PASSPHRASE_FILE=/tmp/fe/var/config-passphrase \
    OWB_TOKEN=<the printed token> OWB_BASE=http://127.0.0.1:8791 .venv/bin/python frontend/scripts/record_fixtures.py

It takes a backup and breaks its file (one byte appended) so that its next verify fails (a badge with a reason),
queues a nightly set through Celery (as beat does), then "Back up now" twice (the 202 and the 409), and saves
each answer as the API gave it: status code and JSON body. Only the demo's own folder is touched.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from openwatch_backup.devstack.celery_app import celery_app
from openwatch_backup.service import BackupService
from openwatch_backup.service.sets import request_set
from openwatch_backup.settings import load_settings
from openwatch_backup.tasks import submit

BASE = os.environ.get("OWB_BASE", "http://127.0.0.1:8791") + "/api/system/backups"
TOKEN = os.environ["OWB_TOKEN"]
OUT = Path(__file__).resolve().parent.parent / "src" / "test" / "fixtures"
DONE = {"succeeded", "failed", "abandoned", "cancelled"}


def call(method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.request(method, BASE + path, json=body, headers=headers, timeout=30)
    return answer.status_code, answer.json()


def save(name: str, method: str, path: str, answer: tuple[int, Any]) -> Any:
    status, body = answer
    (OUT / f"{name}.json").write_text(json.dumps({"method": method, "path": f"/api/system/backups{path}",
                                                  "status": status, "body": body}, indent=2) + "\n")
    print(f"{name}: {method} {path} -> {status}", file=sys.stderr)
    return body


def wait_idle(timeout: float = 300) -> None:
    """Until no run is queued or running (the worker chains verify after each backup)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, page = call("GET", "/runs?limit=50")
        if all(r["status"] in DONE for r in page["items"]):
            return
        time.sleep(1)
    raise SystemExit("runs still active after 300 s")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    _, broken = call("POST", "/runs", {})
    wait_idle()
    with Path(call("GET", f"/runs/{broken['id']}")[1]["artifact_location"]).open("ab") as artifact:
        artifact.write(b"x")
    call("POST", f"/runs/{broken['id']}/verify", {"deep": False})
    wait_idle()
    with BackupService(load_settings()) as service:
        set_id, _ = request_set(service, requested_by="celery-beat")
        submit(celery_app, "set", set_id, service)
    wait_idle()

    first = call("POST", "/runs", {})
    save("post_runs_202", "POST", "/runs", first)
    save("post_runs_409", "POST", "/runs", call("POST", "/runs", {}))
    save("status_running", "GET", "/status", call("GET", "/status"))
    save("runs_sets_running", "GET", "/runs?group=sets", call("GET", "/runs?group=sets"))
    wait_idle()

    save("status", "GET", "/status", call("GET", "/status"))
    page = save("runs_sets", "GET", "/runs?group=sets", call("GET", "/runs?group=sets"))
    the_set = next(r for r in page["items"] if r["kind"] == "set")
    save("run_set", "GET", f"/runs/{the_set['id']}", call("GET", f"/runs/{the_set['id']}"))
    member = the_set["members"][0]
    save("run_backup", "GET", f"/runs/{member['id']}", call("GET", f"/runs/{member['id']}"))
    save("run_backup_verify_failed", "GET", f"/runs/{broken['id']}", call("GET", f"/runs/{broken['id']}"))
    save("post_verify_202", "POST", f"/runs/{member['id']}/verify",
         call("POST", f"/runs/{member['id']}/verify", {"deep": False}))
    save("status_401", "GET", "/status", call("GET", "/status", token=secrets.token_urlsafe(24)))
    wait_idle()


if __name__ == "__main__":
    main()
