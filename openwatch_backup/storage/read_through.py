"""Which copy of a backup to read: the local file while it is there, else the off-site object.

Verify, restore and drill read a backup whose local file may be gone (deleted by hand, by local retention
while the S3 copy is kept, or a new host that only has the bucket). The S3 object is read as a stream
(S3Storage.open_reader resumes a broken download), so no temporary copy is ever written. The manifest is
read from the same storage as the artifact: a manifest from one place never vouches for a file in another.
"""

from __future__ import annotations

from dataclasses import dataclass

from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.errors import ConfigError, StorageObjectMissing
from openwatch_backup.storage.base import Storage

OFFSITE_SETTING = "OPENWATCH_BACKUP_S3_BUCKET"


@dataclass(frozen=True)
class ReadSource:
    storage: Storage
    copy: CopyStorage  # which of the backup's copies these bytes are


class ReadThrough:
    def __init__(self, local: Storage, offsite: Storage | None) -> None:
        self.local = local
        self.offsite = offsite

    def source_for(self, key: str, *, copy: CopyStorage | None = None, local_usable: bool = True,
                   remote_usable: bool = True) -> ReadSource:
        """The storage holding `key`. copy: only that copy (ConfigError when it is S3 and off-site is off).
        local_usable / remote_usable=False: the catalog says that copy was deleted or is being deleted (its files
        may be partly gone), so it is read only when no other copy is there. StorageObjectMissing (one line
        naming each place looked at) when neither has it."""
        if copy is CopyStorage.S3:
            return ReadSource(self._require_offsite(), CopyStorage.S3)
        if copy is CopyStorage.LOCAL:
            return ReadSource(self.local, CopyStorage.LOCAL)
        local_there = self.local.exists(key)
        if local_there and (local_usable or self.offsite is None):
            return ReadSource(self.local, CopyStorage.LOCAL)
        remote_there = self.offsite is not None and self.offsite.exists(key)
        if self.offsite is not None and remote_there and (remote_usable or not local_there):
            return ReadSource(self.offsite, CopyStorage.S3)
        if local_there:
            return ReadSource(self.local, CopyStorage.LOCAL)
        raise StorageObjectMissing(self.missing_message(key))

    def missing_message(self, key: str) -> str:
        if self.offsite is None:
            return f"{self.local.location(key)} does not exist"  # verify's long-standing line, off-site off
        return f"{self.local.location(key)} does not exist, nor does its off-site copy {self.offsite.location(key)}"

    def _require_offsite(self) -> Storage:
        if self.offsite is None:
            raise ConfigError(f"--copy s3 reads the off-site copy, but off-site storage is not configured: set "
                              f"{OFFSITE_SETTING} (and OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS "
                              "S3)")
        return self.offsite
