"""The operator's CLI: thin over BackupService. Works when OpenWatch itself is down.

Every failure prints one line (`error: ...`) and exits non-zero; `--json` prints machine-readable
results on stdout (a failed backup still prints its run, then exits non-zero).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.serialize import run_to_dict
from openwatch_backup.core.kinds import BackupKind, Compression, Trigger
from openwatch_backup.errors import BackupError
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


def _fail(exc: BackupError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(exc.exit_status)


@contextmanager
def _service() -> Iterator[BackupService]:
    try:
        service = BackupService(load_settings())
    except BackupError as exc:
        raise _fail(exc) from None
    try:
        yield service
    except BackupError as exc:
        raise _fail(exc) from None
    finally:
        service.close()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _runs_table(runs: list[BackupRun]) -> Table:
    table = Table(title="backup runs (newest first)")
    for column in ("id", "kind", "status", "trigger", "created (UTC)", "duration", "size", "artifact / error"):
        table.add_column(column, no_wrap=column != "artifact / error")
    for run in runs:
        data = run_to_dict(run)
        duration = f"{data['duration_seconds']:.1f}s" if data["duration_seconds"] is not None else "-"
        size = human_bytes(run.size_bytes) if run.size_bytes is not None else "-"
        note = run.details.get("artifact") or run.error or run.phase or ""
        style = {"succeeded": "green", "failed": "red", "running": "yellow"}.get(run.status, "")
        table.add_row(str(run.id)[:8], run.kind, f"[{style}]{run.status}[/]" if style else run.status, run.trigger,
                      run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "-", duration, size,
                      str(note))
    return table


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[ProgressEvent], None] | None]:
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


@app.command()
def backup(
    kind: Annotated[BackupKind | None, typer.Option(help="full, plain, schema or tables.")] = None,
    tables: Annotated[str | None, typer.Option(help="Comma-separated tables for --kind tables.")] = None,
    compression: Annotated[Compression | None, typer.Option(help="zstd, pg or none.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Take a backup now and record it in the catalog."""
    with _service() as service:
        names = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
        if names:
            load_settings(tables=names)  # same validation as OPENWATCH_BACKUP_TABLES
        request = service.build_request(kind, compression, names)
        run_id: uuid.UUID = service.request_backup(request, Trigger.CLI, requested_by=_operator())
        try:
            with _progress_bar(not as_json and err.is_terminal) as observer:
                run = service.execute_backup(run_id, observer)
        except BackupError:
            if as_json:
                _print_json(run_to_dict(service.get_run(str(run_id))))
            raise
        if as_json:
            _print_json(run_to_dict(run))
        else:
            out.print(f"[green]backup {run.id} succeeded[/]: {run.artifact_location} "
                      f"({human_bytes(run.size_bytes or 0)}, sha256 {run.sha256})", soft_wrap=True)


def _operator() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command("list")
def list_runs(
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    with _service() as service:
        runs = service.list_runs(limit=limit, kind=kind, status=status)
        if as_json:
            _print_json([run_to_dict(r) for r in runs])
        elif not runs:
            out.print("no runs yet: `openwatch-backup backup` takes the first one")
        else:
            out.print(_runs_table(runs))


@app.command()
def show(run: Annotated[str, typer.Argument(help="Run id or its first characters.")], as_json: JsonOption = False
         ) -> None:
    """Show one run with its details and manifest."""
    with _service() as service:
        found = service.get_run(run)
        data = run_to_dict(found)
        manifest = service.manifest_of(found)
        data["manifest"] = manifest.model_dump() if manifest else None
        if as_json:
            _print_json(data)
            return
        for key, value in data.items():
            if key not in ("details", "manifest"):
                out.print(f"[bold]{key:>18}[/] {value}", highlight=False, soft_wrap=True)
        out.print_json(json.dumps({"details": data["details"], "manifest": data["manifest"]}, default=str))


@catalog_app.command("rebuild")
def catalog_rebuild(as_json: JsonOption = False) -> None:
    """Recreate catalog rows from the manifests in the backup directory."""
    with _service() as service:
        report = service.rebuild_catalog()
        if as_json:
            _print_json({"inserted": report.inserted, "already_present": report.already_present,
                         "skipped": report.skipped})
            return
        out.print(f"{len(report.inserted)} run(s) recreated, {len(report.already_present)} already present, "
                  f"{len(report.skipped)} manifest(s) skipped")
        for key, reason in report.skipped.items():
            out.print(f"  skipped {key}: {reason}", soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or update the plugin's tables (backup_runs, backup_canary)."""
    with _service() as service:
        out.print(f"plugin schema at revision {service.db_upgrade(revision)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Option(help="Target revision; base removes the tables.")] = "base"
                 ) -> None:
    """Undo the plugin's migrations (base drops backup_runs and backup_canary)."""
    with _service() as service:
        out.print(f"plugin schema at revision {service.db_downgrade(revision) or 'base (no tables)'}")


@app.command()
def demo(var: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path("var"),
         size_mib: Annotated[float, typer.Option(help="Size of the sample database when seeded.")] = 20.0) -> None:
    """Run the embedded default: local PostgreSQL with sample data, one backup into VAR/backups."""
    from openwatch_backup.demo import run_demo

    try:
        with _progress_bar(err.is_terminal) as observer:
            result = run_demo(var.resolve(), size_mib, observer)
    except BackupError as exc:
        raise _fail(exc) from None
    started = "a throwaway PostgreSQL (stopped again)" if result.server_was_started else "the running PostgreSQL"
    out.print(f"database {result.database} on {result.server}, {started}")
    out.print(f"[green]backup {result.backup.id} succeeded[/]: {result.backup.artifact_location} "
              f"({human_bytes(result.backup.size_bytes or 0)})", soft_wrap=True)
    out.print(_runs_table(result.runs))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
