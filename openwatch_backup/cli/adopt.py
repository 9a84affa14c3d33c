"""`openwatch-backup adopt DIR`: take over the backups the guide's own script wrote (issue 13, item 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openwatch_backup.cli.common import JsonOption, app, operator, out, print_json, service_from_env
from openwatch_backup.errors import ManifestError


@app.command()
def adopt(folder: Annotated[Path, typer.Argument(
              help="The folder the guide's script writes to, e.g. /opt/openwatch/backups.")],
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and check every file; adopt none.")] = False,
          as_json: JsonOption = False) -> None:
    """Catalogue the guide's backups under FOLDER (openwatch_*.dump, config_*.tar.gz.enc, redis/dump_*.rdb,
    volumes/*.tar.gz): each is read whole, copied into OPENWATCH_BACKUP_DIR (the original is left as it is) and
    becomes a backup run dated when the guide took it, verified, restorable and pruned like ours. Running it again
    adds nothing for files already adopted. A file that is not adopted is listed with the reason; the others are
    still adopted, and the exit status is then 7."""
    from openwatch_backup.operations.adopt import ADOPTED, ALREADY, SKIPPED, WOULD

    with service_from_env() as service:
        report = service.adopt(folder, dry_run=dry_run, requested_by=operator())
        if as_json:
            print_json(report.as_dict())
        else:
            for o in report.outcomes:
                if o.status == ADOPTED:
                    line = f"adopted {o.source} as {o.kind} run {o.run_id} (taken {o.taken_at})"
                elif o.status == WOULD:
                    line = f"would adopt {o.source} as a {o.kind} run (taken {o.taken_at})"
                elif o.status == ALREADY:
                    line = f"already adopted {o.source} (run {o.run_id})"
                else:
                    line = f"skipped {o.source}: {o.reason}"
                out.print(line, soft_wrap=True, highlight=False, markup=False)
            done = (f"{report.count(WOULD)} would be adopted" if dry_run else f"{report.count(ADOPTED)} adopted")
            out.print(f"{done}, {report.count(ALREADY)} already adopted, {report.count(SKIPPED)} skipped",
                      highlight=False, markup=False)
        if report.count(SKIPPED):
            raise ManifestError(f"{report.count(SKIPPED)} file(s) of {folder} not adopted, each listed with its "
                                f"reason; the others {'would be' if dry_run else 'were'} adopted")
