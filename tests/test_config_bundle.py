"""Config bundles against the real openssl CLI and real files (issue 11): the guide's command opens ours, ours open
the guide's, and each kind of damage fails verify (and restore) with its own reason, exit status and line."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import psycopg

from openwatch_backup.secrets.integrity import Sealer
from openwatch_backup.secrets.openssl_enc import decrypt_stream
from tests.support.config_bundle import Bench, bench, flip_byte, openssl_decrypt_untar, restored_inputs

__all__ = ["bench"]  # the fixture


def test_the_guides_openssl_and_tar_give_back_every_file_mode_and_link(bench: Bench, tmp_path: Path) -> None:
    run = bench.backup()

    out = tmp_path / "opened"
    openssl_decrypt_untar(bench.artifact(run), bench.passfile, out)

    assert restored_inputs(out, bench) == bench.expected_files()
    env = (out / "openwatch.env").read_text()
    assert f"OPENWATCH_MASTER_KEY={bench.master_key}\n" in env.splitlines(keepends=True)
    assert (out / bench.env_file.relative_to("/")).read_text().startswith(f"OPENWATCH_MASTER_KEY={bench.master_key}")
    assert run["details"]["members"] == len(bench.expected_files()) + 1  # + openwatch.env


def test_verify_and_deep_verify_of_a_config_run_read_every_member(bench: Bench) -> None:
    run = bench.backup()

    quick = bench.ok("verify", run["id"], "--json")
    deep = bench.ok("verify", run["id"], "--deep", "--json")

    for verify, is_deep in ((quick, False), (deep, True)):
        result = verify["details"]["verify"]
        assert (verify["status"], verify["parent_id"], result["result"], result["deep"]) == (
            "succeeded", run["id"], "passed", is_deep)
        checks = result["checks"]
        assert (checks["members"], checks["key_id"], checks["key_id_matches"]) == (
            run["details"]["members"], run["details"]["key_id"], True)
        assert checks["read_seconds"] >= 0
        assert "scratch_database" not in checks  # no database to restore a bundle into


def _openssl_bundle(bench: Bench, tmp_path: Path) -> tuple[bytes, int]:
    """`tar czf - ... | openssl enc -aes-256-cbc -salt -pbkdf2 -pass file:P -out F`, as an admin would by hand."""
    plain = tmp_path / "by-hand.tar.gz"
    relative = [str(p.relative_to("/")) for p in (bench.keys, bench.certs)]
    subprocess.run(["tar", "czf", str(plain), "-C", "/", *relative], check=True, timeout=60)
    members = len(subprocess.run(["tar", "tzf", str(plain)], check=True, capture_output=True, text=True,
                                 timeout=60).stdout.splitlines())
    encrypted = tmp_path / "by-hand.tar.gz.enc"
    subprocess.run(f"tar czf - -C / {' '.join(relative)} | openssl enc -aes-256-cbc -salt -pbkdf2 "
                   f"-pass 'file:{bench.passfile}' -out '{encrypted}'", shell=True, check=True, timeout=60)
    return encrypted.read_bytes(), members


def _put_in_place(bench: Bench, run: dict[str, Any], data: bytes, members: int) -> None:
    """Our artifact replaced by `data`; manifest and catalog describe it (sealed with our passphrase)."""
    sealer = Sealer(bench.passphrase.encode())
    sealer.update(data)
    sealed = sealer.finish()
    bench.artifact(run).write_bytes(data)
    manifest = json.loads(bench.manifest(run).read_bytes())
    manifest.update(size_bytes=sealed.size, sha256=sealed.sha256)
    manifest["config"].update(encryption=sealed.as_manifest(), members=members)
    raw = json.dumps(manifest, indent=2).encode()
    bench.manifest(run).write_bytes(raw)

    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute("UPDATE backup_runs SET size_bytes = %s, sha256 = %s, details = details || jsonb_build_object("
                     "'manifest_sha256', %s::text, 'members', %s::int) WHERE id = %s",
                     (sealed.size, sealed.sha256, hashlib.sha256(raw).hexdigest(), members, run["id"]))
        conn.execute("UPDATE backup_copies SET size_bytes = %s, sha256 = %s WHERE run_id = %s",
                     (sealed.size, sealed.sha256, run["id"]))


def test_a_bundle_made_by_the_openssl_cli_verifies_lists_and_restores(bench: Bench, tmp_path: Path) -> None:
    run = bench.backup()
    data, members = _openssl_bundle(bench, tmp_path)
    _put_in_place(bench, run, data, members)

    verify = bench.ok("verify", run["id"], "--json")
    listed = bench.ok("restore", run["id"], "--list", "--json")
    restored = bench.ok("restore", run["id"], "--to", str(tmp_path / "restored"), "--json")

    assert verify["details"]["verify"]["checks"]["members"] == members
    assert sorted(name.rstrip("/") for name in listed) == sorted(name for name in bench.expected_files()
                                                                 if not name.endswith("openwatch.env.file"))
    assert restored["details"]["members"] == members
    expected = {k: v for k, v in bench.expected_files().items() if not k.endswith("openwatch.env.file")}
    assert restored_inputs(tmp_path / "restored", bench) == expected


def _damaged(bench: Bench, tmp_path: Path, how: str) -> tuple[dict[str, Any], dict[str, str]]:
    run = bench.backup()
    artifact = bench.artifact(run)
    env: dict[str, str] = {}
    if how == "passphrase":
        other = tmp_path / "other-passphrase"
        other.write_text("not the passphrase this bundle was made with\n")
        other.chmod(0o600)
        env = {"OPENWATCH_BACKUP_PASSPHRASE_FILE": str(other)}
    elif how == "checksum":
        flip_byte(artifact, artifact.stat().st_size // 2)
    else:
        artifact.write_bytes(artifact.read_bytes()[:-16])
    return run, env


EXPECTED = {
    "passphrase": "(its key id differs): set OPENWATCH_BACKUP_PASSPHRASE_FILE to the passphrase this bundle was "
                  "made with",
    "checksum": "'s sha256 differs from its manifest: the file is damaged; use another copy",
    "unreadable": " were written: it was cut short; use another copy",
}


def test_wrong_passphrase_flipped_byte_and_truncation_each_have_their_reason(bench: Bench, tmp_path: Path) -> None:
    for how, expected in EXPECTED.items():
        (tmp_path / f"case-{how}").mkdir()
        run, env = _damaged(bench, tmp_path / f"case-{how}", how)
        quick = bench.cli("verify", run["id"], env=env)
        deep = bench.cli("verify", run["id"], "--deep", "--json", env=env)
        dest = tmp_path / f"case-{how}" / "restored"
        restore = bench.cli("restore", run["id"], "--to", str(dest), env=env)
        listing = bench.cli("restore", run["id"], "--list", env=env)
        reason = how
        case = tmp_path / f"case-{how}"
        assert (quick.returncode, quick.stdout) == (9, ""), (how, quick.stderr)
        assert quick.stderr.startswith(f"error: verify failed ({reason}): "), quick.stderr
        assert expected in quick.stderr, quick.stderr
        assert quick.stderr.count("\n") == 1
        assert json.loads(deep.stdout)["error_code"] == f"verify_{reason}"
        assert (restore.returncode, restore.stdout, listing.returncode, listing.stdout) == (10, "", 10, "")
        assert f"failed verification ({reason})" in restore.stderr, restore.stderr
        assert "nothing was restored" in restore.stderr
        assert sorted(p.name for p in case.iterdir()) == (["other-passphrase"] if how == "passphrase" else [])


def test_a_link_out_of_the_listed_paths_is_stored_as_a_link_not_followed(bench: Bench, tmp_path: Path) -> None:
    run = bench.backup()
    plain = io.BytesIO()
    with bench.artifact(run).open("rb") as src:
        decrypt_stream(src, plain, bench.passphrase.encode())

    with tarfile.open(fileobj=io.BytesIO(plain.getvalue()), mode="r:gz") as tar:
        link = tar.getmember(str(bench.keys / "passwd").lstrip("/"))
        contents = b"".join(f.read() for m in tar.getmembers() if m.isreg() and (f := tar.extractfile(m)))
    restored = bench.ok("restore", run["id"], "--to", str(tmp_path / "r"), "--json")

    assert (link.issym(), link.linkname, link.size) == (True, "/etc/passwd", 0)
    assert Path("/etc/passwd").read_bytes() not in contents
    assert b"root:x:0:0" not in contents
    assert restored["status"] == "succeeded"
    back = tmp_path / "r" / str(bench.keys / "passwd").lstrip("/")
    assert (back.is_symlink(), str(back.readlink())) == (True, "/etc/passwd")


def test_a_missing_config_path_is_one_line_naming_it_and_leaves_no_artifact(bench: Bench, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-certs"

    done = bench.cli("backup", "--kind", "config", env={"OPENWATCH_BACKUP_CONFIG_PATHS": f"{bench.keys},{missing}"})

    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1), done.stderr
    assert done.stderr.startswith("error: ")
    assert str(missing) in done.stderr
    folder = bench.backup_dir / "config"
    assert not folder.exists() or list(folder.iterdir()) == []
    [run] = bench.ok("list", "--kind", "config", "--json")
    assert (run["status"], run["error_code"], run["artifact_location"]) == ("failed", "config", None)
