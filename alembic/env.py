"""Alembic environment for the plugin's own tables.

It keeps its own version table (`openwatch_backup_alembic_version`) so it never touches OpenWatch's
`alembic_version` chain. The connection comes from `openwatch-backup db upgrade` (config attribute
`connection`), or, when alembic is run by hand with alembic.ini, from OPENWATCH_DATABASE_URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from openwatch_backup.catalog.models import Base

VERSION_TABLE = "openwatch_backup_alembic_version"


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from openwatch_backup.catalog.engine import make_engine
    from openwatch_backup.settings import load_settings

    engine = make_engine(load_settings().target)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url="postgresql://", target_metadata=Base.metadata, version_table=VERSION_TABLE,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
