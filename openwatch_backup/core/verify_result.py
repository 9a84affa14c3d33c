"""The typed outcome of a verify: passed, or failed for one named reason.

A verify never reports success on failure (pgBackRest's `verify` printed `status: error` and exited 0):
the result is data, stored on the verify run, and a failed result fails the run, the task and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class VerifyReason(StrEnum):
    MISSING = "missing"  # the artifact (or its manifest) is gone
    MANIFEST = "manifest"  # the manifest is unreadable, or disagrees with what the catalog recorded
    SIZE = "size"  # the file's size differs from the manifest (truncated, appended)
    CHECKSUM = "checksum"  # same size, different bytes
    UNREADABLE = "unreadable"  # does not decompress, or pg_restore/psql cannot read it
    # A config bundle: no passphrase is set, or it is not the one the bundle was made with (its key id differs).
    PASSPHRASE = "passphrase"  # noqa: S105 - a reason's name, not a password
    COUNTS = "counts"  # a restored table's row count differs from the manifest
    CANARY = "canary"  # the restored database lacks this dump's canary nonce (another dump, another database)
    MIGRATION_HEAD = "migration_head"  # the restored OpenWatch migration head differs from the manifest
    # The newest config bundle's master key does not decrypt the restored credentials (operations/secrets_proof.py).
    SECRETS_MISMATCH = "secrets_mismatch"


@dataclass(frozen=True)
class VerifyResult:
    deep: bool
    reason: VerifyReason | None = None
    message: str = "all checks passed"
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.reason is None

    def as_details(self) -> dict[str, Any]:
        return {"result": "passed" if self.passed else "failed", "reason": self.reason.value if self.reason else None,
                "message": self.message, "deep": self.deep, "checks": self.checks}


def failed(deep: bool, reason: VerifyReason, message: str, checks: dict[str, Any]) -> VerifyResult:
    return VerifyResult(deep=deep, reason=reason, message=message, checks=dict(checks))
