"""Where a backup's files are kept, and the states one copy goes through."""

from __future__ import annotations

from enum import StrEnum


class CopyStorage(StrEnum):
    LOCAL = "local"  # OPENWATCH_BACKUP_DIR
    S3 = "s3"  # OPENWATCH_BACKUP_S3_BUCKET


class CopyState(StrEnum):
    PENDING = "pending"  # recorded, nothing checked yet (local: written, not verified; s3: to be copied)
    COPYING = "copying"  # an upload is under way (its upload id is recorded for the sweeper)
    VERIFIED = "verified"  # its bytes were checked against the manifest's size and sha256
    FAILED = "failed"  # the copy or its check failed; `error` says why (a later run may try again)
    DELETED = "deleted"  # retention removed it (or began to: the files may be partly gone)
