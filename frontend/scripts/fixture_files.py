"""Where the write_*_fixtures.py scripts put their answers, and the one file shape Vitest's fixtures() reads:
{method, path, status, body}, the path under the API's prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src" / "test" / "fixtures"
BASE = "/api/system/backups"


def save(name: str, method: str, path: str, status: int, body: Any) -> None:
    (OUT / f"{name}.json").write_text(json.dumps({"method": method, "path": BASE + path, "status": status,
                                                  "body": body}, indent=2) + "\n")
