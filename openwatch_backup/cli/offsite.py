"""Off-site commands: `offsite RUN` (copy a backup and its manifest to S3, then check the copy) and `offsite test`
(put, head, get and delete a probe object, naming the step that failed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from openwatch_backup.cli.common import JsonOption, app, operator, out, print_json, run_to_dict, service_from_env
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.errors import BackupError, StorageError

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.service import BackupService
    from openwatch_backup.storage.probe import ProbeResult

TEST = "test"


@app.command()
def offsite(
    run: Annotated[str, typer.Argument(help="Backup run id (or its first characters) to copy to S3, or `test` to "
                                            "check the connection: put, head, get and delete a probe object.")],
    as_json: JsonOption = False,
) -> None:
    """Copy a backup and its manifest to the S3 bucket and verify the copy (size and sha256), or `offsite test`."""
    with service_from_env() as service:
        if run.strip().lower() == TEST:
            _test(service, as_json)
        else:
            copy_offsite(service, run, as_json)


def copy_offsite(service: BackupService, ref: str, as_json: bool, *, quiet: bool = False) -> BackupRun:
    """The copy as a recorded run; prints one line (or the run as JSON; nothing when quiet) and raises unless it
    succeeded."""
    backup = service.get_run(ref)
    run_id = service.request_offsite(backup, requested_by=operator())
    try:
        run = service.execute_offsite(run_id)
    except BackupError:
        if as_json:
            print_json(run_to_dict(service.get_run(str(run_id))))
        raise
    if as_json:
        print_json(run_to_dict(run))
    if run.status != RunStatus.SUCCEEDED.value:  # another delivery had it (cannot happen from the CLI): say so
        raise StorageError(run.error or f"offsite run {run.id} is {run.status}")
    if not as_json and not quiet:
        info = run.details.get("offsite", {})
        if info.get("already_there"):
            what = "already there and verified, nothing uploaded"
        else:
            rate = info.get("bytes_per_second") or 0
            what = f"copied and verified in {info.get('seconds')} s ({rate / (1 << 20):.1f} MiB/s)"
        out.print(f"[green]offsite copy of {str(backup.id)[:8]}[/]: {info.get('location')} {what} (run {run.id})",
                  soft_wrap=True, highlight=False)
    return run


def _test(service: BackupService, as_json: bool) -> None:
    result: ProbeResult = service.offsite_test()
    if as_json:
        print_json({"ok": result.ok, "location": result.location, "summary": result.summary(),
                    "steps": [{"name": s.name, "ok": s.ok, "seconds": round(s.seconds, 3), "code": s.code,
                               "error": s.message} for s in result.steps]})
    else:
        for step in result.steps:
            line = f"{step.name:<6} ok ({step.seconds * 1000:.0f} ms)" if step.ok else \
                f"{step.name:<6} FAILED [{step.code}]: {step.message}"
            out.print(line, soft_wrap=True, highlight=False, markup=False)
        out.print(result.summary(), soft_wrap=True, highlight=False, markup=False)
    if not result.ok:
        raise typer.Exit(StorageError.exit_status)
