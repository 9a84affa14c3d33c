"""Backup commands: backup, list, show, catalog rebuild, db upgrade/downgrade, demo."""

from __future__ import annotations

import atexit
import gc
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openwatch_backup.cli.common import (
    JsonOption,
    app,
    catalog_app,
    db_app,
    err,
    fail,
    human_bytes,
    is_cli_control,
    operator,
    out,
    print_json,
    progress_bar,
    run_to_dict,
    runs_table,
    service_from_env,
)
from openwatch_backup.cli.lean_params import LeanCommand
from openwatch_backup.core.kinds import OPERATION_KINDS, BackupKind, Compression, RunStatus, Trigger
from openwatch_backup.errors import BackupError, ConfigError, ManifestError, VerifyFailed
from openwatch_backup.foreign_errors import as_backup_error

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.service import BackupService


@app.command()
def backup(
    kind: Annotated[BackupKind | None, typer.Option(
        help="full, plain, schema or tables (database dumps), config (the encrypted bundle of .env, keys and "
        "certificates), redis (a BGSAVE snapshot) or volume (docker volumes as .tar.zst).")] = None,
    tables: Annotated[str | None, typer.Option(help="Comma-separated tables for --kind tables.")] = None,
    compression: Annotated[Compression | None, typer.Option(help="zstd, pg or none.")] = None,
    volume: Annotated[list[str] | None, typer.Option(help="--kind volume: this docker volume (repeatable); default "
                                                          "OPENWATCH_BACKUP_VOLUMES.")] = None,
    stop: Annotated[str | None, typer.Option(help="--kind volume, consistent mode: stop these containers "
                                                  "(comma-separated) around the read; they are started again.")] = None,
    offsite: Annotated[bool, typer.Option("--offsite", help="Then verify it (quick) and copy it to the S3 bucket "
                                                             "(OPENWATCH_BACKUP_S3_BUCKET), checked there.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Take a backup now and record it in the catalog; with --offsite, verify it and copy it off-site too."""
    # At the interpreter's exit (after this command's work: file committed, catalog written, output printed),
    # freeze the objects typer, pydantic and SQLAlchemy built, so the exit's final garbage collections skip them:
    # 0.18-0.33 s of a backup's fixed cost here, 0.04-0.18 s frozen. Nothing relies on those collections: files
    # are closed and the catalog committed before, stdout and stderr are still flushed. atexit, not now: a test
    # that runs the command in-process keeps its collector until its own exit.
    atexit.register(gc.freeze)
    with service_from_env() as service:
        if offsite:
            service.require_offsite()  # before backing up: nothing is taken that cannot be copied as asked
        names = _table_names(tables, kind or service.settings.kind)
        if compression is not None and (kind or service.settings.kind) is BackupKind.CONFIG:
            raise ConfigError("--compression is for database dumps; a config bundle is always a gzip tar inside "
                              "its encryption: drop --compression")
        if (volume or stop is not None) and (kind or service.settings.kind) is not BackupKind.VOLUME:
            raise ConfigError("--volume and --stop are for --kind volume: add --kind volume, or drop them")
        if (kind or service.settings.kind) is BackupKind.VOLUME:
            _volume_backups(service, volume, stop, as_json)
            return
        request = service.build_request(kind, compression, names)
        run_id: uuid.UUID = service.request_backup(request, Trigger.CLI, requested_by=operator())
        try:
            with progress_bar(not as_json and err.is_terminal) as observer:
                run = service.execute_backup(run_id, observer)
        except BackupError:
            if as_json:
                print_json(run_to_dict(service.get_run(str(run_id))))
            raise
        if offsite:
            _verify_and_copy(service, run, as_json)
        elif as_json:
            print_json(run_to_dict(run))
        else:
            _backup_line(run)


def _volume_backups(service: BackupService, volumes: list[str] | None, stop: str | None, as_json: bool) -> None:
    """One run per volume, all checked before the first is taken; --json prints the list of runs."""
    names = [n.strip() for n in stop.split(",") if n.strip()] if stop is not None else None
    run_ids = service.request_volume_snapshots(volumes, names, requested_by=operator())
    done = []
    for run_id in run_ids:
        try:
            run = service.execute_backup(run_id)
        except BackupError:
            if as_json:
                print_json([run_to_dict(service.get_run(str(r))) for r in run_ids])
            raise
        done.append(run)
        if not as_json:
            _backup_line(run)
            info = run.details.get("volume") or {}
            if info.get("stopped"):
                out.print(f"  {', '.join(info['stopped'])} stopped for {info.get('downtime_seconds')} s",
                          highlight=False, markup=False, soft_wrap=True)
    if as_json:
        print_json([run_to_dict(run) for run in done])


def _backup_line(run: BackupRun) -> None:
    out.print(f"[green]backup {run.id} succeeded[/]: {run.artifact_location} "
              f"({human_bytes(run.size_bytes or 0)}, sha256 {run.sha256})", soft_wrap=True)


def _verify_and_copy(service: BackupService, run: BackupRun, as_json: bool) -> None:
    """`backup --offsite` after the backup: a quick verify, then the copy, each its own run. --json prints the
    three runs as {"backup", "verify", "offsite"} (null for a step not reached)."""
    from openwatch_backup.cli.offsite import copy_offsite

    done: dict[str, Any] = {"backup": run_to_dict(run), "verify": None, "offsite": None}
    try:
        verify_run, result = service.verify(str(run.id), requested_by=operator())
        done["verify"] = run_to_dict(verify_run)
        if result is None or not result.passed:
            raise VerifyFailed(verify_run.error or "verify failed", str(result.reason if result else "claimed"))
        if not as_json:
            _backup_line(run)
            out.print(f"[green]quick verify passed[/] (run {verify_run.id})", soft_wrap=True)
        done["offsite"] = run_to_dict(copy_offsite(service, str(run.id), as_json=False, quiet=as_json))
    except BackupError:
        if as_json:
            offsite_runs = service.recorder.list(limit=1, kind="offsite", parent_id=run.id)
            done["offsite"] = run_to_dict(offsite_runs[0]) if offsite_runs else None
            print_json(done)
        raise
    if as_json:
        print_json(done)


def _table_names(tables: str | None, kind: BackupKind) -> list[str] | None:
    """--tables checked as OPENWATCH_BACKUP_TABLES is, but named as the option the operator typed."""
    if tables is None:
        return None
    if kind is not BackupKind.TABLES:
        raise ConfigError(f"--tables is only for --kind tables (this backup's kind is {kind.value}); add "
                          "--kind tables, or drop --tables")
    from openwatch_backup.settings import Settings

    try:
        return Settings._tables_are_identifiers(Settings._split_tables(tables))
    except ValueError as exc:
        raise ConfigError(f"--tables: {exc} (got {tables!r})") from None


RUN_KINDS = (*(k.value for k in BackupKind), *OPERATION_KINDS)


def _with_copies(data: dict[str, Any], copies: dict[uuid.UUID, list[dict[str, Any]]] | None,
                 run_id: uuid.UUID) -> dict[str, Any]:
    """A run's JSON with "copies" (as the API gives them), unless the catalog predates backup_copies."""
    if copies is not None:
        data["copies"] = copies.get(run_id, [])
    return data


def _one_of(option: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise ConfigError(f"{option} {value!r} is not one of {', '.join(allowed)}")
    return value


@app.command("list", cls=LeanCommand)  # plain option values without pydantic (cli/lean_params.py)
def list_runs(
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    # Not through the service: SQLAlchemy's ORM and pydantic cost more than list's 0.3 s start-up
    # (bench/bench_cli_start.py). The rows come from one psycopg SELECT (catalog/fast_list.py) and print as the
    # ORM's would; failures end as service_from_env ends them: one line, the error's exit status.
    from openwatch_backup.catalog.fast_list import list_runs as read_runs
    from openwatch_backup.core.redact import Redactor
    from openwatch_backup.settings_env import catalog_env

    secrets: tuple[str | None, ...]
    try:
        found = catalog_env()
        if found is None:  # only the full Settings can judge the environment (and word its errors)
            from openwatch_backup.settings import load_settings

            settings = load_settings()
            target, secrets = settings.target, (settings.target.password, settings.database_url, settings.webhook_url)
        else:
            target, secrets = found.target, found.secrets
    except Exception as exc:
        raise fail(as_backup_error(exc)) from None
    redact = Redactor(secrets)
    try:
        runs = read_runs(target, limit=limit, kind=_one_of("--kind", kind, RUN_KINDS),
                         status=_one_of("--status", status, tuple(s.value for s in RunStatus)))
        copies = getattr(runs, "copies", None)  # each run's copies, read on the same connection
        if as_json:
            print_json([_with_copies(run_to_dict(r), copies, r.id) for r in runs])
        elif not runs and (kind or status):  # the catalog may well hold runs, just none of these
            what = " ".join(filter(None, (status, kind)))
            out.print(f"no {what} runs: `openwatch-backup list` without --kind/--status shows every run")
        elif not runs:
            out.print("no runs yet: `openwatch-backup backup` takes the first one")
        else:
            out.print(runs_table(runs, copies))
    except Exception as exc:
        if is_cli_control(exc):
            raise
        raise fail(as_backup_error(exc, where=target.describe(), redact=redact)) from None


@app.command()
def show(run: Annotated[str, typer.Argument(help="Run id or its first characters.")], as_json: JsonOption = False
         ) -> None:
    """Show one run with its details and manifest."""
    from openwatch_backup.catalog.copies import copy_to_dict

    with service_from_env() as service:
        found = service.get_run(run)
        data = run_to_dict(found)
        data["copies"] = [copy_to_dict(c) for c in service.copies.of_runs([found.id])[found.id]]
        manifest = service.manifest_of(found)
        data["manifest"] = json.loads(manifest.to_json()) if manifest else None  # as stored: no empty payloads
        if as_json:
            print_json(data)
            return
        for key, value in data.items():
            if key not in ("details", "manifest", "copies"):
                out.print(f"[bold]{key:>18}[/] {value}", highlight=False, soft_wrap=True)
        for copy in data["copies"]:
            out.print(f"[bold]{'copy ' + copy['storage']:>18}[/] {_copy_line(copy)}", highlight=False,
                      soft_wrap=True)
        out.print_json(json.dumps({"details": data["details"], "manifest": data["manifest"]}, default=str))


def _copy_line(copy: dict[str, Any]) -> str:
    """`verified s3://bucket/key, 12.0 MiB, verified 2026-11-30 02:01:10, re-read ...` or the failure's reason."""
    parts = [f"{copy['state']} {copy['location']}"]
    if copy["size_bytes"] is not None:
        parts.append(human_bytes(copy["size_bytes"]))
    for label in ("verified", "reverified", "deleted"):
        when = copy[f"{label}_at"]
        if when:
            parts.append(f"{'re-read' if label == 'reverified' else label} {when[:19].replace('T', ' ')}")
    if copy["attempts"]:
        parts.append(f"{copy['attempts']} attempt(s)")
    if copy["error"]:
        parts.append(f"error: {copy['error']}")
    return ", ".join(parts)


@catalog_app.command("rebuild")
def catalog_rebuild(
    any_database: Annotated[bool, typer.Option("--any-database", help="Also add backups of another database "
                                                                      "than OPENWATCH_DATABASE_URL's.")] = False,
    source: Annotated[str, typer.Option("--from", help="Where the manifests are: local (OPENWATCH_BACKUP_DIR) or "
                                                       "s3 (OPENWATCH_BACKUP_S3_BUCKET, on a new host).")] = "local",
    as_json: JsonOption = False,
) -> None:
    """Recreate catalog rows from the manifests in the backup directory, or in the S3 bucket with --from s3.

    A manifest that cannot be added (unreadable, forged, of another database, its artifact missing or claimed by
    another run) is listed with the reason; the others are still added, and the exit status is then 7."""
    with service_from_env() as service:
        report = service.rebuild_catalog(any_database=any_database,
                                         source=_one_of("--from", source, ("local", "s3")) or "local")
        if as_json:
            print_json({"inserted": report.inserted, "already_present": report.already_present,
                        "pruned": report.pruned, "skipped": report.skipped})
        else:
            out.print(f"{len(report.inserted)} run(s) recreated, {len(report.already_present)} already present, "
                      f"{len(report.pruned)} of pruned backups left for the next prune, "
                      f"{len(report.skipped)} manifest(s) skipped")
            for key, reason in report.skipped.items():
                out.print(f"  skipped {key}: {reason}", soft_wrap=True, highlight=False, markup=False)
        if report.skipped:
            raise ManifestError(f"{len(report.skipped)} manifest(s) skipped, each listed with its reason; "
                                "the others were added")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Create or update the plugin's tables (backup_runs, backup_canary)."""
    with service_from_env() as service:
        out.print(f"plugin schema at revision {service.db_upgrade(revision)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Option(help="Target revision; base removes the tables.")] = "base"
                 ) -> None:
    """Undo the plugin's migrations (base drops backup_runs and backup_canary)."""
    with service_from_env() as service:
        out.print(f"plugin schema at revision {service.db_downgrade(revision) or 'base (no tables)'}")


@app.command()
def demo(var: Annotated[Path, typer.Option(help="Where the demo keeps its files.")] = Path("var"),
         size_mib: Annotated[float, typer.Option(help="Size of the sample database when seeded.")] = 20.0,
         port: Annotated[int, typer.Option(help="Port of the API and the admin page (0: any free one).")] = 8765,
         once: Annotated[bool, typer.Option(help="Take one backup, print the catalog and stop (no worker).")] = False,
         database: Annotated[str, typer.Option(help="Name of the sample database.", hidden=True)] = "openwatch_demo",
         redis_db: Annotated[int, typer.Option(help="Redis database of the worker and beat.", hidden=True)] = 0,
         ) -> None:
    """The embedded default: PostgreSQL with sample data, Redis, worker, beat and the admin page until Ctrl-C."""
    if once:
        _demo_once(var, size_mib)
        return
    import signal

    from openwatch_backup.cli.signals import stop_on_signal
    from openwatch_backup.devstack.stack import EmbeddedStack

    stack = EmbeddedStack(var.resolve(), database=database, size_mib=size_mib, port=port, redis_db=redis_db,
                          sample_config=True)
    # Ctrl-C, SIGTERM, and a SIGINT sent to a demo started in the background (`scripts/demo &`: bash starts it
    # with SIGINT ignored) all stop it the same way.
    with stop_on_signal():
        try:
            with stack:
                out.print(f"[bold]admin page[/]: {stack.url}", soft_wrap=True)
                out.print(f"[bold]API token[/]:  {stack.token}  (paste it into the page; Bearer token for the API)",
                          soft_wrap=True)
                out.print(f"database {stack.database}, backups in {var / 'backups'}, logs in {var / 'logs'}; "
                          "Ctrl-C stops everything", soft_wrap=True)
                while True:
                    signal.pause()
        except KeyboardInterrupt:
            pass
        except BackupError as exc:
            raise fail(exc) from None
    out.print("stopped: worker, beat, API (and any server the demo started)")


def _demo_once(var: Path, size_mib: float) -> None:
    from openwatch_backup.demo import run_demo

    try:
        with progress_bar(err.is_terminal) as observer:
            result = run_demo(var.resolve(), size_mib, observer)
    except BackupError as exc:
        raise fail(exc) from None
    started = "a throwaway PostgreSQL (stopped again)" if result.server_was_started else "the running PostgreSQL"
    out.print(f"database {result.database} on {result.server}, {started}")
    out.print(f"[green]backup {result.backup.id} succeeded[/]: {result.backup.artifact_location} "
              f"({human_bytes(result.backup.size_bytes or 0)})", soft_wrap=True)
    if result.config is not None:
        out.print(f"[green]config bundle {result.config.id} succeeded[/]: {result.config.artifact_location} "
                  f"(passphrase file {var.resolve() / 'config-passphrase'})", soft_wrap=True)
    out.print(runs_table(result.runs))
