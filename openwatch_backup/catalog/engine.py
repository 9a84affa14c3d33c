"""SQLAlchemy engine for OpenWatch's database, always through psycopg 3.

OpenWatch's URL says `postgresql://` (psycopg2). We build the URL from its parts instead of rewriting
the string, so a password with special characters survives and never lands in a log line.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

from openwatch_backup.core.dsn import DatabaseTarget

APPLICATION_NAME = "openwatch-backup"


def sqlalchemy_url(target: DatabaseTarget) -> URL:
    options = dict(target.options)
    options.pop("connect_timeout", None)
    return URL.create("postgresql+psycopg", username=target.user, password=target.password,
                      host=target.host, port=target.port, database=target.dbname, query=options)


def make_engine(target: DatabaseTarget) -> Engine:
    connect_timeout = int(dict(target.options).get("connect_timeout", 10))
    return create_engine(sqlalchemy_url(target), pool_pre_ping=True, pool_size=2, max_overflow=2,
                         hide_parameters=True,
                         connect_args={"application_name": APPLICATION_NAME, "connect_timeout": connect_timeout})
