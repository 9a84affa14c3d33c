"""Run the plugin's migrations from an installed package (no alembic.ini, no repository needed)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

VERSION_TABLE = "openwatch_backup_alembic_version"


def script_location() -> str:
    """The migrations folder: inside the installed package, or alembic/ of a source checkout.

    An installed wheel carries alembic/ as `openwatch_backup.migrations`. From a checkout (an editable
    install run inside the repository) that package is not importable, and the folder sits beside it.
    """
    try:
        # alembic/ has no __init__.py (it would shadow the alembic library in a checkout), so the installed
        # package is a namespace package whose files() is a MultiplexedPath: locate it through a file in it.
        return str(Path(str(files("openwatch_backup.migrations").joinpath("env.py"))).parent)
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "alembic"
        if (checkout / "versions" / "0001_backup_runs.py").is_file():
            return str(checkout)
        raise


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", script_location())
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
