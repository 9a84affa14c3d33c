"""Recovery commands: verify, restore, drill, check, sweep."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openwatch_backup.cli.common import (
    JsonOption,
    app,
    err,
    fail,
    operator,
    out,
    print_json,
    progress_bar,
    run_to_dict,
    service_from_env,
)
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import RestoreFailed, RestoreRefused, VerifyFailed

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun

RunArg = Annotated[str, typer.Argument(help="Backup run id or its first characters (see `list`).")]


def _report(run: BackupRun, as_json: bool, ok: str) -> None:
    if as_json:
        print_json(run_to_dict(run))
    elif run.status == RunStatus.SUCCEEDED.value:
        out.print(f"[green]{ok}[/] (run {run.id})", soft_wrap=True)


def _read_from(run: BackupRun) -> str:
    """' (read from the S3 copy)' when the run read the off-site object; the local file needs no words."""
    where = run.details.get("read_from")
    return " (read from the S3 copy)" if where == CopyStorage.S3.value else ""


def _secrets_note(run: BackupRun, details: dict[str, Any], as_json: bool) -> None:
    """The proof's line under a passed deep verify or drill: 'master key: 20 of 20 credentials decrypted with the
    key of config bundle RUN', or why it was not checked. (A mismatch fails the run: its error says it.)"""
    proof = ((details.get("verify") or {}).get("checks") or {}).get("secrets")
    if as_json or not proof or run.status != RunStatus.SUCCEEDED.value:
        return
    if proof.get("skipped"):
        out.print(f"master key not checked: {proof['skipped']}", soft_wrap=True, highlight=False, markup=False)
    else:
        out.print(f"master key: {proof.get('decrypted')} of {proof.get('sampled')} credentials decrypted with the "
                  f"key of config bundle {proof.get('bundle_run')}", soft_wrap=True, highlight=False, markup=False)


@app.command()
def verify(run: RunArg, deep: Annotated[bool, typer.Option(help="Also restore into a scratch database and "
                                                             "check counts, canary and migration head.")] = False,
           copy: Annotated[CopyStorage | None, typer.Option(help="Which copy to read: local or s3 (the S3 object, "
                                                                 "re-read in full). Default: the local file while "
                                                                 "it is there, else the S3 copy.")] = None,
           as_json: JsonOption = False) -> None:
    """Check a backup: file, manifest, size, sha256, readable; --deep restores it into a scratch database."""
    with service_from_env() as service:
        verify_run, result = service.verify(run, deep=deep, requested_by=operator(),
                                            copy=copy.value if copy is not None else None)
        _report(verify_run, as_json, f"{'deep' if deep else 'quick'} verify of {run} passed{_read_from(verify_run)}")
        _secrets_note(verify_run, verify_run.details, as_json)
        if result is not None and not result.passed:
            raise VerifyFailed(verify_run.error or "verify failed", str(result.reason))


@app.command()
def restore(
    run: RunArg,
    confirm: Annotated[str | None, typer.Option(help="The database name, typed to confirm a restore over it.")] = None,
    into: Annotated[str | None, typer.Option(help="Restore into this new database instead, for inspection.")] = None,
    table: Annotated[list[str] | None, typer.Option(help="Restore only this table (repeatable).")] = None,
    data_only: Annotated[bool, typer.Option(help="With --table: the rows only, as the guide's single-table "
                                                  "restore.")] = False,
    terminate_connections: Annotated[bool, typer.Option(help="End other sessions on the database.")] = False,
    safety_backup: Annotated[bool, typer.Option(help="Back up the current database first.")] = True,
    allow_newer_server: Annotated[bool, typer.Option(help="Allow a dump from a newer PostgreSQL.")] = False,
    allow_newer_migrations: Annotated[bool, typer.Option(help="Allow a dump from a newer OpenWatch.")] = False,
    migrate: Annotated[bool, typer.Option(help="Run OPENWATCH_BACKUP_MIGRATE_COMMAND afterwards.")] = False,
    health_check: Annotated[bool, typer.Option(help="Ask OPENWATCH_BACKUP_HEALTH_URL afterwards.")] = False,
    to: Annotated[str | None, typer.Option(help="Config bundle: decrypt into this new (or empty) folder.")] = None,
    list_members: Annotated[bool, typer.Option("--list", help="Config bundle: print its member names.")] = False,
    volume: Annotated[str | None, typer.Option(help="Volume snapshot: the volume it is of; restores into a new "
                                                    "volume (--into NAME, default NAME_restored_YYYYMMDD_HHMMSS), or "
                                                    "over it with --confirm NAME.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup: into a new database and swap names (the old one is kept), --into NAME, or --table;
    a config bundle --to a new folder (or --list its members)."""
    from openwatch_backup.operations.restore import RestoreRequest

    if volume is not None:
        if to is not None or list_members or table or data_only or terminate_connections or migrate or health_check:
            raise fail(RestoreRefused("--volume restores a volume snapshot: only --into NAME or --confirm NAME go "
                                      "with it"))
        with service_from_env() as service:
            result = service.restore_volume(run, volume=volume, into=into, confirm=confirm, requested_by=operator())
            info = result.details.get("volume_restore", {})
            safety = result.details.get("safety_snapshot")
            _report(result, as_json, f"restored volume {info.get('from')} into {info.get('volume')} in "
                                     f"{info.get('seconds')} s" + (f" (safety snapshot: run {safety})" if safety
                                                                    else ""))
        return

    if to is not None or list_members:
        database_options = confirm or into or table or data_only or terminate_connections or migrate or health_check
        if database_options or (to is not None and list_members):
            raise fail(RestoreRefused("--to or --list (one of them) restores a config bundle; --confirm, --into, "
                                      "--table and the other options are for database backups"))
        _restore_config(run, to, as_json)
        return

    request = RestoreRequest(into=into, tables=tuple(table or ()), data_only=data_only, confirm=confirm,
                             terminate_connections=terminate_connections, safety_backup=safety_backup,
                             allow_newer_server=allow_newer_server, allow_newer_migrations=allow_newer_migrations)
    with service_from_env() as service, progress_bar(not as_json and err.is_terminal) as observer:
        try:
            result = service.restore(run, request, requested_by=operator(), migrate=migrate,
                                     health_check=health_check, observer=observer)
        except RestoreFailed:
            if as_json:
                restores = service.list_runs(limit=1, kind="restore")
                if restores:
                    print_json(run_to_dict(restores[0]))
            raise
        info = result.details.get("restore", {})
        kept = f"; the old database is kept as {info['kept_database']}" if info.get("kept_database") else ""
        _report(result, as_json, f"restored {info.get('database')} in {info.get('seconds')} s{kept}"
                                 f"{_read_from(result)}")


def _restore_config(run: str, to: str | None, as_json: bool) -> None:
    with service_from_env() as service:
        if to is None:
            names = service.list_config(run)
            if as_json:
                print_json(names)
            else:
                sys.stdout.write("".join(f"{name}\n" for name in names))
            return
        result = service.restore_config(run, to, requested_by=operator())
        _report(result, as_json, f"restored {result.details.get('members')} member(s) of config bundle {run} "
                                 f"into {result.details.get('to')}{_read_from(result)}")


ScenarioOption = Annotated[str, typer.Option(
    "--scenario", help="database: the newest backup into a scratch database; volume: the newest verified volume "
    "snapshot into a scratch volume; host: recover from the off-site store into scratch targets. Each is timed "
    "against its row of the guide's RTO table.")]
SCENARIOS = ("database", "volume", "host")


@app.command()
def drill(as_json: JsonOption = False, scenario: ScenarioOption = "database") -> None:
    """Restore the newest backup into a scratch database, check it, and time it against the RTO."""
    if scenario not in SCENARIOS:
        raise RestoreRefused(f"--scenario {scenario!r} is not known: give one of {', '.join(SCENARIOS)}")
    if scenario != "database":
        _rto_drill(scenario, as_json)
        return
    with service_from_env() as service:
        run = service.drill(requested_by=operator())
        info = run.details.get("drill", {})
        source = " from the S3 copy" if info.get("read_from") == CopyStorage.S3.value else ""
        remote = "; off-site copy re-read and matched" if (info.get("remote") or {}).get("verify") else ""
        _report(run, as_json, f"drill passed: recovered{source} in {info.get('rto_seconds')} s "
                              f"(objective {info.get('rto_target_seconds', 0) / 60:g} min){remote}")
        _secrets_note(run, info, as_json)
        if run.status != RunStatus.SUCCEEDED.value:
            raise RestoreFailed(run.error or "drill failed")


def _rto_drill(scenario: str, as_json: bool) -> None:
    """The volume or host drill (operations/volume_drill.py, host_drill.py): its measured time, or why it failed."""
    from openwatch_backup.operations.rto import RTO_KEY, duration

    with service_from_env() as service:
        run = service.rto_drill(scenario, requested_by=operator())
    if run is None:
        raise RestoreRefused(f"a {scenario} drill is already queued or running: wait for it (see `openwatch-backup "
                             "list`)")
    info = run.details.get(RTO_KEY) or {}
    what = "volume restored" if scenario == "volume" else "recovered"
    _report(run, as_json, f"{scenario} drill passed: {what} in {duration(float(info.get('seconds') or 0))} "
                          f"(objective {float(info.get('target_seconds') or 0) / 60:g} min), scratch removed")
    if run.status != RunStatus.SUCCEEDED.value:
        raise RestoreFailed(run.error or f"{scenario} drill failed")


@app.command()
def check(as_json: JsonOption = False) -> None:
    """The guide's backup checklist; exits 1 when any item fails (for monitoring)."""
    from rich.table import Table

    from openwatch_backup.operations.checklist import ItemStatus

    with service_from_env() as service:
        items = service.checklist()
    failing = [i for i in items if i.status is ItemStatus.FAIL]
    if as_json:
        print_json({"ok": not failing, "items": [i.as_dict() for i in items]})
    else:
        table = Table(title="backup checklist")
        for column in ("", "item", "when", "detail", "what to do"):
            table.add_column(column)
        marks = {ItemStatus.OK: "[green]ok[/]", ItemStatus.WARN: "[yellow]WARN[/]", ItemStatus.FAIL: "[red]FAIL[/]",
                 ItemStatus.SKIP: "[dim]skip[/]"}
        for item in items:
            table.add_row(marks[item.status], item.title, item.cadence, item.detail, item.fix)
        out.print(table)
        # The guide's RTO table, one unwrapped line per row (the table above wraps its cells).
        for item in items:
            if item.key.startswith("rto_"):
                out.print(f"RTO {item.status.value}: {item.detail}", soft_wrap=True, markup=False, highlight=False)
    if failing:
        raise typer.Exit(1)


@app.command()
def sweep(as_json: JsonOption = False) -> None:
    """Celery's watchdog, once: mark dead runs abandoned (stale heartbeat, or a killed CLI on this machine), then
    remove the scratch databases and .partial files of runs no longer running, and abort the off-site uploads of
    killed copies (the JSON has aborted_uploads, and offsite_error when the bucket did not answer, only then)."""
    with service_from_env() as service:
        report = service.watchdog()
    offsite = {"aborted_uploads": report["aborted_uploads"]} if report["aborted_uploads"] else {}
    if "offsite_error" in report:
        offsite["offsite_error"] = report["offsite_error"]
    if as_json:
        print_json({"abandoned": report["abandoned"], "databases": report["scratch_databases"],
                    "partial_files": report["partial_files"], "kept_databases": report["kept_databases"], **offsite,
                    **{k: report[k] for k in ("scratch_volumes", "scratch_folders", "closed_sets") if report.get(k)}})
    else:
        out.print(f"marked {len(report['abandoned'])} run(s) abandoned, dropped {len(report['scratch_databases'])} "
                  f"scratch database(s), removed {len(report['partial_files'])} .partial file(s)")
        for scratch in (*report.get("scratch_volumes", ()), *report.get("scratch_folders", ())):  # RTO drills
            out.print(f"removed {scratch}, left by an RTO drill that ended", highlight=False, markup=False)
        for kept in report["kept_databases"]:  # a completed swap's old database: the operator's to drop
            out.print(f"kept {kept}: the old database of a restore whose swap completed; drop it when done")
        for upload in report["aborted_uploads"]:  # a killed off-site copy's upload: the copy is retried
            out.print(f"aborted the incomplete upload {upload}", highlight=False, markup=False, soft_wrap=True)
        if "offsite_error" in report:
            out.print(f"off-site uploads not checked: {report['offsite_error']}", highlight=False, markup=False,
                      soft_wrap=True)

