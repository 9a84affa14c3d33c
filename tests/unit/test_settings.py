"""load_settings(): defaults, parsing, and one-line ConfigErrors that name the variable and hide secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import ConfigError
from openwatch_backup.settings import Settings, load_settings

URL = "postgresql://openwatch:pw@database:5432/openwatch"
SECRET = "Sup3r-Secret-pw"
EXAMPLE = "expected postgresql://openwatch:PASSWORD@database:5432/openwatch"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("OPENWATCH_"):
            monkeypatch.delenv(name)
    return monkeypatch


def config_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert (info.value.code, info.value.exit_status) == ("config", 2)
    assert "\n" not in info.value.message
    return info.value.message


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", URL)

    assert load_settings() == Settings(
        database_url=URL, database_ssl_mode=None, dir=Path("/openwatch/data/backups"), compression=Compression.ZSTD,
        zstd_level=3, zstd_threads=0, kind=BackupKind.FULL, tables=["hosts", "scans", "scan_findings"],
        pg_bin_dir=None, free_space_factor=0.5, heartbeat_seconds=5.0)


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"OPENWATCH_DATABASE_URL": URL, "OPENWATCH_DATABASE_SSL_MODE": "require",
                        "OPENWATCH_BACKUP_DIR": "/srv/backups", "OPENWATCH_BACKUP_COMPRESSION": "pg",
                        "OPENWATCH_BACKUP_KIND": "tables", "OPENWATCH_BACKUP_TABLES": "hosts, scans",
                        "OPENWATCH_BACKUP_ZSTD_LEVEL": "19"}.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert (settings.dir, settings.compression, settings.kind, settings.tables, settings.zstd_level) == (
        Path("/srv/backups"), Compression.PG, BackupKind.TABLES, ["hosts", "scans"], 19)
    assert settings.target.options == (("sslmode", "require"),)
    assert settings.postgres_dir == Path("/srv/backups/postgres")


def test_schema_qualified_tables_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", URL)
    monkeypatch.setenv("OPENWATCH_BACKUP_TABLES", "public.hosts,scan_findings,")

    assert load_settings().tables == ["public.hosts", "scan_findings"]


def test_bad_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_BACKUP_COMPRESSION="lz4")

    assert message == "OPENWATCH_BACKUP_COMPRESSION: Input should be 'zstd', 'pg' or 'none' (got 'lz4')"


def test_a_newline_in_a_value_stays_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_BACKUP_COMPRESSION="lz4\nzstd")

    assert message == "OPENWATCH_BACKUP_COMPRESSION: Input should be 'zstd', 'pg' or 'none' (got 'lz4\\nzstd')"


def test_missing_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_error(monkeypatch) == (
        "OPENWATCH_DATABASE_URL is not set (e.g. postgresql://openwatch:PASSWORD@database:5432/openwatch)")


@pytest.mark.parametrize("url", [f"mysql://openwatch:{SECRET}@database/openwatch",
                                 f"postgresql://openwatch:{SECRET}@database:99999/openwatch"])
def test_malformed_url_from_the_environment_hides_the_password(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=url)

    assert SECRET not in message
    assert message.startswith("OPENWATCH_DATABASE_URL ")


def test_malformed_url_given_as_an_argument_hides_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(database_url=f"mysql://openwatch:{SECRET}@database/openwatch")

    assert info.value.message == f"OPENWATCH_DATABASE_URL must start with postgresql:// (got scheme 'mysql'); {EXAMPLE}"


def test_bad_table_name(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_BACKUP_TABLES="hosts;drop")

    assert message == ("OPENWATCH_BACKUP_TABLES: 'hosts;drop' is not a table name (letters, digits, _ and one "
                       "optional schema.) (got 'hosts;drop')")


def test_no_table_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_BACKUP_TABLES=" , ")

    assert message == ("OPENWATCH_BACKUP_TABLES: names no table; give at least one, e.g. hosts,scans,scan_findings "
                       "(got ' , ')")


@pytest.mark.parametrize(("level", "expected"), [
    ("0", "OPENWATCH_BACKUP_ZSTD_LEVEL: Input should be greater than or equal to 1 (got '0')"),
    ("20", "OPENWATCH_BACKUP_ZSTD_LEVEL: Input should be less than or equal to 19 (got '20')"),
])
def test_zstd_level_out_of_range(monkeypatch: pytest.MonkeyPatch, level: str, expected: str) -> None:
    assert config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_BACKUP_ZSTD_LEVEL=level) == expected


def test_several_problems_are_joined_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_BACKUP_COMPRESSION="lz4",
                           OPENWATCH_BACKUP_ZSTD_LEVEL="20")

    assert message == ("OPENWATCH_BACKUP_COMPRESSION: Input should be 'zstd', 'pg' or 'none' (got 'lz4'); "
                       "OPENWATCH_BACKUP_ZSTD_LEVEL: Input should be less than or equal to 19 (got '20')")
