"""The one place that turns settings into storage backends (drivers never read settings themselves).

Local storage always exists; the off-site S3 storage exists when OPENWATCH_BACKUP_S3_BUCKET is set. boto3 is
imported only then, so a host without off-site never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openwatch_backup.errors import ConfigError
from openwatch_backup.storage.base import Storage
from openwatch_backup.storage.local import LocalStorage

if TYPE_CHECKING:
    from openwatch_backup.settings import Settings
    from openwatch_backup.storage.s3 import S3Config, S3Storage


@dataclass(frozen=True)
class Storages:
    """The backends a service works with: `offsite` is None when off-site copies are off."""

    local: Storage
    offsite: Storage | None

    @property
    def all(self) -> list[Storage]:
        return [self.local] if self.offsite is None else [self.local, self.offsite]


def local_storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.dir)


def s3_config(settings: Settings) -> S3Config | None:
    """The S3 configuration the settings describe, or None when off-site is off."""
    if not settings.s3_bucket:
        return None
    from openwatch_backup.storage.s3 import S3Config

    return S3Config(bucket=settings.s3_bucket, prefix=settings.s3_prefix, region=settings.s3_region,
                    endpoint_url=settings.s3_endpoint_url, addressing_style=settings.s3_addressing_style,
                    storage_class=settings.s3_storage_class, sse=settings.s3_sse, kms_key_id=settings.s3_kms_key_id)


def offsite_storage(settings: Settings) -> S3Storage | None:
    config = s3_config(settings)
    if config is None:
        return None
    from openwatch_backup.storage.s3 import S3Storage

    return S3Storage(config)


NOT_CONFIGURED = ("off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET (and "
                  "OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3)")


def required_offsite(offsite: S3Storage | None) -> S3Storage:
    """The off-site storage, or the one line that says how to configure it."""
    if offsite is None:
        raise ConfigError(NOT_CONFIGURED)
    return offsite


def build_storages(settings: Settings) -> Storages:
    return Storages(local=local_storage(settings), offsite=offsite_storage(settings))
