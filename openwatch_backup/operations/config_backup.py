"""The config backup: .env, TLS certificates and SSH keys as a tar.gz, encrypted as the guide's openssl does it.

One pass: the tar.gz streams through the openssl-format encryptor (secrets/openssl_enc.py) and the sealer that
measures the ciphertext (size, sha256, HMAC: secrets/integrity.py) into `config/config_YYYYMMDD_HHMMSS.tar.gz.enc`
(a `.partial` until committed, 0600). No plaintext byte touches the disk. The manifest beside it records the key
id, the ciphertext's integrity, the certificates' subjects and expiry dates and a keyed digest of the inputs;
never the passphrase, never a file's content.

`openssl enc -d -aes-256-cbc -salt -pbkdf2 -in FILE -pass file:PASSFILE | tar xz` opens the file on any host.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from openwatch_backup import __version__
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import ConfigPayload, Manifest
from openwatch_backup.core.naming import CONFIG_EXTENSION, CONFIG_PREFIX, artifact_name, manifest_name
from openwatch_backup.operations.backup_record import open_new_artifact, record_backup, undo_backup
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.secrets import passphrase as passphrases
from openwatch_backup.secrets.bundle_digest import keyed_digest
from openwatch_backup.secrets.bundle_inputs import check_paths, inputs_digest
from openwatch_backup.secrets.bundle_tar import write_bundle
from openwatch_backup.secrets.certificates import describe_certificates
from openwatch_backup.secrets.env_snapshot import openwatch_env
from openwatch_backup.secrets.integrity import KDF_ITERATIONS, SealingWriter
from openwatch_backup.storage.base import ArtifactWriter

CIPHER = ("openssl enc -d -aes-256-cbc -salt -pbkdf2 -in FILE -pass file:PASSFILE | tar xz "
          "(AES-256-CBC, PBKDF2-HMAC-SHA256, 10,000 iterations; integrity: HMAC-SHA256 under PBKDF2 "
          f"{KDF_ITERATIONS:,} iterations)")


def bundle_inputs(ctx: OperationContext) -> tuple[list[Path], bytes | None]:
    """The paths to pack (each checked: a missing one is one line naming it) and the settings snapshot."""
    paths = check_paths(ctx.settings.config_inputs())
    env = openwatch_env(os.environ) if ctx.settings.config_env_snapshot else None
    return paths, env


def inputs_fingerprint(ctx: OperationContext, passphrase: bytes) -> str:
    """The keyed digest of what a bundle taken now would hold (the dispatcher's "did it change?")."""
    paths, env = bundle_inputs(ctx)
    return keyed_digest(passphrase, inputs_digest(paths, [env] if env is not None else []))


def run_config_backup(ctx: OperationContext, run_id: uuid.UUID, trigger: str = "cli") -> Manifest | None:
    """Carry out a queued config backup run. None when another delivery already claimed it."""
    if not ctx.recorder.claim(run_id):
        return None
    writer: ArtifactWriter | None = None
    artifact_key: str | None = None
    try:
        ctx.recorder.progress(run_id, "preflight")
        passphrase = passphrases.required(ctx.settings)
        ctx.redact.add(passphrase.value.decode("utf-8", "surrogateescape"))
        paths, env = bundle_inputs(ctx)
        if env is not None:
            for line in env.decode("utf-8", "surrogateescape").splitlines()[1:]:
                ctx.redact.add(line.partition("=")[2].strip("'"))  # the values are secrets from now on
        digest = keyed_digest(passphrase.value, inputs_digest(paths, [env] if env is not None else []))
        certificates = describe_certificates(paths)
        started = datetime.now(UTC)
        name, writer = open_new_artifact(
            ctx, lambda n: artifact_name(BackupKind.CONFIG, CONFIG_EXTENSION, started, n), "config bundles")
        artifact_key = writer.key
        ctx.recorder.progress(run_id, "packing", details={"artifact_in_progress": artifact_key})
        sealing = SealingWriter(writer.write, passphrase.value)
        members = write_bundle(paths, sealing.write, env)
        integrity = sealing.finish()
        kill_point("config_packed")
        ctx.recorder.progress(run_id, "committing")
        writer.commit()
        writer = None
        payload = ConfigPayload(cipher=CIPHER, encryption=integrity.as_manifest(), paths=[str(p) for p in paths],
                                members=len(members), env_snapshot=env is not None, inputs_digest=digest,
                                certificates=certificates)
        manifest = Manifest(
            run_id=str(run_id), kind=BackupKind.CONFIG.value, format="tar.gz.enc", compression="gzip",
            wrapper=None, trigger=trigger, created_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
            database=ctx.target.dbname, server_version="", pg_dump_version="", openwatch_alembic_head=None,
            artifact=name, size_bytes=integrity.size, sha256=integrity.sha256, row_counts={}, canary_nonce=None,
            canary_included=False, tables=[], excluded_table_data=[], package_version=__version__, config=payload)
        ctx.recorder.progress(run_id, "manifest")
        details = {"artifact": name, "format": manifest.format, "wrapper": None, "key_id": integrity.key_id,
                   "inputs_digest": digest, "members": len(members), "paths": payload.paths,
                   "env_snapshot": payload.env_snapshot, "certificates": certificates,
                   "passphrase_source": passphrase.source, "warnings": list(passphrase.warnings),
                   "package_version": __version__,
                   "request": {"kind": BackupKind.CONFIG.value, "compression": Compression.NONE.value, "tables": []}}
        record_backup(ctx, run_id, artifact_key=artifact_key, manifest_key=f"{CONFIG_PREFIX}/{manifest_name(name)}",
                      manifest=manifest, details=details, bytes_done=integrity.size,
                      after_manifest=lambda: kill_point("config_manifest_written"))
        return manifest
    except BaseException as exc:
        undo_backup(ctx, run_id, exc, writer, artifact_key)
        raise
