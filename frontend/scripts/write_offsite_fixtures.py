"""Write the off-site panel's fixtures (frontend/src/test/fixtures/offsite_*.json, settings_offsite.json) from the
API's own code, without a running stack: GET settings with `offsite` configured (OffsiteOut, as offsite_out() builds
it), POST offsite/test's OffsiteTestOut built as api/offsite.py builds it from a ProbeResult (all four steps passed,
and a put refused with the message storage/s3_errors.py translate() gives
AccessDenied), and the 422 that translated() makes of required_offsite(None) (FastAPI's {"detail": ...}).

    .venv/bin/python frontend/scripts/write_offsite_fixtures.py
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from fastapi import HTTPException
from fixture_files import OUT, save

from openwatch_backup.api.errors import translated
from openwatch_backup.api.schemas import OffsiteOut, OffsiteTestOut, ProbeStepOut
from openwatch_backup.storage.factory import required_offsite
from openwatch_backup.storage.probe import ProbeResult, ProbeStep
from openwatch_backup.storage.s3_errors import translate

LOCATION = "s3://openwatch-backups/prod/.probe/5f0c3a9e1b2d4c6f"



def answer(result: ProbeResult) -> Any:
    out = OffsiteTestOut(ok=result.ok, location=result.location, summary=result.summary(),
                         steps=[ProbeStepOut(name=s.name, ok=s.ok, seconds=round(s.seconds, 3), code=s.code,
                                             error=s.message) for s in result.steps])
    return json.loads(out.model_dump_json())


def main() -> None:
    settings = json.loads((OUT / "settings.json").read_text())
    settings["body"]["offsite"] = OffsiteOut(configured=True, bucket="openwatch-backups", prefix="prod/",
                                             region="eu-central-1", endpoint=None).model_dump(mode="json")
    (OUT / "settings_offsite.json").write_text(json.dumps(settings, indent=2) + "\n")
    passed = ProbeResult(LOCATION, tuple(ProbeStep(name, True, seconds) for name, seconds in
                                         [("put", 0.1214), ("head", 0.0402), ("get", 0.0517), ("delete", 0.0633)]))
    save("offsite_test_ok", "POST", "/offsite/test", 200, answer(passed))
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                          "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
    error = translate(denied, f"write {LOCATION}", endpoint="https://s3.eu-central-1.amazonaws.com",
                      bucket="openwatch-backups")
    refused = ProbeResult(LOCATION, (ProbeStep("put", False, 0.2051, error.code, error.message),))
    save("offsite_test_failed", "POST", "/offsite/test", 200, answer(refused))
    try:
        with translated():
            required_offsite(None)
    except HTTPException as exc:
        save("offsite_test_422", "POST", "/offsite/test", exc.status_code, {"detail": exc.detail})
    else:
        raise SystemExit("required_offsite(None) was accepted")


if __name__ == "__main__":
    main()
