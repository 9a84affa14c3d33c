"""The demo's database, seeded by a version before the sample credentials were encrypted, is made again: else its
drill would fail secrets_mismatch on data that never had a key."""

from __future__ import annotations

import psycopg

from openwatch_backup.devstack.databases import drop_database, ensure_demo_database
from openwatch_backup.devstack.postgres import PostgresHandle
from openwatch_backup.sample import credentials_fit


def test_a_demo_database_with_unopenable_credentials_is_seeded_again(pg: PostgresHandle) -> None:
    name = "owb_test_demo_reseed"
    drop_database(pg, name)
    try:
        url = ensure_demo_database(pg, name, target_mib=2)
        with psycopg.connect(url) as conn:
            assert credentials_fit(conn)
            noise = "decode(md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex')"
            conn.execute(f"UPDATE hosts SET encrypted_credentials = {noise} WHERE encrypted_credentials IS NOT NULL")
            conn.commit()
            assert not credentials_fit(conn)

        ensure_demo_database(pg, name, target_mib=2)

        with psycopg.connect(url) as conn:
            assert credentials_fit(conn)
            assert conn.execute("SELECT count(*) FROM hosts").fetchone()[0] > 0  # type: ignore[index]
    finally:
        drop_database(pg, name)
