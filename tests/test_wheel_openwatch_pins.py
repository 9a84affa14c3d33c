"""The wheel resolves together with OpenWatch's own pins (issue 9, failure 11: the README's requirements line).

OpenWatch's `backend/requirements.txt` (commit a12e8f1e) pins celery 5.6.2, kombu 5.6.2 and redis 7.1.1, on
Python 3.12. kombu 5.6's `[redis]` extra caps redis below 6.5, so a dependency on `celery[redis]` made
`pip install -r requirements.txt` with our line impossible ("ResolutionImpossible" after backtracking through
every kombu release). pip resolves the wheel and the pins here for Python 3.12, binaries only, without installing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.celery_support import REPO, process_env

# The packages OpenWatch pins that the plugin also depends on (directly or through celery), as OpenWatch pins them.
OPENWATCH_PINS = {
    "celery": "5.6.2",
    "kombu": "5.6.2",
    "redis": "7.1.1",
    "sqlalchemy": "2.0.46",
    "alembic": "1.18.4",
    "pydantic": "2.12.5",
    "pydantic-settings": "2.13.0",
    "fastapi": "0.129.0",
    "starlette": "0.52.1",
    "prometheus-client": "0.24.1",
    "cryptography": "46.0.5",
}


@pytest.mark.slow
def test_the_wheel_resolves_with_openwatch_pins(tmp_path: Path) -> None:
    wheels = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels)], cwd=REPO,
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("openwatch_backup-*.whl")

    report = tmp_path / "report.json"
    pins = [f"{name}=={version}" for name, version in OPENWATCH_PINS.items()]
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
         "--python-version", "3.12", "--target", str(tmp_path / "never-written"), "--report", str(report),
         "--quiet", str(wheel), *pins],
        env=process_env(), capture_output=True, text=True, timeout=600, check=False)
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    assert not (tmp_path / "never-written").exists()

    chosen = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
              for item in json.loads(report.read_text())["install"]}
    assert {name: chosen.get(name) for name in OPENWATCH_PINS} == OPENWATCH_PINS
    assert "openwatch-backup" in chosen
    assert "packaging" in chosen  # kombu's Redis transport imports it (kombu 5.7 lists it only under [redis])
