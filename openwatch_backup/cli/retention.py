"""Retention commands: prune (shows the plan; --apply carries it out), pin, unpin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from openwatch_backup.cli.common import (
    JsonOption,
    app,
    human_bytes,
    operator,
    out,
    print_json,
    run_to_dict,
    service_from_env,
)
from openwatch_backup.errors import BackupError

if TYPE_CHECKING:
    from rich.table import Table

    from openwatch_backup.catalog.models import BackupRun

RunArg = Annotated[str, typer.Argument(help="Backup run id or its first characters (see `list`).")]


def _files_table(title: str, notes: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for column in ("file", "size", "run", "reason"):
        table.add_column(column)
    for note in notes:
        table.add_row(note["key"], human_bytes(note["size_bytes"]), (note.get("run") or "-")[:8], note["reason"])
    return table


def _plan_table(title: str, plan: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for column in ("run", "kind", "created (UTC)", "size", "verified", "action", "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for item in plan:
        action = "[red]delete[/]" if item["action"] == "delete" else "[green]keep[/]"
        table.add_row(item["run"][:8], item["kind"], item["created_at"][:19].replace("T", " "),
                      human_bytes(item["size_bytes"]), "yes" if item["verified"] else "no", action, item["reason"])
    return table


def _print_plan(run: BackupRun) -> None:
    details, summary = run.details, run.details.get("summary", {})
    applied = bool(details.get("apply"))
    remote = "s3_plan" in details  # S3 on: one plan per location, each with its own age limit and floor
    where = "local copies: " if remote else ""
    out.print(_plan_table(f"{where}retention plan (prune run {str(run.id)[:8]}, newest first)",
                          details.get("plan", [])))
    if remote:
        out.print(_plan_table("off-site (s3) copies: retention plan (newest first)", details["s3_plan"]))
    for key, title in (("leftovers", "leftovers of failed runs (deleted with --apply)"),
                       ("stale", "files of pruned backups still present (deleted with --apply)"),
                       ("foreign", "not created by openwatch-backup: left alone"),
                       ("left_alone", "left alone")):
        if details.get(key):
            out.print(_files_table(title, details[key]))
    for repair in details.get("repairs", []) + details.get("repaired", []):
        out.print(f"repair of backup {repair['run'][:8]}: {repair['reason']}", soft_wrap=True)
    for warning in details.get("warnings", []):
        out.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    s3 = summary.get("s3")
    if applied:
        out.print(f"[green]deleted {summary.get('backups_deleted', 0)} backup(s) and "
                  f"{summary.get('files_deleted', 0)} file(s), freed {human_bytes(summary.get('bytes_freed', 0))}[/]; "
                  f"kept {summary.get('backups_kept', 0)} backup(s)")
        if s3:
            out.print(f"[green]s3: deleted {s3['copies_deleted']} copy(ies) ({s3['objects_deleted']} object(s))[/]; "
                      f"kept {s3['copies_kept']} copy(ies)")
    else:
        if s3:
            out.print(f"s3: {s3['copies_to_delete']} copy(ies) would be deleted ({human_bytes(s3['bytes_to_free'])}), "
                      f"{s3['copies_kept']} kept", soft_wrap=True)
        out.print(f"dry run: {summary.get('backups_to_delete', 0)} backup(s) and {summary.get('leftovers', 0)} "
                  f"leftover(s) would be deleted ({human_bytes(summary.get('bytes_to_free', 0))}), "
                  f"{summary.get('backups_kept', 0)} kept; nothing was deleted. "
                  "`openwatch-backup prune --apply` carries it out.", soft_wrap=True)


@app.command()
def prune(apply: Annotated[bool, typer.Option("--apply", help="Delete what the plan says (default: only show "
                                                             "and record the plan).")] = False,
          as_json: JsonOption = False) -> None:
    """Show the retention plan (keep or delete, and why, for every backup); --apply deletes."""
    with service_from_env() as service:
        try:
            run = service.prune(apply=apply, requested_by=operator())
        except BackupError:
            if as_json:
                prunes = service.list_runs(limit=1, kind="prune")
                if prunes:
                    print_json(run_to_dict(prunes[0]))
            raise
        if as_json:
            print_json(run_to_dict(run))
        else:
            _print_plan(run)


def _pin_report(run: BackupRun, as_json: bool, text: str) -> None:
    if as_json:
        print_json(run_to_dict(run))
    else:
        out.print(text, soft_wrap=True)


@app.command()
def pin(run: RunArg, as_json: JsonOption = False) -> None:
    """Keep a backup forever: no retention rule deletes a pinned backup."""
    with service_from_env() as service:
        found = service.pin(run, requested_by=operator())
        _pin_report(found, as_json, f"pinned {found.kind} backup {found.id} ({found.details.get('artifact')}): "
                                    f"kept until `openwatch-backup unpin {str(found.id)[:8]}`")


@app.command()
def unpin(run: RunArg, as_json: JsonOption = False) -> None:
    """Release a pinned backup: retention judges it like any other again."""
    with service_from_env() as service:
        found = service.unpin(run, requested_by=operator())
        _pin_report(found, as_json, f"unpinned {found.kind} backup {found.id}: retention judges it like any other")
