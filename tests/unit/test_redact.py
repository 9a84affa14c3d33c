"""Redactor: known secrets and password-shaped text become ***, everything else is left alone."""

from __future__ import annotations

import pytest

from openwatch_backup.core.redact import MASK, Redactor

SECRET = "s3cr@t/pw:x"


def test_masks_the_secret_itself() -> None:
    assert Redactor([SECRET])(f"pg_dump: error: auth failed for {SECRET} (twice: {SECRET})") == (
        "pg_dump: error: auth failed for *** (twice: ***)")


@pytest.mark.parametrize("encoded", ["s3cr%40t%2Fpw%3Ax", "s3cr%40t/pw%3Ax"])
def test_masks_the_url_encoded_secret(encoded: str) -> None:
    assert Redactor([SECRET])(f"value {encoded} end") == "value *** end"


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    assert Redactor(["abc", "xxabcxx"])("see xxabcxx and abc") == "see *** and ***"


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://ow:hunter2@db:5432/ow failed", "postgresql://ow:***@db:5432/ow failed"),
    ("postgresql+psycopg://ow:hunter2@db/ow", "postgresql+psycopg://ow:***@db/ow"),
    ("redis://:tok3n@redis:6379/0", "redis://:***@redis:6379/0"),
    ("S3://KEY:s3cr3t@bucket/x", "S3://KEY:***@bucket/x"),
    ("a https://u:p%40ss@h/ and b http://v:q@i/", "a https://u:***@h/ and b http://v:***@i/"),
])
def test_masks_url_passwords_in_any_scheme(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("PGPASSWORD=hunter2 pg_dump -Fc", "PGPASSWORD=*** pg_dump -Fc"),
    ("env: pgpassword = hunter2", "env: pgpassword = ***"),
    ("host=db password=hunter2 dbname=ow", "host=db password=*** dbname=ow"),
    ("password='two words' user=ow", "password=*** user=ow"),
    ('password: "hunter2" user=ow', "password: *** user=ow"),
    ("token: abc.def secret=xyz", "token: *** secret=***"),
])
def test_masks_key_value_passwords(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize("text", [
    "pg_dump: error: connection to server at \"db\" (10.0.0.2), port 5432 failed: Connection refused",
    "https://docs.example.com/a:b/c",
    "postgresql://ow@db:5432/ow",
    "user@host:5432",
    "dumped 1,234 rows in 5.2s: ok",
])
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert Redactor(["hunter2"])(text) == text


@pytest.mark.parametrize("short", ["a", "ab"])
def test_short_secrets_are_ignored(short: str) -> None:
    text = "a bad tab, ab initio"

    assert Redactor([short, None, ""])(text) == text


def test_a_three_character_secret_is_masked() -> None:
    assert Redactor(["abc"])("xabcx") == f"x{MASK}x"
