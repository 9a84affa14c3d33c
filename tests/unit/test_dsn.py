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
