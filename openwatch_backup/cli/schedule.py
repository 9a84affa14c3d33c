"""`openwatch-backup schedule`: show or change when beat backs up and drills (no restart needed), and when the
dispatcher next checks whether the config bundle's inputs changed."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openwatch_backup.cli.common import JsonOption, app, err, operator, out, print_json, service_from_env


@app.command()
def schedule(
    backup: Annotated[str | None, typer.Option(help="Cron expression (UTC) for the scheduled backup.")] = None,
    drill: Annotated[str | None, typer.Option(help="Cron expression (UTC) for the weekly drill.")] = None,
    reset: Annotated[bool, typer.Option(help="Forget the stored schedules; the environment's apply again.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the schedules and the next runs (and the config bundle's on-change check); --backup/--drill store new
    ones that beat picks up at its next tick."""
    from openwatch_backup.operations.config_schedule import CHECKED_KEY as CONFIG_CHECKED_KEY
    from openwatch_backup.scheduling import BACKUP_KEY, DRILL_KEY, current_schedules, parse_cron
    from openwatch_backup.secrets.passphrase import FILE_SETTING as PASSPHRASE_FILE_SETTING

    with service_from_env() as service:
        store = service.settings_store
        if reset:
            store.delete(BACKUP_KEY)
            store.delete(DRILL_KEY)
        for value, what in ((backup, "--backup"), (drill, "--drill")):
            if value is not None:
                parse_cron(value, what)  # refuse before storing anything
        for key, value in ((BACKUP_KEY, backup), (DRILL_KEY, drill)):
            if value is not None:
                store.set(key, value, updated_by=operator())
        current = current_schedules(service.settings, store)
        current.require_usable()  # a bad OPENWATCH_BACKUP_SCHEDULE with nothing valid over it: its one line
        upcoming = service.next_scheduled()  # what beat's dispatcher will do, by the rule it applies
        config_next = service.next_config_check()  # None: no passphrase, so the config inputs are not checked
        minutes = service.settings.config_check_minutes
        last_check = store.get(CONFIG_CHECKED_KEY)  # time, outcome and its line (never a digest)
    data: dict[str, Any] = {
        "backup": {"cron": current.backup, "source": current.backup_source, "next_run": upcoming["backup"].isoformat()},
        "drill": {"cron": current.drill, "source": current.drill_source, "next_run": upcoming["drill"].isoformat()}}
    config: dict[str, Any] = {"every_minutes": minutes, "next_check": config_next.isoformat() if config_next else None}
    if config_next is None:
        config["note"] = f"not checked: no passphrase for config bundles is set (set {PASSPHRASE_FILE_SETTING})"
    if isinstance(last_check, dict):
        config["last_check"] = last_check
    for problem in current.problems:  # a stored value the crontab refuses: the environment's applies meanwhile
        err.print(f"warning: {problem.detail}", highlight=False, markup=False)
    if as_json:
        print_json({**data, "config_check": config, "problems": [p.detail for p in current.problems]})
        return
    for name, info in data.items():
        out.print(f"{name:>6}: {info['cron']:<15} ({info['source']}), next run {info['next_run']}", highlight=False)
    when = f"next check {config['next_check']}" if config_next else config["note"]
    out.print(f"config: on change, checked every {minutes} min, {when}", highlight=False, markup=False, soft_wrap=True)
    if "last_check" in config:
        last = config["last_check"]
        out.print(f"        last check {last.get('at')}: {last.get('outcome')} ({last.get('detail')})", highlight=False,
                  markup=False, soft_wrap=True)
