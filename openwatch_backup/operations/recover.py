"""`recover`: the guide's "Full Recovery from Scratch" as one recorded, resumable run (kind recover).

On a host where only PostgreSQL (and Redis) run, with the catalog rebuilt from the store (the service does that
first), the steps are:

1. catalog: the runs from the store's manifests (done by the caller, recorded here);
2. plan: the newest full backup that verifies, the config bundle that belongs with it, the volumes' snapshots
   (operations/recover_plan.py);
3. config: the bundle decrypted into a NEW folder (never over live files), and where each file goes;
4. database: restored into a scratch database, checked, then swapped in (restore.py). An empty database (only
   our catalog in it, as on a new host) is dropped afterwards; an existing OpenWatch database is kept under a
   dated name, after a safety backup;
5. migrate (with --migrate): OpenWatch's migrations;
6. checks: the database answers, its row counts match the manifest, the bundle's master key decrypts the
   restored credentials (operations/secrets_proof.py), and with --health-check OpenWatch's health URL;
7. volumes (with --volumes): each snapshot into a volume of its name that does not exist yet.

Each step is recorded when it finishes (operations/recover_steps.py), so a second recover continues where a
failed or killed one stopped. `recover_into` runs the same steps into scratch targets for the host drill
(operations/host_drill.py): a new database instead of the live one, a scratch folder, scratch volume names,
all read from the off-site copy.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.errors import RestoreFailed, RestoreRefused
from openwatch_backup.operations.bundle_key import master_key_of
from openwatch_backup.operations.config_restore import check_destination, run_config_restore
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.heartbeat import heartbeat
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.read_source import read_manifest
from openwatch_backup.operations.recover_plan import Plan, choose_plan, placements
from openwatch_backup.operations.recover_steps import CHILDREN, KEY, RESUMES, StepLog, carried_over
from openwatch_backup.operations.restore import RestoreRequest, run_restore
from openwatch_backup.operations.restore_checks import tables_to_count
from openwatch_backup.operations.secrets_proof import prove_secrets
from openwatch_backup.source.connection import connect
from openwatch_backup.source.facts import alembic_head, row_counts
from openwatch_backup.source.scratch import drop_database
from openwatch_backup.source.swap import maintenance_connection

# Our own tables: a database holding nothing else is empty for OpenWatch (a new host's, after `db upgrade`).
PLUGIN_TABLES = frozenset({"backup_runs", "backup_copies", "backup_settings", "backup_canary",
                           "openwatch_backup_alembic_version"})


@dataclass(frozen=True)
class RecoverRequest:
    source: str  # "s3", or the folder the backups are in
    backup: str | None = None
    config: str | None = None
    skip_config: bool = False
    config_to: str | None = None
    migrate: bool = False
    health_check: bool = False
    volumes: bool = False
    terminate_connections: bool = False

    def as_details(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Targets:
    """Where recover writes. The defaults are the live ones; the host drill gives scratch ones."""

    folder: Path
    database: str | None = None  # None: the live database (swap); a name: a new database (restore --into)
    volumes: dict[str, str] | None = None  # None: each snapshot's own name; else original -> target, only these
    copy: CopyStorage | None = None  # None: the local file while it is there, else S3; the drill: S3


@dataclass(frozen=True)
class StepReport:
    name: str
    seconds: float
    lines: list[str]
    resumed: bool = False


Observer = Callable[[StepReport], None]


class Hooks(Protocol):
    """What only the service can do: take a safety backup (a whole backup run), run OpenWatch's migrations."""

    def safety_backup(self) -> BackupRun: ...

    def migrate(self) -> dict[str, Any]: ...


def _lines(name: str, result: dict[str, Any]) -> list[str]:
    return [str(line) for line in result.get("lines") or [f"{name} done"]]


class _Recovery:
    def __init__(self, ctx: OperationContext, run_id: uuid.UUID, request: RecoverRequest, targets: Targets,
                 hooks: Hooks | None, observer: Observer | None, log: StepLog) -> None:
        self.ctx, self.run_id, self.request, self.targets = ctx, run_id, request, targets
        self.hooks, self.observer, self.log = hooks, observer, log

    def step(self, name: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        done = self.log.finished(name)
        if done is not None:
            self._tell(StepReport(name, float(done.get("seconds") or 0.0),
                                  [*_lines(name, done), "(done by the recover run this one resumes)"]
                                  if name in self.log.resumed else _lines(name, done), resumed=True))
            return done
        started = self.log.start(name)
        result = self.log.record(name, started, body())
        self._tell(StepReport(name, result["seconds"], _lines(name, result)))
        return result

    def _tell(self, report: StepReport) -> None:
        if self.observer is not None:
            self.observer(report)

    def child(self, kind_of_step: str, parent: BackupRun, details: dict[str, Any],
              volume: str | None = None) -> uuid.UUID:
        child_id = self.ctx.recorder.create("restore", "cli", f"recover {str(self.run_id)[:8]}", parent_id=parent.id,
                                            details={**details, "recover_run": str(self.run_id)})
        self.log.child(kind_of_step, child_id, volume)
        return child_id

    # --- the steps
    def plan(self) -> Plan:
        result = self.step("plan", self._choose)
        return self._plan_of(result)

    def _choose(self) -> dict[str, Any]:
        plan = choose_plan(self.ctx, backup_ref=self.request.backup, config_ref=self.request.config,
                           skip_config=self.request.skip_config,
                           volumes=self.request.volumes or bool(self.targets.volumes), copy=self.targets.copy)
        if self.targets.volumes is not None:
            plan.volumes = {n: r for n, r in plan.volumes.items() if n in self.targets.volumes}
        lines = [f"database: full backup {plan.backup.id} of {plan.backup.created_at:%Y-%m-%d %H:%M} UTC",
                 f"config: bundle {plan.bundle.id} of {plan.bundle.created_at:%Y-%m-%d %H:%M} UTC" if plan.bundle
                 else "config: none (--skip-config)"]
        lines += [f"volume {name}: snapshot {run.id} of {run.created_at:%Y-%m-%d %H:%M} UTC"
                  for name, run in plan.volumes.items()]
        lines += [f"passed over {line}" for line in plan.passed_over]
        return {**plan.as_details(), "lines": lines}

    def _plan_of(self, result: dict[str, Any]) -> Plan:
        get = self.ctx.recorder.get
        return Plan(backup=get(result["backup"]), bundle=get(result["config"]) if result.get("config") else None,
                    volumes={name: get(ref) for name, ref in (result.get("volumes") or {}).items()},
                    passed_over=list(result.get("passed_over") or []))

    def config(self, bundle: BackupRun) -> dict[str, Any]:
        folder = self.targets.folder

        def body() -> dict[str, Any]:
            check_destination(folder)
            child_id = self.child("config", bundle, {"request": {"config": True, "to": str(folder)}})
            with heartbeat(self.ctx.recorder, child_id, self.ctx.settings.heartbeat_seconds):
                run_config_restore(self.ctx, child_id, bundle, folder, self.targets.copy)
            moves = placements(bundle, folder)
            return {"run": str(child_id), "folder": str(folder), "placements": moves,
                    "lines": [f"bundle {bundle.id} restored into {folder}; put each file in place:",
                              *[f"  {restored} -> {where}" for restored, where in moves]]}

        return self.step("config", body)

    def database(self, backup: BackupRun) -> dict[str, Any]:
        return self.step("database", lambda: self._restore_database(backup))

    def _restore_database(self, backup: BackupRun) -> dict[str, Any]:
        copy = self.targets.copy.value if self.targets.copy else None
        if self.targets.database is not None:
            request = RestoreRequest(into=self.targets.database, copy=copy, internal_scratch=True)
            empty = True
        else:
            empty = _holds_only_our_tables(self.ctx)
            request = RestoreRequest(confirm=self.ctx.target.dbname, copy=copy, safety_backup=not empty,
                                     terminate_connections=self.request.terminate_connections)
        child_id = self.child("database", backup, {"request": request.as_details()})
        hooks = self.hooks

        def safety() -> BackupRun:
            if hooks is None:
                raise RestoreRefused("a safety backup is needed and cannot be taken here")
            return hooks.safety_backup()

        with heartbeat(self.ctx.recorder, child_id, self.ctx.settings.heartbeat_seconds):
            outcome = run_restore(self.ctx, child_id, backup, request, safety)
        if outcome is None:
            raise RestoreFailed(f"the restore run {child_id} was taken by another process")
        lines = [f"{outcome.database} restored from backup {backup.id} in {outcome.seconds:.1f} s"]
        dropped = None
        if self.targets.database is None and empty and outcome.kept_database:
            with maintenance_connection(self.ctx.target, self.ctx.redact) as admin:
                drop_database(admin, outcome.kept_database)  # it held our catalog only, carried over
            dropped = outcome.kept_database
            lines.append("the database was empty (a new host's): nothing else kept")
        elif outcome.kept_database:
            lines.append(f"the database that was there is kept as {outcome.kept_database}; safety backup "
                         f"{outcome.safety_backup_run}")
        return {"run": str(child_id), "database": outcome.database, "kept_database": outcome.kept_database,
                "dropped_empty": dropped, "restore_seconds": outcome.seconds, "lines": lines}

    def migrate(self) -> dict[str, Any]:
        def body() -> dict[str, Any]:
            if self.hooks is None:
                raise RestoreRefused("--migrate cannot run here")
            done = self.hooks.migrate()
            return {**done, "lines": [f"`{done.get('command')}` exited 0"]}

        return self.step("migrate", body)

    def checks(self, plan: Plan, migrated: bool) -> dict[str, Any]:
        return self.step("checks", lambda: self._check(plan, migrated))

    def _check(self, plan: Plan, migrated: bool) -> dict[str, Any]:
        from openwatch_backup.operations.post_restore import check_health

        dbname = self.targets.database or self.ctx.target.dbname
        manifest = read_manifest(self.ctx, plan.backup)
        if manifest is None:
            raise RestoreFailed(f"the manifest of backup {plan.backup.id} cannot be read any more")
        with connect(self.ctx.target.with_dbname(dbname), self.ctx.redact) as conn:
            head = alembic_head(conn)
            expected = {t: manifest.row_counts[t] for t in tables_to_count(manifest)}
            found = row_counts(conn, list(expected))
        wrong = {t: (found.get(t), n) for t, n in expected.items() if found.get(t) != n}
        result: dict[str, Any] = {"database": dbname, "openwatch_alembic_head": head, "row_counts": found}
        lines = [f"database {dbname} answers; OpenWatch's migration head {head}"]
        if wrong and not migrated:
            detail = ", ".join(f"{t}: {got} restored, {want} backed up" for t, (got, want) in sorted(wrong.items()))
            raise RestoreFailed(f"row counts differ after the restore ({detail})")
        lines.append(f"row counts of {len(expected)} tables match the backup" if not wrong else
                     f"row counts of {len(wrong)} tables changed with the migrations: {sorted(wrong)}")
        checks: dict[str, Any] = {}
        if plan.bundle is None:
            checks["secrets"] = {"skipped": "no config bundle restored (--skip-config)"}
        else:
            bundle = plan.bundle
            failed = prove_secrets(self.ctx, dbname, checks, find_key=lambda ctx: master_key_of(ctx, bundle))
            if failed is not None:
                raise RestoreFailed(failed.message)
        secrets = checks["secrets"]
        result["secrets"] = secrets
        lines.append(f"master key not checked: {secrets['skipped']}" if secrets.get("skipped") else
                     f"master key: {secrets['decrypted']} of {secrets['sampled']} credentials decrypted with the key "
                     f"of bundle {secrets['bundle_run']}")
        if self.request.health_check:
            result["health"] = check_health(self.ctx.settings.health_url)
            lines.append(f"{self.ctx.settings.health_url} answered HTTP 200")
        return {**result, "lines": lines}

    def volumes(self, plan: Plan) -> dict[str, Any]:
        return self.step("volumes", lambda: self._restore_volumes(plan))

    def _restore_volumes(self, plan: Plan) -> dict[str, Any]:
        from openwatch_backup.docker_api import docker_client, volume_exists
        from openwatch_backup.operations.volume_restore import run_volume_restore

        done: dict[str, Any] = {}
        lines = []
        previous = (self.log.children.get("volumes") or {})
        client = docker_client() if plan.volumes else None
        for name, snapshot in plan.volumes.items():
            target = (self.targets.volumes or {}).get(name, name)
            child_ref = previous.get(name)
            if child_ref and self.ctx.recorder.get(str(child_ref)).status == "succeeded":
                done[name] = {"run": str(child_ref), "volume": target}
                lines.append(f"volume {target}: restored before")
                continue
            assert client is not None
            if volume_exists(client, target):
                raise RestoreRefused(f"volume {target} exists: recover restores volumes only into new ones; if it is "
                                     f"the empty volume a new install made, remove it (docker volume rm {target}) "
                                     "and run recover again, else restore it yourself with `openwatch-backup "
                                     f"restore {snapshot.id} --volume {name} --confirm {name}`")
            child_id = self.child("volumes", snapshot, {"request": {"volume": name, "target": target,
                                                                     "in_place": False}}, volume=name)
            with heartbeat(self.ctx.recorder, child_id, self.ctx.settings.heartbeat_seconds):
                run_volume_restore(self.ctx, child_id, snapshot, target, False, self.targets.copy)
            done[name] = {"run": str(child_id), "volume": target, "snapshot": str(snapshot.id)}
            lines.append(f"volume {target} restored from snapshot {snapshot.id}")
        return {"volumes": done, "lines": lines or ["no volume snapshot to restore"]}

    # --- all of it
    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        plan = self.plan()
        if plan.bundle is not None:
            self.config(plan.bundle)
        self.database(plan.backup)
        if self.request.migrate:
            self.migrate()
        self.checks(plan, self.request.migrate)
        if plan.volumes:
            self.volumes(plan)
        seconds = sum(float(r.get("seconds") or 0.0) for r in self.log.done.values())
        target = self.ctx.settings.host_rto_minutes * 60
        return {"seconds": round(seconds, 3), "wall_seconds": round(time.monotonic() - started, 3),
                "target_seconds": target, "within": seconds <= target, "plan": plan.as_details(),
                "config_folder": str(self.targets.folder) if plan.bundle else None}


def _drop_kept_if_empty(ctx: OperationContext, database_step: dict[str, Any]) -> None:
    """A restore the previous run started completed its swap but the run was killed before it dropped the empty
    database the swap kept (a new host's): drop it now, when it still holds nothing but our catalog."""
    kept = database_step.get("kept_database")
    if not database_step.get("from_child") or not kept or kept == ctx.target.dbname:
        return
    with maintenance_connection(ctx.target, ctx.redact) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (kept,)).fetchone()
    if exists and _holds_only_our_tables(ctx, kept):
        with maintenance_connection(ctx.target, ctx.redact) as admin:
            drop_database(admin, str(kept))
        database_step["dropped_empty"] = kept


def _holds_only_our_tables(ctx: OperationContext, dbname: str | None = None) -> bool:
    with connect(ctx.target.with_dbname(dbname or ctx.target.dbname), ctx.redact) as conn:
        names = {str(r[0]) for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")}
    return names <= PLUGIN_TABLES


def run_recover(ctx: OperationContext, run_id: uuid.UUID, request: RecoverRequest, *, catalog: dict[str, Any],
                hooks: Hooks, previous: BackupRun | None = None,
                observer: Observer | None = None) -> dict[str, Any] | None:
    """Carry out a queued recover run; None when another process claimed it. `catalog` is the catalog step the
    service did before the run could be recorded; `previous`, the run this one continues."""
    if not ctx.recorder.claim(run_id):
        return None
    try:
        log = StepLog(ctx, run_id)
        if previous is not None:
            carried_over(ctx, previous, log)
            ctx.recorder.progress(run_id, "recover_resuming", details={RESUMES: str(previous.id), KEY: log.done})
        if "catalog" not in log.done:
            log.done["catalog"] = catalog
            ctx.recorder.progress(run_id, "recover_catalog_done", details={KEY: log.done})
        folder = Path(request.config_to or ".")
        if previous is not None:  # the same folder as the run it continues
            folder = Path(str((previous.details.get("request") or {}).get("config_to") or folder))
            _drop_kept_if_empty(ctx, log.done.get("database") or {})
        recovery = _Recovery(ctx, run_id, request, Targets(folder=folder), hooks, observer, log)
        recovery._tell(StepReport("catalog", float(catalog.get("seconds") or 0.0), _lines("catalog", catalog)))
        summary = recovery.run()
        ctx.recorder.succeed(run_id, location=None, size=None, sha256=None,
                             details={KEY: log.done, CHILDREN: log.children, "recover": summary})
        return summary
    except BaseException as exc:
        record_failure(ctx, run_id, exc)
        raise


def recover_into(ctx: OperationContext, run_id: uuid.UUID, *, database: str, folder: Path,
                 volumes: dict[str, str], observer: Observer | None = None) -> dict[str, Any]:
    """The host drill's recover: from the off-site copies into a new database, a new folder and new volumes,
    recorded on the drill's own run (run_id), which the caller claimed and finishes. The catalog step reads
    every manifest in the bucket, as a new host's `catalog rebuild --from s3` would."""
    from openwatch_backup.operations.rebuild import list_manifests
    from openwatch_backup.storage.factory import required_offsite

    offsite = required_offsite(ctx.offsite)
    log = StepLog(ctx, run_id)
    started = log.start("catalog")
    keys = list_manifests(offsite, CopyStorage.S3)
    log.record("catalog", started, {"manifests": len(keys),
                                    "lines": [f"{len(keys)} manifest(s) in {offsite.config.location}"]})
    request = RecoverRequest(source="s3", skip_config=False, volumes=bool(volumes))
    targets = Targets(folder=folder, database=database, volumes=volumes, copy=CopyStorage.S3)
    summary = _Recovery(ctx, run_id, request, targets, None, observer, log).run()
    return {**summary, KEY: log.done}
