"""parse_database_url: OpenWatch's psycopg2-style URLs become a DatabaseTarget; secrets never leak."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from openwatch_backup.core.dsn import DatabaseTarget, DsnError, parse_database_url

EXAMPLE = "expected postgresql://openwatch:PASSWORD@database:5432/openwatch"
AWKWARD = "p@ss:w/rd%x"  # every character that must be percent-encoded in a URL's userinfo


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"])
def test_accepted_schemes_give_the_same_target(scheme: str) -> None:
    target = parse_database_url(f"{scheme}://u:p@h:5433/db")

    assert target == DatabaseTarget(host="h", port=5433, user="u", dbname="db", password="p", options=())


def test_percent_encoded_password_is_decoded() -> None:
    target = parse_database_url(f"postgresql://openwatch:{quote(AWKWARD, safe='')}@database:5432/openwatch")

    assert (target.user, target.password, target.host, target.port, target.dbname) == (
        "openwatch", AWKWARD, "database", 5432, "openwatch")


def test_sslmode_query_becomes_an_option() -> None:
    target = parse_database_url("postgresql://u:p@h:5432/db?sslmode=require")

    assert target.options == (("sslmode", "require"),)


def test_sslmode_argument_overrides_the_query() -> None:
    target = parse_database_url("postgresql://u:p@h/db?sslmode=disable", sslmode="verify-full")

    assert target.options == (("sslmode", "verify-full"),)


def test_missing_port_means_5432_and_missing_password_means_none() -> None:
    target = parse_database_url("postgresql://u@h/db")

    assert target == DatabaseTarget(host="h", port=5432, user="u", dbname="db", password=None, options=())


@pytest.mark.parametrize("url", ["postgresql://u:Hunter2secret@h:5432", "postgresql://u:Hunter2secret@h:5432/"])
def test_no_database_is_refused(url: str) -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url(url)

    assert str(info.value) == f"names no database; {EXAMPLE}"


def test_wrong_scheme_is_refused() -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url("mysql://u:Hunter2secret@h:3306/db")

    assert str(info.value) == f"must start with postgresql:// (got scheme 'mysql'); {EXAMPLE}"


@pytest.mark.parametrize("url", [
    "postgresql://u:Hunter2secret@h:5432/",
    "mysql://u:Hunter2secret@h/db",
    "postgresql://u:Hunter2secret@h:99999/db",
    "postgresql://u:Hunter2secret@h:notaport/db",
    "postgresql://u:Hunter2secret@[::1/db",
])
def test_error_messages_never_contain_the_password(url: str) -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url(url)

    assert "Hunter2secret" not in str(info.value)
    assert EXAMPLE in str(info.value)


def test_repr_hides_the_password() -> None:
    target = parse_database_url(f"postgresql://u:{quote(AWKWARD, safe='')}@h/db?sslmode=require")

    assert repr(target) == ("DatabaseTarget(host='h', port=5432, user='u', dbname='db', "
                            "options=(('sslmode', 'require'),))")


def test_repr_hides_a_password_given_in_the_query_too() -> None:
    target = parse_database_url("postgresql://u:first-secret@h/db?password=second-secret")

    assert "second-secret" not in repr(target)
    assert target.connect_kwargs()["password"] == target.libpq_env()["PGPASSWORD"]


def test_query_password_is_used_when_the_url_has_none() -> None:
    target = parse_database_url("postgresql://u@h/db?password=Hunter2secret")

    assert target.password == "Hunter2secret"
    assert "Hunter2secret" not in repr(target)


def test_libpq_env_exactly() -> None:
    target = parse_database_url(
        f"postgresql://ow:{quote(AWKWARD, safe='')}@db.example:6432/openwatch?sslmode=require&connect_timeout=4"
        "&application_name=x")

    assert target.libpq_env() == {
        "PGHOST": "db.example", "PGPORT": "6432", "PGUSER": "ow", "PGDATABASE": "openwatch",
        "PGPASSWORD": AWKWARD, "PGSSLMODE": "require", "PGCONNECT_TIMEOUT": "4",
    }


def test_libpq_env_without_password_has_no_pgpassword() -> None:
    assert parse_database_url("postgresql://ow@h/openwatch").libpq_env() == {
        "PGHOST": "h", "PGPORT": "5432", "PGUSER": "ow", "PGDATABASE": "openwatch"}


def test_connect_kwargs() -> None:
    target = parse_database_url(f"postgresql://ow:{quote(AWKWARD, safe='')}@h:6432/openwatch?sslmode=require")

    assert target.connect_kwargs() == {"host": "h", "port": 6432, "user": "ow", "dbname": "openwatch",
                                       "password": AWKWARD, "sslmode": "require", "connect_timeout": 10}


def test_connect_kwargs_keeps_a_given_connect_timeout_and_omits_a_missing_password() -> None:
    target = parse_database_url("postgresql://ow@h/openwatch?connect_timeout=3")

    assert target.connect_kwargs() == {"host": "h", "port": 5432, "user": "ow", "dbname": "openwatch",
                                       "connect_timeout": "3"}


def test_with_dbname_keeps_everything_else() -> None:
    target = parse_database_url("postgresql://ow:pw@h:6432/openwatch?sslmode=require")

    assert target.with_dbname("other") == DatabaseTarget("h", 6432, "ow", "other", "pw", (("sslmode", "require"),))
    assert target.describe() == "ow@h:6432/openwatch"


# --- special characters, ports and query parameters: name the part, never the password (issue 9, failure 8) ----
ENCODE = ("with a character that must be percent-encoded (@ / ? # [ ] or a % that does not start a %XX escape); "
          "percent-encode it: @ as %40, / as %2F, ? as %3F, # as %23, [ as %5B, ] as %5D, % as %25; " + EXAMPLE)


@pytest.mark.parametrize(("userinfo", "part"), [
    ("u:Hunter2@secret", "password"),  # OpenWatch's SQLAlchemy would take "secret" as part of the host
    ("u:Hunter2/secret", "password"),
    ("u:Hunter2?secret", "password"),
    ("u:Hunter2#secret", "password"),
    ("u:Hunter2%secret", "password"),  # %se is not an escape
    ("u:Hunter2%", "password"),
    ("u:Hunter2[secret", "password"),
    ("u:p@ss:w/rd%x", "password"),  # the AWKWARD password, unencoded
    ("us@er:Hunter2secret", "user name"),
    ("us/er:Hunter2secret", "user name"),
    ("us%zer:Hunter2secret", "user name"),
])
def test_unencoded_special_characters_name_the_part(userinfo: str, part: str) -> None:
    for port in ("", ":5432"):
        with pytest.raises(DsnError) as info:
            parse_database_url(f"postgresql://{userinfo}@database{port}/openwatch")

        assert str(info.value) == f"has a {part} {ENCODE}"
        assert "Hunter2" not in str(info.value)
        assert "secret" not in str(info.value)


def test_a_colon_in_the_password_is_unambiguous_and_accepted() -> None:
    """The user name ends at the first colon (libpq, SQLAlchemy and urllib agree), so p:ss is the password."""
    target = parse_database_url("postgresql://u:p:ss@h:5433/db")

    assert (target.user, target.password, target.port) == ("u", "p:ss", 5433)


def test_a_valid_escape_is_decoded_not_refused() -> None:
    assert parse_database_url("postgresql://u:50%25off@h/db").password == "50%off"


def test_a_bad_percent_in_the_database_name() -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url("postgresql://u:Hunter2secret@h/open%watch")

    assert str(info.value) == ("has a database name with a % that does not start a %XX escape; percent-encode it: "
                               f"@ as %40, / as %2F, ? as %3F, # as %23, [ as %5B, ] as %5D, % as %25; {EXAMPLE}")


@pytest.mark.parametrize("port", ["99999", "65536", "0", "abc", "-1", "5432x"])
def test_a_bad_port_is_named(port: str) -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url(f"postgresql://u:Hunter2secret@h:{port}/db")

    assert str(info.value) == f"has port {port!r}, which is not a number from 1 to 65535; {EXAMPLE}"


def test_an_unclosed_ipv6_bracket_is_a_host_problem() -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url("postgresql://u:Hunter2secret@[::1/db")

    assert str(info.value) == f"has a malformed host (an IPv6 address goes in brackets: [::1]:5432); {EXAMPLE}"


def test_ipv6_host_with_port() -> None:
    target = parse_database_url("postgresql://u:pw@[::1]:6543/db")

    assert (target.host, target.port) == ("::1", 6543)


@pytest.mark.parametrize(("query", "message"), [
    ("bogusparam=1", "has an unknown connection parameter 'bogusparam' in its query (after ?); remove it, or use one "
                     "of libpq's (https://www.postgresql.org/docs/current/libpq-connect.html)"),
    ("port=5433", "has an unknown connection parameter 'port' in its query (after ?); remove it, or use one of "
                  "libpq's (https://www.postgresql.org/docs/current/libpq-connect.html)"),
    ("sslmode=bogus", "has sslmode 'bogus'; use one of disable, allow, prefer, require, verify-ca, verify-full"),
    ("sslmode=", "has sslmode ''; use one of disable, allow, prefer, require, verify-ca, verify-full"),
    ("connect_timeout=soon", "has connect_timeout 'soon'; give whole seconds from 0 to 3600"),
    ("connect_timeout=99999999999999999999", "has connect_timeout '99999999999999999999'; give whole seconds from 0 "
                                             "to 3600"),
])
def test_bad_query_parameters_are_refused_before_any_connection(query: str, message: str) -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url(f"postgresql://u:Hunter2secret@h/db?{query}")

    assert str(info.value) == message


def test_a_bad_sslmode_argument_is_refused_too() -> None:
    with pytest.raises(DsnError, match=r"^has sslmode 'on'; use one of "):
        parse_database_url("postgresql://u@h/db", sslmode="on")


def test_libpq_parameters_are_kept() -> None:
    target = parse_database_url("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem&application_name=ow"
                                "&target_session_attrs=read-write")

    assert target.options == (("application_name", "ow"), ("sslmode", "verify-full"), ("sslrootcert", "/ca.pem"),
                              ("target_session_attrs", "read-write"))


def test_a_url_without_a_scheme_does_not_echo_anything() -> None:
    with pytest.raises(DsnError) as info:
        parse_database_url("openwatch:Hunter2secret@database/openwatch")

    assert str(info.value) == f"must start with postgresql:// (got scheme ''); {EXAMPLE}"
