"""What every CLI command shares: the Typer apps, consoles, error mapping, JSON output, progress bar."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.serialize import run_to_dict
from openwatch_backup.errors import BackupError
from openwatch_backup.foreign_errors import as_backup_error
from openwatch_backup.operations.backup import ProgressEvent
from openwatch_backup.operations.preflight import human_bytes
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Back up, list and inspect OpenWatch's PostgreSQL backups.")
catalog_app = typer.Typer(no_args_is_help=True, help="Maintain the backup_runs catalog.")
db_app = typer.Typer(no_args_is_help=True, help="Create or remove the plugin's tables (its own migrations).")
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")

# Not a terminal (CI logs, pipes): rich would wrap at 80 columns; a wide table stays readable in a log.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout for scripts.")]


def fail(exc: BackupError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(exc.exit_status)


@contextmanager
def service_from_env() -> Iterator[BackupService]:
    """The service for a command; any error in it (ours, or a driver's we translate) ends the command with one
    line and the error's exit status."""
    try:
        service = BackupService(load_settings())
    except Exception as exc:
        raise fail(as_backup_error(exc)) from None
    try:
        yield service
    except Exception as exc:
        if is_cli_control(exc):
            raise
        raise fail(as_backup_error(exc, where=service.target.describe(), redact=service.redact)) from None
    finally:
        service.close()


def is_cli_control(exc: BaseException) -> bool:
    """typer's own exits and usage errors (`raise typer.Exit(1)`, a bad parameter): they are not failures."""
    return type(exc).__module__.split(".")[0] in ("typer", "click")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def runs_table(runs: list[BackupRun]) -> Table:
    table = Table(title="backup runs (newest first)")
    for column in ("id", "kind", "status", "trigger", "created (UTC)", "duration", "size", "artifact / error"):
        table.add_column(column, no_wrap=column != "artifact / error")
    for run in runs:
        data = run_to_dict(run)
        duration = f"{data['duration_seconds']:.1f}s" if data["duration_seconds"] is not None else "-"
        size = human_bytes(run.size_bytes) if run.size_bytes is not None else "-"
        note = run.error or run.details.get("artifact") or (f"of {str(run.parent_id)[:8]}" if run.parent_id else "")
        if run.pruned_at is not None:
            note = f"pruned {run.pruned_at:%Y-%m-%d}: {note}"
        elif run.pinned:
            note = f"pinned: {note}"
        style = {"succeeded": "green", "failed": "red", "running": "yellow"}.get(run.status, "")
        table.add_row(str(run.id)[:8], run.kind, f"[{style}]{run.status}[/]" if style else run.status, run.trigger,
                      run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "-", duration, size,
                      str(note))
    return table


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[ProgressEvent], None] | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("[bold]{task.fields[phase]}"), BarColumn(), TextColumn("{task.completed:,.0f} B read"),
               TransferSpeedColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("backup", total=None, phase="starting")

        def observe(event: ProgressEvent) -> None:
            progress.update(task, completed=event.bytes_in, phase=event.phase)

        yield observe




def operator() -> str:
    """Who asked, for the catalog's requested_by (the login name; never a secret)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
