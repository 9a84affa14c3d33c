"""The sample database: every table gets rows, and the awkward values read back exactly."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from openwatch_backup.sample import add_awkward_data, create_schema, is_seeded, seed
from openwatch_backup.sample.awkward import (
    ALL_BYTES,
    EXPORT_SEQ_VALUE,
    IDENTITY_LAST_VALUE,
    LABELS,
    NASTY_TEXT,
    UNICODE_TEXT,
    big_text,
)
from openwatch_backup.sample.generate import SampleData
from openwatch_backup.sample.seed import TABLES
from openwatch_backup.sample.vocab import WORDS


@pytest.fixture
def sample_url(make_database: Callable[[str], str]) -> str:
    """A throwaway database (dropped WITH (FORCE) at teardown) holding schema, 2 MiB seed and awkward rows."""
    url = make_database("seed")
    with psycopg.connect(url) as conn:
        assert not is_seeded(conn)
        create_schema(conn)
        assert not is_seeded(conn)
        counts = seed(conn, target_mib=2)
        add_awkward_data(conn)
        assert is_seeded(conn)
    assert set(counts) == set(TABLES)
    assert all(n > 0 for n in counts.values()), counts
    assert counts["scan_findings"] == max(counts.values())
    return url


def test_awkward_values_read_back_exactly(sample_url: str) -> None:
    with psycopg.connect(sample_url) as conn:
        rows = {label: (payload, body) for label, payload, body
                in conn.execute("SELECT label, payload, body FROM reports.awkward").fetchall()}
        full = conn.execute("SELECT small, big, exact::text, approx, role::text, tags, numbers "
                            "FROM reports.awkward WHERE label = 'all-bytes'").fetchone()
        nulls = conn.execute("SELECT num_nulls(VARIADIC ARRAY[payload::text, body, small::text, whole::text, "
                             "big::text, exact::text, approx::text, single::text, flag::text, day::text, "
                             "moment::text, moment_tz::text, span::text, ident::text, doc::text, docb::text, "
                             "addr::text, tags::text, numbers::text, code::text, short::text, role::text]) "
                             "FROM reports.awkward WHERE label = 'all-nulls'").fetchone()
        seqs: dict[str, int] = dict(conn.execute("SELECT sequencename, last_value FROM pg_sequences "
                                 "WHERE schemaname = 'reports'").fetchall())
        mixed = conn.execute('SELECT count(*), count("Note With Spaces") FROM reports."Mixed Case Table"').fetchone()
        view = conn.execute("SELECT payload_bytes FROM reports.awkward_summary WHERE label = 'empty'").fetchone()

    assert set(rows) == set(LABELS)
    assert rows["all-bytes"][0] == ALL_BYTES
    assert rows["empty"] == (b"", "")
    assert rows["all-nulls"] == (None, None)
    assert rows["unicode"][1] == UNICODE_TEXT
    assert rows["nasty"] == (NASTY_TEXT.encode(), NASTY_TEXT)
    assert rows["big-text"][1] == big_text()
    assert len(rows["big-text"][1]) > 5_000_000
    assert full == (-32768, -9223372036854775808, "1234567890123456789012345678.000000000001", 0.1, "auditor",
                    ["a,b", 'quote"d', None, "", "back\\slash"], [1, None, -3])
    assert nulls == (22,)
    assert seqs == {"export_seq": EXPORT_SEQ_VALUE, "awkward_id_seq": IDENTITY_LAST_VALUE,
                    "Mixed Case Table_Id_seq": len(LABELS)}
    assert len(rows) < seqs["awkward_id_seq"]  # deleted rows left the identity counter ahead
    assert mixed == (len(LABELS), len(LABELS) - 1)
    assert view == (0,)


def test_generation_is_deterministic_and_copy_safe() -> None:
    def first_batch() -> tuple[list[object], list[str]]:
        data = SampleData(7)
        data.user_ids = [1, 2, 3]
        data.host_rows(3)
        scans, lines = data.scan_batch(500)
        return list(scans), lines

    assert first_batch() == first_batch()
    # Findings are written as raw COPY text: their vocabulary must need no escaping.
    assert not any(ch in word for word in WORDS for ch in "\t\n\r\\")
    assert all(line.count("\t") == 7 and line.endswith("\n") for line in first_batch()[1])
