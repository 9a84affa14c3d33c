"""load_settings(): defaults, parsing, and one-line ConfigErrors that name the variable and hide secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import ConfigError
from openwatch_backup.settings import Settings, env_name, load_settings

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


# --- bounds: every number a user can set is finite and has a sane maximum (issue 9, failure 7) --------------
NUMERIC_FIELDS = [name for name, info in Settings.model_fields.items() if info.annotation in (int, float)]


def test_every_numeric_setting_has_both_bounds_and_the_readme_shows_them() -> None:
    """A new numeric setting without a maximum fails here, before it can crash a prune with an overflow."""
    from openwatch_backup.settings import allowed_range, settings_table_markdown

    assert len(NUMERIC_FIELDS) >= 21  # the walk finds them (a str or Path annotation would hide one)
    for name in NUMERIC_FIELDS:
        kinds = {type(m).__name__ for m in Settings.model_fields[name].metadata}
        assert kinds & {"Ge", "Gt"}, name
        assert "Le" in kinds, name
        if Settings.model_fields[name].annotation is float:
            assert "AllowInfNan" in kinds, name
        assert f"| `{env_name(name)}` | " in settings_table_markdown()
        assert allowed_range(name) in settings_table_markdown().split(f"`{env_name(name)}`")[1].split("\n")[0]
    assert allowed_range("zstd_level") == "1 to 19"
    assert allowed_range("heartbeat_seconds") == "over 0, up to 300"
    assert allowed_range("retention_days") == "1 to 36,500"


@pytest.mark.parametrize("field", NUMERIC_FIELDS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "99999999999999999999", "1e308", "-1", "NaN"])
def test_out_of_range_numbers_are_one_line_errors_naming_the_variable(monkeypatch: pytest.MonkeyPatch, field: str,
                                                                      value: str) -> None:
    name = env_name(field)
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, **{name: value})

    assert message.startswith(f"{name}: Input should be "), message
    assert message.endswith(f" (got {value!r})")
    assert message.count(";") == 0


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("OPENWATCH_BACKUP_RETENTION_DAYS", "99999999999999999999",
     "Input should be less than or equal to 36500"),
    ("OPENWATCH_BACKUP_FREE_SPACE_FACTOR", "inf", "Input should be a finite number"),
    ("OPENWATCH_BACKUP_SIZE_BUDGET_GIB", "Infinity", "Input should be a finite number"),
    ("OPENWATCH_BACKUP_KEEP_LAST", "1.5", "Input should be a valid integer, unable to parse string as an integer"),
    ("OPENWATCH_BACKUP_HEARTBEAT_SECONDS", "0", "Input should be greater than 0"),
])
def test_the_issues_repros(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, **{name: value})

    assert message == f"{name}: {expected} (got {value!r})"


def test_the_largest_allowed_values_are_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The maxima themselves load, and the retention policy built from them computes without overflow."""
    from datetime import UTC, datetime

    from openwatch_backup.operations.retention_policy import OVERRIDE_KEYS, retention_config

    monkeypatch.setenv("OPENWATCH_DATABASE_URL", URL)
    for name in NUMERIC_FIELDS:
        high = next(m.le for m in Settings.model_fields[name].metadata if type(m).__name__ == "Le")
        monkeypatch.setenv(env_name(name), str(high))
    settings = load_settings()
    config = retention_config({field: getattr(settings, field) for field in OVERRIDE_KEYS.values()})
    for policy in config.policies.values():
        if policy.max_age is not None:
            assert datetime.now(UTC) - policy.max_age < datetime.now(UTC)
    assert config.size_budget_bytes == 1_048_576 * 1024**3


# --- cron: the shape when the settings are read; celery's crontab where schedules are used ---------------------
class _NoStoredSchedules:
    """backup_settings without rows (the stored-value cases run on PostgreSQL: tests/test_schedule_stored.py)."""

    def all(self, prefix: str = "") -> dict[str, object]:
        return {}



@pytest.mark.parametrize(("expression", "reason"), [
    ("61 * * * *", "is not a valid cron expression (Invalid end range: 61 > 59), e.g. '0 2 * * *'"),
    ("* 24 * * *", "is not a valid cron expression (Invalid end range: 24 > 23), e.g. '0 2 * * *'"),
    ("0 2 31 2 *", "is not a valid cron expression (Invalid crontab: day_of_month '31' never occurs in "
                   "month_of_year '2'), e.g. '0 2 * * *'"),
    ("*/0 * * * *", "is not a valid cron expression (slice step cannot be zero), e.g. '0 2 * * *'"),
    ("0 2 * *", "is not a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"),
])
@pytest.mark.parametrize("field", ["schedule", "drill_schedule"])
def test_bad_cron_expressions_are_refused_with_one_line(monkeypatch: pytest.MonkeyPatch, field: str, expression: str,
                                                         reason: str) -> None:
    """A value not shaped like cron is refused when the settings load (no celery); one celery's crontab refuses
    is refused, with the same line, where the schedules are used (loading them would import celery, 0.4 s of every
    CLI command)."""
    from typing import cast

    from openwatch_backup.catalog.settings_store import SettingsStore
    from openwatch_backup.scheduling import current_schedules

    name = env_name(field)
    line = f"{name}: {reason} (got {expression!r})"
    if "5-field" in reason:
        assert config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, **{name: expression}) == line
        return
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", URL)
    monkeypatch.setenv(name, expression)
    schedules = current_schedules(load_settings(), cast(SettingsStore, _NoStoredSchedules()))
    assert [(p.key, p.detail) for p in schedules.problems] == [(name, line)]
    with pytest.raises(ConfigError) as info:
        schedules.require_usable()
    assert (info.value.message, info.value.exit_status) == (line, 2)


def test_good_cron_expressions_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWATCH_DATABASE_URL", URL)
    monkeypatch.setenv("OPENWATCH_BACKUP_SCHEDULE", "*/15 1-5 * * mon-fri")
    monkeypatch.setenv("OPENWATCH_BACKUP_DRILL_SCHEDULE", "0 4 1 */3 *")

    settings = load_settings()

    assert (settings.schedule, settings.drill_schedule) == ("*/15 1-5 * * mon-fri", "0 4 1 */3 *")


# --- the database URL's pieces -----------------------------------------------------------------------------------
def test_bad_ssl_mode_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_DATABASE_SSL_MODE="bogus") == (
        "OPENWATCH_DATABASE_SSL_MODE: is not a libpq sslmode; use one of disable, allow, prefer, require, verify-ca, "
        "verify-full (got 'bogus')")


@pytest.mark.parametrize(("query", "expected"), [
    ("sslmode=bogus", "has sslmode 'bogus'; use one of disable, allow, prefer, require, verify-ca, verify-full"),
    ("bogusparam=1", "has an unknown connection parameter 'bogusparam' in its query (after ?); remove it, or use "
                     "one of libpq's (https://www.postgresql.org/docs/current/libpq-connect.html)"),
])
def test_bad_url_query_is_a_config_error(monkeypatch: pytest.MonkeyPatch, query: str, expected: str) -> None:
    url = f"postgresql://openwatch:{SECRET}@database:5432/openwatch?{query}"
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=url)

    assert message == f"OPENWATCH_DATABASE_URL {expected}"
    assert SECRET not in message


def test_volume_is_no_default_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, OPENWATCH_DATABASE_URL=URL, OPENWATCH_BACKUP_KIND="volume")

    assert message == ("OPENWATCH_BACKUP_KIND: volume snapshots are taken per volume (OPENWATCH_BACKUP_VOLUMES, on "
                       "OPENWATCH_BACKUP_VOLUME_SCHEDULE), not as the default kind; use full, plain, schema, tables, "
                       "config or redis (got 'volume')")
