"""`offsite test`: put, head, get and delete a small probe object, and say which step failed and why.

Works on any Storage; with S3 the failure's code tells DNS/connection (storage_unreachable), TLS (storage_tls),
403 (storage_access_denied), wrong or missing credentials (storage_credentials), no such bucket
(storage_no_bucket) and clock skew (storage_clock_skew) apart. The probe object is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from openwatch_backup.errors import BackupError, StorageError, StorageIntegrityError
from openwatch_backup.storage.base import Storage

PROBE_PREFIX = ".openwatch-probe-"
STEPS = ("put", "head", "get", "delete")


@dataclass(frozen=True)
class ProbeStep:
    name: str
    ok: bool
    seconds: float
    code: str | None = None  # the error's stable code when the step failed
    message: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    location: str
    steps: tuple[ProbeStep, ...]

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(STEPS) and all(step.ok for step in self.steps)

    @property
    def failed(self) -> ProbeStep | None:
        return next((step for step in self.steps if not step.ok), None)

    def summary(self) -> str:
        """One line for the CLI and the page."""
        failed = self.failed
        if failed is None:
            timings = ", ".join(f"{s.name} {s.seconds * 1000:.0f} ms" for s in self.steps)
            return f"{self.location}: put, head, get and delete work ({timings})"
        return f"{self.location}: {failed.name} failed [{failed.code}]: {failed.message}"


def probe(storage: Storage, *, clock: Callable[[], float] = time.monotonic) -> ProbeResult:
    key = f"{PROBE_PREFIX}{os.urandom(8).hex()}"
    payload = os.urandom(1024)
    location = storage.location(key)

    def head() -> None:
        if not storage.exists(key):
            raise StorageIntegrityError(f"{location} is missing right after it was written")
        if storage.size(key) != len(payload):
            raise StorageIntegrityError(f"{location} is {storage.size(key)} bytes, not the {len(payload)} written")

    def get() -> None:
        if storage.read_bytes(key) != payload:
            raise StorageIntegrityError(f"{location} reads back other bytes than were written")

    def delete() -> None:
        storage.delete(key)
        if storage.exists(key):
            raise StorageError(f"{location} is still there after its delete")

    actions: dict[str, Callable[[], None]] = {"put": lambda: storage.put_bytes(key, payload), "head": head,
                                              "get": get, "delete": delete}
    steps: list[ProbeStep] = []
    for name in STEPS:
        started = clock()
        try:
            actions[name]()
        except BackupError as exc:
            steps.append(ProbeStep(name, False, clock() - started, exc.code, exc.message))
            break
        except OSError as exc:
            steps.append(ProbeStep(name, False, clock() - started, StorageError.code, f"{location}: {exc}"))
            break
        steps.append(ProbeStep(name, True, clock() - started))
    if steps[-1].name != "delete" and steps[0].ok:
        with contextlib.suppress(BackupError, OSError):
            storage.delete(key)  # leave nothing behind; the step that failed is what we report
    return ProbeResult(location=location, steps=tuple(steps))
