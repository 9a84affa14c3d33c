"""without_foreign_keys: the pg_restore list for a tables backup's new database skips foreign keys only."""

from __future__ import annotations

from openwatch_backup.operations.scratch_list import without_foreign_keys

LISTING = """;
; Archive created at 2026-11-30 16:00:00 UTC
;
215; 1259 16390 TABLE public hosts postgres
3773; 0 16390 TABLE DATA public hosts postgres
3600; 2606 16400 CONSTRAINT public hosts hosts_pkey postgres
3601; 1259 16401 INDEX public idx_hosts_os_family postgres
3610; 2606 16410 FK CONSTRAINT public hosts hosts_created_by_fkey postgres
3611; 2606 16411 FK CONSTRAINT public "Mixed Case Table" "Mixed Case Table_awkward_id_fkey" postgres
;3612; 2606 16412 FK CONSTRAINT public scans scans_host_id_fkey postgres
"""


def test_only_foreign_keys_are_commented_out_in_order() -> None:
    chosen = without_foreign_keys(LISTING).splitlines()
    original = LISTING.splitlines()

    assert len(chosen) == len(original)
    changed = [(a, b) for a, b in zip(original, chosen, strict=True) if a != b]
    assert changed == [(line, ";" + line) for line in original if " FK CONSTRAINT " in line
                       and not line.startswith(";")]
    assert len(changed) == 2
    assert [line for line in chosen if not line.startswith(";")] == original[3:7]
