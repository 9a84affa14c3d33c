"""Parse OpenWatch's database URL into the pieces libpq and SQLAlchemy need.

OpenWatch writes `postgresql://user:password@host:port/db` for psycopg2. We accept that as is (and the
`+psycopg2`/`+psycopg` variants), talk to it with psycopg 3, and hand pg_dump the pieces through the
child's environment so that the password never reaches argv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg")
URL_EXAMPLE = "postgresql://openwatch:PASSWORD@database:5432/openwatch"


class DsnError(ValueError):
    """The URL is not a usable PostgreSQL URL. The message never repeats the URL (it holds a password)."""


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the database is and how to log in. `password` is excluded from repr."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    options: tuple[tuple[str, str], ...] = ()

    def with_dbname(self, dbname: str) -> DatabaseTarget:
        return DatabaseTarget(self.host, self.port, self.user, dbname, self.password, self.options)

    def libpq_env(self) -> dict[str, str]:
        """Environment variables for a libpq client (pg_dump, pg_restore, psql)."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
        }
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        names = {"sslmode": "PGSSLMODE", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
                 "sslrootcert": "PGSSLROOTCERT", "connect_timeout": "PGCONNECT_TIMEOUT"}
        for key, value in self.options:
            if key in names:
                env[names[key]] = value
        return env

    def connect_kwargs(self) -> dict[str, str | int]:
        """Keyword arguments for psycopg.connect()."""
        kwargs: dict[str, str | int] = {"host": self.host, "port": self.port, "user": self.user,
                                        "dbname": self.dbname}
        if self.password is not None:
            kwargs["password"] = self.password
        kwargs.update(dict(self.options))
        kwargs.setdefault("connect_timeout", 10)
        return kwargs

    def describe(self) -> str:
        """A safe, human description: no password."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"


def parse_database_url(url: str, *, sslmode: str | None = None) -> DatabaseTarget:
    """Parse a `postgresql://` URL. Raises DsnError with a message that never echoes the URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 5432
    except ValueError as exc:
        raise DsnError(f"is not a valid URL ({type(exc).__name__}); expected {URL_EXAMPLE}") from None
    if parts.scheme not in _SCHEMES:
        raise DsnError(f"must start with postgresql:// (got scheme {parts.scheme!r}); expected {URL_EXAMPLE}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise DsnError(f"names no database; expected {URL_EXAMPLE}")
    query = dict(parse_qsl(parts.query))
    # Always take these out of the query (the URL's own parts win), so no second password hides in options.
    query_host, query_user, query_password = query.pop("host", ""), query.pop("user", ""), query.pop("password", None)
    host = unquote(parts.hostname or "") or query_host or "localhost"
    user = unquote(parts.username or "") or query_user or "postgres"
    password = unquote(parts.password) if parts.password is not None else query_password
    if sslmode:
        query["sslmode"] = sslmode
    return DatabaseTarget(host=host, port=port, user=user, dbname=dbname, password=password,
                          options=tuple(sorted(query.items())))
