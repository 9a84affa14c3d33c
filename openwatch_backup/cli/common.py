"""What every CLI command shares: the Typer apps, consoles, error mapping, JSON output, progress bar.

Start-up is kept short (`--help` within 0.15 s; bench/bench_cli_start.py): importing this module costs typer
and the error classes only. The service (SQLAlchemy, psycopg, pydantic) is imported by the commands that use
it, rich only when something is printed through a console, and typer's help is plain text (no rich).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openwatch_backup.cli.lean_params import LeanGroup
from openwatch_backup.errors import BackupError
from openwatch_backup.foreign_errors import as_backup_error

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from openwatch_backup.catalog.fast_list import RunRow
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.operations.backup import ProgressEvent
    from openwatch_backup.service import BackupService

# rich_markup_mode=None: typer formats help and usage errors itself; with rich, `--help` alone cost 0.1 s more.
# cls=LeanGroup: the group's --help option is coerced without pydantic (`list` starts in 0.3 s; cli/lean_params.py).
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=LeanGroup,
                  rich_markup_mode=None, help="Back up, list and inspect OpenWatch's PostgreSQL backups.")
catalog_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Maintain the backup_runs catalog.")
db_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                     help="Create or remove the plugin's tables (its own migrations).")
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")


class _LazyConsole:
    """A rich Console made (and rich imported) on first use."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._stderr else sys.stdout
            # Not a terminal (CI logs, pipes): rich would wrap at 80 columns; a wide table stays readable in a log.
            self._console = Console(stderr=self._stderr, width=None if stream.isatty() else 160)
        return self._console

    @property
    def is_terminal(self) -> bool:
        return (sys.stderr if self._stderr else sys.stdout).isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


out: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout for scripts.")]


def fail(exc: BackupError) -> typer.Exit:
    """Print the error's one line on stderr (`error:` in bold red on a terminal) and exit with its status."""
    mark = "\x1b[1;31merror:\x1b[0m" if sys.stderr.isatty() else "error:"
    sys.stderr.write(f"{mark} {exc.message}\n")
    sys.stderr.flush()
    return typer.Exit(exc.exit_status)


@contextmanager
def service_from_env(backup_dir: Path | None = None) -> Iterator[BackupService]:
    """The service for a command; any error in it (ours, or a driver's we translate) ends the command with one
    line and the error's exit status. backup_dir: instead of OPENWATCH_BACKUP_DIR (`recover --from DIR`)."""
    from openwatch_backup.service import BackupService  # imports SQLAlchemy, psycopg, pydantic: only when needed
    from openwatch_backup.settings import load_settings

    try:
        settings = load_settings()
        if backup_dir is not None:
            settings = settings.model_copy(update={"dir": backup_dir.absolute()})
        service = BackupService(settings)
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


def run_to_dict(run: BackupRun | RunRow) -> dict[str, Any]:
    """catalog.serialize.run_to_dict, imported on first use."""
    from openwatch_backup.catalog.serialize import run_to_dict as convert

    return convert(run)


def human_bytes(count: float) -> str:
    from openwatch_backup.core.units import human_bytes as shown

    return shown(count)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def runs_table(runs: list[BackupRun] | list[RunRow], copies: dict[Any, list[dict[str, Any]]] | None = None) -> Table:
    """copies: each run's copies (copy_to_dict's form), shown as `local:verified s3:failed` when given."""
    from rich.table import Table

    table = Table(title="backup runs (newest first)")
    columns = ("id", "kind", "status", "trigger", "created (UTC)", "duration", "size",
               *(("copies",) if copies is not None else ()), "artifact / error")
    for column in columns:
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
        shown = [" ".join(f"{c['storage']}:{c['state']}" for c in copies.get(run.id, [])) or "-"] \
            if copies is not None else []
        table.add_row(str(run.id)[:8], run.kind, f"[{style}]{run.status}[/]" if style else run.status, run.trigger,
                      run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "-", duration, size,
                      *shown, str(note))
    return table


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[ProgressEvent], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

    columns = (TextColumn("[bold]{task.fields[phase]}"), BarColumn(), TextColumn("{task.completed:,.0f} B read"),
               TransferSpeedColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err._get(), transient=True) as progress:
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
