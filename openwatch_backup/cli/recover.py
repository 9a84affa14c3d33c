"""`openwatch-backup recover --from s3|DIR`: from a bare host to a running OpenWatch (issue 13, item 1).

The guide's "Full Recovery from Scratch" in one command: every step printed with its time as it finishes, the
total against the guide's 30-60 min for a full host failure, and what is left for the operator (the config files
to put in place, the services to start). Run it again after a failure: it continues where the first stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from openwatch_backup.cli.common import JsonOption, app, out, print_json, run_to_dict, service_from_env
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import RestoreFailed

if TYPE_CHECKING:
    from openwatch_backup.operations.recover import StepReport
    from openwatch_backup.operations.recover_plan import Plan


def _say(line: str) -> None:
    out.print(line, soft_wrap=True, highlight=False, markup=False)


def _step(report: StepReport) -> None:
    lines = report.lines or [report.name]
    _say(f"{report.name:>9} {report.seconds:8.1f} s  {lines[0]}")
    for line in lines[1:]:
        _say(f"{'':>22}{line}")


def _plan_lines(plan: Plan, unreadable: list[str], migrate: bool) -> None:
    _say(f"database: full backup {plan.backup.id} of {plan.backup.created_at:%Y-%m-%d %H:%M} UTC "
         "(verified when recover runs)")
    _say(f"config: bundle {plan.bundle.id} of {plan.bundle.created_at:%Y-%m-%d %H:%M} UTC" if plan.bundle else
         "config: none (--skip-config)")
    for name, run in plan.volumes.items():
        _say(f"volume {name}: snapshot {run.id} of {run.created_at:%Y-%m-%d %H:%M} UTC (into a new volume {name})")
    for line in unreadable:
        _say(f"unreadable manifest {line}")
    steps = ["catalog", "plan", *(["config"] if plan.bundle else []), "database", *(["migrate"] if migrate else []),
             "checks", *(["volumes"] if plan.volumes else [])]
    _say(f"steps: {', '.join(steps)}; nothing was changed (--dry-run)")


@app.command()
def recover(
    source: Annotated[str, typer.Option("--from", help="Where the backups are: s3 (OPENWATCH_BACKUP_S3_BUCKET) or "
                                                       "the folder holding them (postgres/, config/, ...).")],
    backup: Annotated[str | None, typer.Option(help="The full backup to restore (default: the newest that "
                                                    "verifies).")] = None,
    config: Annotated[str | None, typer.Option(help="The config bundle (default: the one that belongs with the "
                                                    "backup).")] = None,
    skip_config: Annotated[bool, typer.Option(help="Restore no config bundle (the database alone).")] = False,
    config_to: Annotated[Path | None, typer.Option(help="The new folder the bundle is decrypted into (default: "
                                                        "./openwatch-config-YYYYMMDD_HHMMSS).")] = None,
    migrate: Annotated[bool, typer.Option(help="Run OPENWATCH_BACKUP_MIGRATE_COMMAND after the restore.")] = False,
    health_check: Annotated[bool, typer.Option(help="Ask OPENWATCH_BACKUP_HEALTH_URL at the end (OpenWatch must "
                                                    "be running).")] = False,
    volumes: Annotated[bool, typer.Option(help="Also restore each volume's snapshot into a new volume of its "
                                               "name.")] = False,
    terminate_connections: Annotated[bool, typer.Option(help="End other sessions on the database.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the plan from the store's manifests; change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Recover OpenWatch on a new host: catalog, config bundle, database, migrations, checks, volumes."""
    from openwatch_backup.operations.recover import RecoverRequest
    from openwatch_backup.service.recover import dry_run as plan_only
    from openwatch_backup.service.recover import recover as run_recover

    folder = (config_to or Path(f"openwatch-config-{datetime.now(UTC):%Y%m%d_%H%M%S}")).absolute()
    where = "s3" if source == "s3" else str(Path(source).absolute())
    request = RecoverRequest(source=where, backup=backup, config=config, skip_config=skip_config,
                             config_to=str(folder), migrate=migrate, health_check=health_check, volumes=volumes,
                             terminate_connections=terminate_connections)
    with service_from_env(None if source == "s3" else Path(where)) as service:
        if dry_run:
            plan, unreadable = plan_only(service, request)
            if as_json:
                print_json({"plan": plan.as_details(), "unreadable": unreadable})
            else:
                _plan_lines(plan, unreadable, migrate)
            return
        run = run_recover(service, request, observer=None if as_json else _step)
    if as_json:
        print_json(run_to_dict(run))
    if run.status != RunStatus.SUCCEEDED.value:
        raise RestoreFailed(run.error or "recover failed")
    if not as_json:
        summary = run.details.get("recover") or {}
        minutes = float(summary.get("target_seconds") or 0) / 60
        verdict = "within" if summary.get("within") else "over"
        _say(f"recovered in {float(summary.get('seconds') or 0):.1f} s, {verdict} the {minutes:g} min objective "
             "(the guide: 30-60 min for a full host failure; OPENWATCH_BACKUP_HOST_RTO_MINUTES)")
        if summary.get("config_folder"):
            _say(f"next: put the configuration in place from {summary['config_folder']} (the lines above), start "
                 "OpenWatch (docker compose up -d), and check its health URL")
