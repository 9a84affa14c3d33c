"""The S3 settings: off by default, on with a bucket, and bad input stopped with one line naming the variable,
what is wrong and an example, before anything is built or uploaded."""

from __future__ import annotations

import os

import pytest

from openwatch_backup.errors import ConfigError
from openwatch_backup.settings import load_settings
from openwatch_backup.storage.factory import build_storages, s3_config
from openwatch_backup.storage.local import LocalStorage
from openwatch_backup.storage.s3 import S3Storage

URL = "postgresql://openwatch:pw@database:5432/openwatch"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("OPENWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", URL)
    return monkeypatch


def config_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(f"OPENWATCH_BACKUP_{name}", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "\n" not in info.value.message
    return info.value.message


def test_off_site_is_off_without_a_bucket() -> None:
    settings = load_settings()
    assert settings.s3_bucket is None
    storages = build_storages(settings)
    assert isinstance(storages.local, LocalStorage)
    assert storages.offsite is None


def test_a_bucket_turns_off_site_on(clean_env: pytest.MonkeyPatch) -> None:
    env = {"S3_BUCKET": "openwatch-backups", "S3_PREFIX": "/prod/openwatch/", "S3_REGION": "eu-central-1",
           "S3_ENDPOINT_URL": "https://minio.example.com:9000/", "S3_ADDRESSING_STYLE": "path",
           "S3_STORAGE_CLASS": "STANDARD_IA", "S3_SSE": "aws:kms", "S3_KMS_KEY_ID": "alias/backups"}
    for name, value in env.items():
        clean_env.setenv(f"OPENWATCH_BACKUP_{name}", value)
    clean_env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = load_settings()
    config = s3_config(settings)
    assert config is not None
    assert (config.bucket, config.prefix, config.region, config.endpoint_url, config.addressing_style) == (
        "openwatch-backups", "prod/openwatch", "eu-central-1", "https://minio.example.com:9000", "path")
    assert config.object_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/backups",
                                    "StorageClass": "STANDARD_IA"}
    offsite = build_storages(settings).offsite
    assert isinstance(offsite, S3Storage)
    assert offsite.location("postgres/a.dump") == "s3://openwatch-backups/prod/openwatch/postgres/a.dump"


def test_an_empty_bucket_variable_means_off(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENWATCH_BACKUP_S3_BUCKET", "")
    assert build_storages(load_settings()).offsite is None


@pytest.mark.parametrize(("env", "expected"), [
    ({"S3_BUCKET": "Backups_2026"}, "OPENWATCH_BACKUP_S3_BUCKET: is not a valid bucket name (3-63 lowercase letters, "
     "digits, dots or hyphens, starting and ending with a letter or digit, not an IP address), e.g. "
     "openwatch-backups (got 'Backups_2026')"),
    ({"S3_BUCKET": "ab"}, "OPENWATCH_BACKUP_S3_BUCKET: is not a valid bucket name"),
    ({"S3_BUCKET": "192.168.1.10"}, "not an IP address"),
    ({"S3_BUCKET": "s3://openwatch-backups/prod"}, "OPENWATCH_BACKUP_S3_BUCKET: must be the bare bucket name, without "
     "s3:// or a path (the prefix is OPENWATCH_BACKUP_S3_PREFIX), e.g. openwatch-backups"),
    ({"S3_BUCKET": "b-ok", "S3_ENDPOINT_URL": "minio.example.com:9000"}, "OPENWATCH_BACKUP_S3_ENDPOINT_URL must start "
     "with http:// or https:// and name a host, e.g. https://minio.example.com:9000"),
    ({"S3_BUCKET": "b-ok", "S3_ENDPOINT_URL": "https://minio:99999"}, "OPENWATCH_BACKUP_S3_ENDPOINT_URL has an "
     "invalid port, e.g. https://minio.example.com:9000"),
    ({"S3_BUCKET": "b-ok", "S3_SSE": "aes256"}, "OPENWATCH_BACKUP_S3_SSE: must be none, AES256 or aws:kms, e.g. AES256 "
     "(got 'aes256')"),
    ({"S3_BUCKET": "b-ok", "S3_SSE": "aws:kms"}, "OPENWATCH_BACKUP_S3_KMS_KEY_ID: is required when "
     "OPENWATCH_BACKUP_S3_SSE=aws:kms, e.g. arn:aws:kms:"),
    ({"S3_BUCKET": "b-ok", "S3_KMS_KEY_ID": "alias/x"}, "OPENWATCH_BACKUP_S3_KMS_KEY_ID: is set but "
     "OPENWATCH_BACKUP_S3_SSE is 'none'"),
    ({"S3_BUCKET": "b-ok", "S3_ADDRESSING_STYLE": "host"}, "OPENWATCH_BACKUP_S3_ADDRESSING_STYLE: must be auto, path "
     "or virtual, e.g. path (got 'host')"),
    ({"S3_BUCKET": "b-ok", "S3_PREFIX": "a/../b"}, "OPENWATCH_BACKUP_S3_PREFIX: must be a key prefix without empty, "
     "'.' or '..' parts, e.g. openwatch-backup/prod"),
    ({"S3_BUCKET": "b-ok", "S3_STORAGE_CLASS": "standard ia"}, "OPENWATCH_BACKUP_S3_STORAGE_CLASS: is not a storage "
     "class name (capitals, digits and _), e.g. STANDARD_IA"),
])
def test_bad_input_is_one_line_naming_the_variable(clean_env: pytest.MonkeyPatch, env: dict[str, str],
                                                   expected: str) -> None:
    assert expected in config_error(clean_env, **env)


def test_credentials_in_the_endpoint_are_refused_and_not_repeated(clean_env: pytest.MonkeyPatch) -> None:
    message = config_error(clean_env, S3_BUCKET="b-ok", S3_ENDPOINT_URL="https://AKIAEXAMPLE:S3cr3t-Value@minio:9000")
    assert message.startswith("OPENWATCH_BACKUP_S3_ENDPOINT_URL must not carry credentials")
    assert "S3cr3t-Value" not in message
    assert "AKIAEXAMPLE" not in message
