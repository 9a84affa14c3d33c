"""Values the API used to accept and fail on later (issue 9, failures 7 and 8): retention numbers out of bounds,
and restores into a database that cannot be created. Each is refused at once with one line; nothing is stored,
queued or audited.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from openwatch_backup.operations.retention_policy import OVERRIDE_KEYS
from openwatch_backup.settings import Settings
from tests.api_support import (  # noqa: F401 - fixtures
    PREFIX,
    AuditLog,
    Catalog,
    Services,
    Submitted,
    audit_fixture,
    bearer,
    build_app,
    catalog_fixture,
    client_for,
    module_audit_fixture,
    module_catalog_fixture,
    module_client_fixture,
    openwatch_auth,
    submitted_fixture,
)

ADMIN = bearer("super_admin")
JSON = {**ADMIN, "Content-Type": "application/json"}
RETENTION_NAMES = [key.removeprefix("retention.") for key in OVERRIDE_KEYS]


def _maximum(name: str) -> int | float:
    field = Settings.model_fields[OVERRIDE_KEYS[f"retention.{name}"]]
    return next(m.le for m in field.metadata if type(m).__name__ == "Le")


# JSON text, because Infinity and NaN are not JSON numbers: Python's parser (Starlette's) accepts them anyway.
BAD_NUMBERS = {"Infinity": "must be a finite number", "-Infinity": "must be a finite number",
               "NaN": "must be a finite number", "1e20": None, "-1": None}
TOO_LARGE = "is far too large (must be a whole number within the allowed range)"


@pytest.mark.parametrize("name", RETENTION_NAMES)
@pytest.mark.parametrize("raw", list(BAD_NUMBERS))
def test_put_settings_refuses_numbers_out_of_bounds(client: Any, module_catalog: Catalog, module_audit: AuditLog,
                                                    name: str, raw: str) -> None:
    before = module_catalog.service.settings_store.all()
    audited = len(module_audit.calls)

    response = client.put(f"{PREFIX}/settings", headers=JSON, content=f'{{"retention": {{"{name}": {raw}}}}}')

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"retention.{name}: "), detail
    assert "\n" not in detail
    if BAD_NUMBERS[raw] is not None:
        assert detail == f"retention.{name}: {BAD_NUMBERS[raw]}"
    elif raw == "-1":
        assert " must be at least " in detail, detail
    elif Settings.model_fields[OVERRIDE_KEYS[f"retention.{name}"]].annotation is float:
        assert detail == f"retention.{name}: must be at most {_maximum(name):,}"
    else:  # pydantic refuses 1e20 for an integer before the bound: too large to be one
        assert detail == f"retention.{name}: {TOO_LARGE}"
    assert module_catalog.service.settings_store.all() == before
    assert len(module_audit.calls) == audited


def test_the_issues_repros_answer_422_and_prune_plans_keep_working(client: Any, module_catalog: Catalog) -> None:
    for body, detail in [({"retention": {"days": 99999999999}},
                          "retention.days: must be at most 36,500"),
                         ({"retention": {"days": 1e20}}, f"retention.days: {TOO_LARGE}"),
                         ('{"retention": {"size_budget_gib": Infinity}}',
                          "retention.size_budget_gib: must be a finite number")]:
        content = body if isinstance(body, str) else json.dumps(body)
        response = client.put(f"{PREFIX}/settings", headers=JSON, content=content)
        field, words = detail.split(": ", 1)
        assert (response.status_code, response.json()) == (422, {"detail": detail, "errors": [
            {"field": field, "message": words}]})
    plan = client.post(f"{PREFIX}/prune/plan", headers=ADMIN)
    assert plan.status_code == 200, plan.text
    assert plan.json()["status"] == "succeeded"


def test_the_largest_values_are_accepted_and_plan(catalog: Catalog, audit: AuditLog) -> None:
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client:
        maxima = {name: _maximum(name) for name in RETENTION_NAMES}
        response = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"retention": maxima})
        assert response.status_code == 200, response.text
        assert response.json()["retention"] == maxima
        plan = client.post(f"{PREFIX}/prune/plan", headers=ADMIN)
        assert plan.status_code == 200, plan.text
        assert plan.json()["details"]["summary"]["backups_deleted"] == 0
    services.close()


def test_one_schedule_alone_is_changed_and_the_other_kept(catalog: Catalog, audit: AuditLog) -> None:
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client:
        drill_before = client.get(f"{PREFIX}/settings", headers=ADMIN).json()["schedule"]["drill"]
        response = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"schedule": {"backup": "30 3 * * *"}})
        assert response.status_code == 200, response.text
        assert response.json()["schedule"] == {"backup": "30 3 * * *", "drill": drill_before}
        bad = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"schedule": {"drill": "61 * * * *"}})
        assert bad.status_code == 422, bad.text
        assert client.get(f"{PREFIX}/settings", headers=ADMIN).json()["schedule"] == {
            "backup": "30 3 * * *", "drill": drill_before}
    services.close()


def test_a_bad_value_stored_by_hand_stops_the_plan_but_not_the_settings_form(catalog: Catalog,
                                                                            audit: AuditLog) -> None:
    """A value written around the API (an older version, psql) stops the plan with a line naming the key and the
    fix; GET /settings still answers, with the value as stored and the problem, so the page can load its form and
    PUT a good value (other changes are not blocked meanwhile)."""
    catalog.execute("INSERT INTO backup_settings (key, value, updated_by) VALUES ('retention.days', '1e20', 'psql')")
    refusal = ("backup_settings retention.days: Input should be less than or equal to 36500 (got "
               "100000000000000000000); store a value from 1 to 36,500 on the admin page's settings (PUT "
               "/settings), or delete the key to use OPENWATCH_BACKUP_RETENTION_DAYS")
    services = Services(catalog.url, catalog.backup_dir)
    with client_for(build_app(auth=openwatch_auth(audit), services=services, submit=Submitted())) as client:
        plan = client.post(f"{PREFIX}/prune/plan", headers=ADMIN)
        assert (plan.status_code, plan.json()) == (422, {"detail": refusal})

        loaded = client.get(f"{PREFIX}/settings", headers=ADMIN)
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["retention"]["days"] == 1e20
        assert loaded.json()["retention"]["keep_last"] == 0  # the others as in force
        assert loaded.json()["problems"] == [{"key": "retention.days", "detail": refusal, "allowed": "1 to 36,500"}]
        status = client.get(f"{PREFIX}/status", headers=ADMIN).json()
        assert "settings_valid" in status["failing_checks"]

        other = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"retention": {"keep_last": 2}})
        assert other.status_code == 200, other.text
        assert [p["key"] for p in other.json()["problems"]] == ["retention.days"]

        fixed = client.put(f"{PREFIX}/settings", headers=ADMIN, json={"retention": {"days": 40}})
        assert fixed.status_code == 200, fixed.text
        assert (fixed.json()["retention"]["days"], fixed.json()["problems"]) == (40, [])
        plan = client.post(f"{PREFIX}/prune/plan", headers=ADMIN)
        assert plan.status_code == 200, plan.text
        assert plan.json()["details"]["policy"]["retention_days"] == 40
    services.close()


# --- restore --into: what the background restore would refuse is refused now, with 409 ---------------------------
@pytest.fixture
def restores_on(module_catalog: Catalog) -> Iterator[None]:
    module_catalog.service.settings_store.set("api.allow_restore", True, updated_by="test")
    yield
    module_catalog.service.settings_store.delete("api.allow_restore")


def _restore(client: Any, catalog: Catalog, body: dict[str, Any]) -> Any:
    return client.post(f"{PREFIX}/runs/{catalog.backup.id}/restore", headers=ADMIN, json=body)


def test_restore_into_an_existing_database_is_409_at_once(client: Any, module_catalog: Catalog, restores_on: None,
                                                          module_audit: AuditLog, submitted: Submitted) -> None:
    existing = f"{module_catalog.name}_exists"
    module_catalog.execute(f'CREATE DATABASE "{existing}"')
    try:
        runs, audited, sent = len(module_catalog.runs()), len(module_audit.calls), len(submitted.calls)
        cases = {
            existing: f"database {existing} already exists; into restores only into a new database (choose another "
                      "name)",
            module_catalog.name: f"into names the live database {module_catalog.name}; to restore over it send "
                                 f'{{"confirm": "{module_catalog.name}"}}',
            "owbscratch_restore_0123456789ab": "names starting with owbscratch_ belong to the backup tool's scratch "
                                               "databases, which the sweeper drops; choose another name",
        }
        for into, detail in cases.items():
            response = _restore(client, module_catalog, {"into": into})
            assert response.status_code == 409, response.text
            assert response.json() == {"detail": detail}
        assert (len(module_catalog.runs()), len(module_audit.calls), len(submitted.calls)) == (runs, audited, sent)
    finally:
        module_catalog.execute(f'DROP DATABASE IF EXISTS "{existing}"')


def test_restore_into_alone_is_accepted_as_the_readme_says(client: Any, module_catalog: Catalog, restores_on: None,
                                                           submitted: Submitted) -> None:
    """`{"into": "<new db>"}` needs no confirm: nothing is replaced (the CLI's --into does not ask either)."""
    into = f"copy_{uuid.uuid4().hex[:8]}"
    response = _restore(client, module_catalog, {"into": into})

    assert response.status_code == 202, response.text
    run = response.json()
    assert (run["kind"], run["status"], run["parent_id"]) == ("restore", "queued", str(module_catalog.backup.id))
    assert run["details"]["request"]["into"] == into
    assert submitted.calls[-1] == ("restore", uuid.UUID(run["id"]))
    module_catalog.execute("DELETE FROM backup_runs WHERE id = %s", (run["id"],))


def test_confirm_and_into_together_are_refused(client: Any, module_catalog: Catalog, restores_on: None) -> None:
    response = _restore(client, module_catalog, {"confirm": module_catalog.name, "into": "copy"})

    assert response.status_code == 422
    assert response.json()["detail"] == ("the request body: give either confirm (the live database's name, to "
                                         "restore over it) or into (a new database), not both")


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), {"nested": [float("inf")]}])
def test_the_settings_store_refuses_non_finite_numbers(module_catalog: Catalog, value: Any) -> None:
    """PostgreSQL's JSON cannot hold them: a one-line ConfigError, not a driver error (the API's 500)."""
    from openwatch_backup.errors import ConfigError

    store = module_catalog.service.settings_store
    with pytest.raises(ConfigError) as info:
        store.set("retention.size_budget_gib", value, updated_by="test")

    assert info.value.message == ("backup_settings retention.size_budget_gib: numbers must be finite (no Infinity "
                                  "or NaN)")
    assert "retention.size_budget_gib" not in store.all("retention.")
