"""Parse OpenWatch's database URL into the pieces libpq and SQLAlchemy need.

OpenWatch writes `postgresql://user:password@host:port/db` for psycopg2. We accept that as is (and the
`+psycopg2`/`+psycopg` variants), talk to it with psycopg 3, and hand pg_dump the pieces through the
child's environment so that the password never reaches argv.
"""

from __future__ import annotations

import re
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
    """Parse a `postgresql://` URL. Raises DsnError with a message that never echoes the URL or its password."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in _SCHEMES:
        shown = scheme if sep and len(scheme) <= 40 else ""  # without "://" the whole text may be a secret
        raise DsnError(f"must start with postgresql:// (got scheme {shown!r}); expected {URL_EXAMPLE}")
    _check_special_characters(rest)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise DsnError(_port_problem(rest)) from None
    if port == 0:
        raise DsnError(f"has port '0', which is not a number from 1 to 65535; expected {URL_EXAMPLE}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise DsnError(f"names no database; expected {URL_EXAMPLE}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    # Always take these out of the query (the URL's own parts win), so no second password hides in options.
    query_host, query_user, query_password = query.pop("host", ""), query.pop("user", ""), query.pop("password", None)
    host = unquote(parts.hostname or "") or query_host or "localhost"
    user = unquote(parts.username or "") or query_user or "postgres"
    password = unquote(parts.password) if parts.password is not None else query_password
    if sslmode:
        query["sslmode"] = sslmode
    _check_options(query)
    return DatabaseTarget(host=host, port=port or 5432, user=user, dbname=dbname, password=password,
                          options=tuple(sorted(query.items())))


# libpq's connection parameters that may ride in the query (host, user, password, port and dbname have their
# own places in the URL). Anything else is refused here, not by psycopg at the first connection.
_KNOWN_OPTIONS = frozenset({
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslcrldir", "sslpassword", "sslsni", "sslcompression",
    "sslcertmode", "ssl_min_protocol_version", "ssl_max_protocol_version", "requirepeer", "require_auth",
    "channel_binding", "gssencmode", "gssdelegation", "krbsrvname", "gsslib", "connect_timeout", "application_name",
    "fallback_application_name", "options", "client_encoding", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "tcp_user_timeout", "target_session_attrs", "load_balance_hosts",
    "hostaddr", "passfile", "service",
})
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_ENCODE = "percent-encode it: @ as %40, / as %2F, ? as %3F, # as %23, [ as %5B, ] as %5D, % as %25"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MUST_ENCODE = "@ / ? # [ ] or a % that does not start a %XX escape"


def _check_special_characters(rest: str) -> None:
    """Name the part (user name, password, database) whose special characters are not percent-encoded.

    OpenWatch's own SQLAlchemy and libpq cut a URL at the first `/`, `?` or `#` and the first `@`, so such a
    URL means something else to them even where Python's urllib guesses right: refuse it, whoever would misread it.
    """
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@")
    if at > authority_end:
        userinfo = rest[:at]  # an `@` past the first `/`, `?` or `#`: one of those is inside the user info
        raise DsnError(f"has a {_userinfo_part(userinfo, '/?#')} with a character that must be percent-encoded "
                       f"({_MUST_ENCODE}); {_ENCODE}; expected {URL_EXAMPLE}")
    userinfo = rest[:at] if at >= 0 else ""
    if "@" in userinfo or "[" in userinfo or "]" in userinfo or _BAD_PERCENT.search(userinfo):
        raise DsnError(f"has a {_userinfo_part(userinfo, '@[]%')} with a character that must be percent-encoded "
                       f"({_MUST_ENCODE}); {_ENCODE}; expected {URL_EXAMPLE}")
    path = rest[authority_end:].split("?", 1)[0]
    if _BAD_PERCENT.search(path):
        raise DsnError(f"has a database name with a % that does not start a %XX escape; {_ENCODE}; "
                       f"expected {URL_EXAMPLE}")


def _userinfo_part(userinfo: str, characters: str) -> str:
    """"user name" or "password": where the first offending character sits (the user name ends at the first :)."""
    colon = userinfo.find(":")
    first = min((i for i, c in enumerate(userinfo) if c in characters or (c == "%" and
                                                                          _BAD_PERCENT.match(userinfo, i))),
                default=len(userinfo))
    return "user name" if colon < 0 or first < colon else "password"


def _port_problem(rest: str) -> str:
    # Past _check_special_characters the host part is what follows the last `@`, up to the first `/`, `?` or `#`.
    hostport = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    after_host = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    if ":" in after_host and not ("[" in hostport and "]" not in hostport):
        port = after_host.rpartition(":")[2]
        shown = port if len(port) <= 12 else port[:12] + "..."
        return f"has port {shown!r}, which is not a number from 1 to 65535; expected {URL_EXAMPLE}"
    return f"has a malformed host (an IPv6 address goes in brackets: [::1]:5432); expected {URL_EXAMPLE}"


def _check_options(options: dict[str, str]) -> None:
    for key in options:
        if key not in _KNOWN_OPTIONS:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise DsnError(f"has an unknown connection parameter {shown!r} in its query (after ?); remove it, or "
                           "use one of libpq's (https://www.postgresql.org/docs/current/libpq-connect.html)")
    mode = options.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise DsnError(f"has sslmode {mode[:40]!r}; use one of {', '.join(SSL_MODES)}")
    timeout = options.get("connect_timeout")
    if timeout is not None and not (timeout.isdigit() and int(timeout) <= 3600):
        raise DsnError(f"has connect_timeout {timeout[:20]!r}; give whole seconds from 0 to 3600")
