"""The README stays true: its settings table is the one the code generates, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from openwatch_backup.cli import app
from openwatch_backup.settings import settings_table_markdown

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_settings_table_matches_the_code() -> None:
    match = re.search(r"<!-- settings-table:[^>]*-->\n(.*?)\n<!-- /settings-table -->", README, re.DOTALL)
    assert match, "README lost its settings-table markers"
    assert match.group(1) == settings_table_markdown()


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[0] for line in first_block] == ["scripts/demo", "scripts/test"]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_every_cli_command_in_the_readme_exists() -> None:
    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    used = set(re.findall(r"^openwatch-backup (\w+)", README, re.MULTILINE))
    assert used
    assert used <= names
