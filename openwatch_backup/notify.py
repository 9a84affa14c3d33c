"""Nobody misses a failure: failed runs and stale backups go to the log and, if set, a JSON webhook.

Delivery is separate from the run's outcome (a mail server's hiccup once turned into "backup failed"
elsewhere): the result of the delivery is returned and stored beside the run, never instead of it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("openwatch_backup.alerts")
_ATTEMPTS = 3


def notify(event: str, message: str, data: dict[str, Any], *, webhook_url: str | None,
           redact: Callable[[str], str], timeout: float = 10.0) -> dict[str, Any]:
    """Log the event, POST it to the webhook if there is one. Returns the delivery status."""
    text = redact(message)
    log.error("%s: %s", event, text)
    if not webhook_url:
        return {"delivered": False, "reason": "no webhook configured"}
    body = json.dumps({"event": event, "message": text, "source": "openwatch-backup",
                       "time": datetime.now(UTC).isoformat(), **data}, default=str).encode()
    last = ""
    for attempt in range(_ATTEMPTS):
        request = urllib.request.Request(webhook_url, data=body, method="POST",  # noqa: S310 - http(s) checked in settings
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return {"delivered": True, "status": int(response.status), "attempts": attempt + 1}
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = type(exc).__name__
        time.sleep(0.5 * 2**attempt)
    log.warning("%s: the webhook did not take the alert (%s)", event, last)
    return {"delivered": False, "reason": redact(last), "attempts": _ATTEMPTS}
