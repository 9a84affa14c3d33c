"""Settings changed at run time, in backup_settings (key -> JSON). The environment gives the defaults.

Beat's dispatcher and the sweeper read this on every tick, so a schedule changed here (CLI, API) takes
effect without a restart. Keys are namespaced: `schedule.backup`, `schedule.drill`, `retention.*`,
`alerts.*` (the plugin's own bookkeeping).
"""

from __future__ import annotations

import json
import typing
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects.postgresql import insert

from openwatch_backup.catalog.models import BackupSetting
from openwatch_backup.catalog.recorder import catalog_errors
from openwatch_backup.errors import ConfigError

_TABLE = typing.cast(Table, BackupSetting.__table__)


class SettingsStore:
    def __init__(self, engine: Engine, database: str) -> None:
        self._engine = engine
        self._database = database

    def all(self, prefix: str = "") -> dict[str, Any]:
        with catalog_errors(self._database), self._engine.connect() as conn:
            rows = conn.execute(select(_TABLE.c.key, _TABLE.c.value).where(_TABLE.c.key.startswith(prefix))).all()
        return {str(key): value for key, value in rows}

    def get(self, key: str, default: Any = None) -> Any:
        return self.all(key).get(key, default)

    def set(self, key: str, value: Any, updated_by: str | None = None) -> None:
        try:  # PostgreSQL's JSON has no Infinity or NaN: refuse them with a line, not a driver error
            json.dumps(value, allow_nan=False)
        except ValueError:
            raise ConfigError(f"backup_settings {key}: numbers must be finite (no Infinity or NaN)") from None
        statement = insert(_TABLE).values(key=key, value=value, updated_by=updated_by)
        statement = statement.on_conflict_do_update(
            index_elements=["key"], set_={"value": statement.excluded.value, "updated_by": updated_by,
                                          "updated_at": statement.excluded.updated_at})
        with catalog_errors(self._database), self._engine.begin() as conn:
            conn.execute(statement)

    def delete(self, key: str) -> None:
        with catalog_errors(self._database), self._engine.begin() as conn:
            conn.execute(_TABLE.delete().where(_TABLE.c.key == key))
