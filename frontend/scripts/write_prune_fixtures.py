"""Write the prune panel's fixtures (frontend/src/test/fixtures/prune_*.json) from the API's own code, without a
running stack: the plan is plan_retention()'s decisions for five full backups (30 days, floor 3, the tiers at 0:
two are older than 30 days), stored as operations/prune.py stores it (details.plan, details.summary), in a
RunOut; the apply answer is the queued prune RunOut, and the 409 is api/runs.py conflict()'s ErrorOut.

    .venv/bin/python frontend/scripts/write_prune_fixtures.py
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fixture_files import save

from openwatch_backup.api.schemas import ErrorOut, RunOut
from openwatch_backup.core.retention import ArtifactRecord, plan_retention
from openwatch_backup.operations.retention_policy import retention_config

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
VALUES = {"retention_days": 30, "s3_retention_days": 30, "keep_last": 0, "keep_daily": 0, "keep_weekly": 0,
          "keep_monthly": 0, "size_budget_gib": 0, "verified_floor": 3, "config_versions": 10,
          "volume_retention_weeks": 4}
PLAN_ID = "7c1e2a90-3b4d-4f5e-8a6b-9c0d1e2f3a4b"
APPLY_ID = "8d2f3ba1-4c5e-4a6f-9b7c-0d1e2f3a4b5c"
AGES = [0, 1, 2, 40, 45]  # days: two older than 30 days, deleted
IDS = ["a18b8700-9d13-47e0-8682-e4b943712104", "b29c9811-0e24-41f1-9793-f5c0a4823215",
       "c3ad0922-1f35-42a2-a8a4-06d1b5934326", "d4be1a33-2046-43b3-b9b5-17e2c6a45437",
       "e5cf2b44-3157-44c4-8ac6-28f3d7b56548"]



def run(run_id: str, status: str, details: dict[str, Any] | None) -> RunOut:
    return RunOut(id=run_id, kind="prune", status=status, trigger="api", requested_by="admin", parent_id=None,
                  phase=None, created_at=NOW, started_at=NOW if status == "succeeded" else None,
                  finished_at=NOW if status == "succeeded" else None, heartbeat_at=None,
                  duration_seconds=0.4 if status == "succeeded" else None, bytes_done=0, artifact_location=None,
                  size_bytes=None, sha256=None, pinned=False, pruned_at=None, details=details, error_code=None,
                  error=None)


def main() -> None:
    records = [ArtifactRecord(run_id=rid, kind="full", created_at=NOW - timedelta(days=age, hours=3),
                              status="succeeded", verified=True, size=150_000 + i * 1000,
                              keys=(f"openwatch_{i}.dump.zst",))
               for i, (rid, age) in enumerate(zip(IDS, AGES, strict=True))]
    plan = plan_retention(records, retention_config(VALUES), NOW)
    summary = {"apply": False, "backups_kept": len(plan.keeps), "backups_to_delete": len(plan.deletes),
               "backups_deleted": 0, "bytes_to_free": plan.bytes_to_free, "bytes_freed": 0, "leftovers": 0,
               "foreign": 0, "repaired": 0, "files_deleted": 0, "over_budget_bytes": plan.over_budget_bytes}
    details = {"apply": False, "policy": VALUES, "planned_at": NOW.isoformat(),
               "plan": [d.as_dict() for d in plan.decisions], "leftovers": [], "foreign": [], "left_alone": [],
               "stale": [], "repairs": [], "warnings": list(plan.warnings), "deleted": [], "s3_deleted": [],
               "summary": summary, "repaired": []}
    save("prune_plan", "POST", "/prune/plan", 200, json.loads(run(PLAN_ID, "succeeded", details).model_dump_json()))
    queued = run(APPLY_ID, "queued", {"apply": True})
    save("prune_apply_202", "POST", "/prune", 202, json.loads(queued.model_dump_json()))
    busy = ErrorOut(detail=f"a prune is already queued (run {APPLY_ID})", code="busy", run=queued)
    save("prune_apply_409", "POST", "/prune", 409, busy.model_dump(mode="json"))


if __name__ == "__main__":
    main()
