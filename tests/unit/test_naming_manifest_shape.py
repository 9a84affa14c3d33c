"""Artifact names, the manifest's JSON round trip and refusals, and the dump-shape check."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openwatch_backup.core.dump_shape import ShapeWatcher, shape_problem
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import artifact_name, is_safe_name, manifest_name
from openwatch_backup.errors import ManifestError

# --- names -----------------------------------------------------------------------------------------
CEST = timezone(timedelta(hours=2))


@pytest.mark.parametrize(("kind", "extension", "attempt", "expected"), [
    (BackupKind.FULL, ".dump.zst", 0, "openwatch_20261126_000000.dump.zst"),
    (BackupKind.PLAIN, ".sql.gz", 1, "openwatch_20261126_000000_2.sql.gz"),
    (BackupKind.SCHEMA, ".sql", 2, "schema_20261126_000000_3.sql"),
    (BackupKind.TABLES, ".dump", 0, "scan_data_20261126_000000.dump"),
])
def test_artifact_name_is_utc_with_attempt_suffix(kind: BackupKind, extension: str, attempt: int,
                                                  expected: str) -> None:
    when = datetime(2026, 11, 26, 2, 0, 0, tzinfo=CEST)  # 00:00:00 UTC

    assert artifact_name(kind, extension, when, attempt) == expected


def test_manifest_name() -> None:
    assert manifest_name("openwatch_20261126_000000.dump") == "openwatch_20261126_000000.dump.manifest.json"


@pytest.mark.parametrize(("name", "safe"), [
    ("openwatch_20261126_000000.dump.zst", True),
    ("scan_data_20261126_000000_2.dump.manifest.json", True),
    ("../openwatch.dump", False),
    ("..", False),
    ("a..b.dump", False),
    ("/etc/passwd", False),
    ("sub/openwatch.dump", False),
    (".hidden", False),
    ("", False),
    ("name with space.sql", False),
])
def test_is_safe_name(name: str, safe: bool) -> None:
    assert is_safe_name(name) is safe


# --- manifest --------------------------------------------------------------------------------------
SOURCE = "postgres/openwatch_20261126_000000.dump.manifest.json"


def manifest_fields() -> dict[str, Any]:
    return {
        "manifest_version": 1, "run_id": "0b6f5a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "kind": "full",
        "format": "custom", "compression": "zstd", "wrapper": "zstd", "trigger": "schedule",
        "created_at": "2026-11-26T00:00:00+00:00", "finished_at": "2026-11-26T00:01:30+00:00",
        "database": "openwatch", "server_version": "15.8", "pg_dump_version": "15.8",
        "openwatch_alembic_head": "035_merge_alerts", "artifact": "openwatch_20261126_000000.dump.zst",
        "size_bytes": 123456, "sha256": "ab" * 32, "row_counts": {"hosts": 10, "scans": 3},
        "canary_nonce": "f" * 32, "canary_included": True, "tables": [], "excluded_table_data": ["backup_runs"],
        "package_version": "0.1.0",
    }


def test_manifest_round_trip() -> None:
    manifest = Manifest(**manifest_fields())

    data = manifest.to_json()

    assert json.loads(data) == manifest_fields()
    assert data.endswith(b"}\n")
    assert Manifest.from_json(data) == manifest


def expect_manifest_error(data: bytes) -> str:
    with pytest.raises(ManifestError) as info:
        Manifest.from_json(data, source=SOURCE)
    assert (info.value.code, info.value.exit_status) == ("manifest", 7)
    return info.value.message


def test_not_json() -> None:
    assert expect_manifest_error(b"{half") == (
        f"{SOURCE} is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); "
        "restore it from another copy")


def test_missing_field() -> None:
    fields = manifest_fields()
    del fields["sha256"]

    assert expect_manifest_error(json.dumps(fields).encode()) == (
        f"{SOURCE} is not a valid manifest (sha256: Field required)")


@pytest.mark.parametrize("bad", ["AB" * 32, "ab" * 31, "zz" * 32])
def test_wrong_sha256_shape(bad: str) -> None:
    data = json.dumps({**manifest_fields(), "sha256": bad}).encode()

    assert expect_manifest_error(data) == (
        f"{SOURCE} is not a valid manifest (sha256: String should match pattern '^[0-9a-f]{{64}}$')")


def test_newer_manifest_version_says_to_upgrade() -> None:
    data = json.dumps({**manifest_fields(), "manifest_version": 2, "field_from_the_future": 1}).encode()

    assert expect_manifest_error(data) == (
        f"{SOURCE} has manifest_version 2, newer than this openwatch-backup understands (1); "
        "upgrade openwatch-backup")


def test_a_json_list_is_not_a_manifest() -> None:
    assert expect_manifest_error(b"[]") == (
        f"{SOURCE} is not a valid manifest (document: Input should be a valid dictionary or instance of Manifest)")


# --- shape -----------------------------------------------------------------------------------------
PLAIN_SQL = (b"--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n"
             + b"INSERT INTO hosts VALUES (1, 'web-01');\n" * 4000
             + b"\n--\n-- PostgreSQL database dump complete\n--\n\n")


class ChunkSource:
    """An in-memory Source that hands out at most `step` bytes per read."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data, self._step, self._at = data, step, 0

    def read(self, size: int) -> bytes:
        chunk = self._data[self._at:self._at + min(size, self._step)]
        self._at += len(chunk)
        return chunk


def drain(watcher: ShapeWatcher) -> bytes:
    out = bytearray()
    while chunk := watcher.read(1 << 20):
        out += chunk
    return bytes(out)


def test_custom_header_is_accepted_and_anything_else_refused() -> None:
    assert shape_problem("custom", b"PGDMP\x01\x0f\x00", b"tail") is None
    assert shape_problem("custom", b"-- SQL", b"tail") == (
        "pg_dump's output does not start with a custom-format header (PGDMP)")
    assert shape_problem("custom", b"", b"") == "pg_dump wrote nothing"


def test_plain_dump_with_trailer_passes_through_unchanged() -> None:
    watcher = ShapeWatcher(ChunkSource(PLAIN_SQL, step=333))

    assert drain(watcher) == PLAIN_SQL
    assert watcher.head == PLAIN_SQL[:64]
    assert watcher.tail == PLAIN_SQL[-512:]
    assert shape_problem("plain", watcher.head, watcher.tail) is None


def test_gzip_plain_is_inflated_for_the_check_but_passed_on_compressed() -> None:
    packed = gzip.compress(PLAIN_SQL)
    watcher = ShapeWatcher(ChunkSource(packed, step=5), gzip=True)

    assert drain(watcher) == packed
    assert (watcher.head, watcher.tail) == (PLAIN_SQL[:64], PLAIN_SQL[-512:])
    assert shape_problem("plain", watcher.head, watcher.tail) is None


CUT_SHORT = "pg_dump's plain output lacks its 'dump complete' trailer; the stream was cut short"


def test_truncated_plain_is_refused() -> None:
    watcher = ShapeWatcher(ChunkSource(PLAIN_SQL[:-60], step=1000))
    drain(watcher)

    assert shape_problem("plain", watcher.head, watcher.tail) == CUT_SHORT


def test_truncated_gzip_plain_is_refused() -> None:
    packed = gzip.compress(PLAIN_SQL)
    watcher = ShapeWatcher(ChunkSource(packed[: len(packed) * 2 // 3], step=11), gzip=True)
    drain(watcher)

    assert watcher.head == PLAIN_SQL[:64]
    assert shape_problem("plain", watcher.head, watcher.tail) == CUT_SHORT


def test_plain_that_is_not_gzip_when_gzip_was_expected_is_refused() -> None:
    watcher = ShapeWatcher(ChunkSource(PLAIN_SQL, step=100), gzip=True)

    assert drain(watcher) == PLAIN_SQL
    assert shape_problem("plain", watcher.head, watcher.tail) == CUT_SHORT
