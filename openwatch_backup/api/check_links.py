"""The checklist's "run this command" hints as actions the page can offer (issue 14 item 2).

Each item's `fix` stays the CLI's text; `actions` lists the backticked `openwatch-backup <verb> [RUN]` commands in
it, with RUN resolved to the full run id the way the CLI resolves "the id or its first characters"
(RunRecorder.get), so the page can link to the run's details or start a verify without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from openwatch_backup.api.schemas import CheckActionOut, CheckItemOut
from openwatch_backup.catalog.recorder import RunRecorder
from openwatch_backup.errors import RunNotFound
from openwatch_backup.operations.checklist import CheckItem

COMMAND = re.compile(r"`(openwatch-backup\s+([a-z][a-z-]*)([^`]*))`")
RUN_REF = re.compile(r"^[0-9a-f][0-9a-f-]{3,35}$")  # an id or its first characters; `RUN` is a placeholder


def _run_ref(arguments: str) -> str | None:
    """The command's first positional argument when it looks like a run id (options and their values skipped)."""
    words = arguments.split()
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            index += 1 if "=" in word or word in ("--deep", "--apply", "--offsite", "--json") else 2
            continue
        return word.lower() if RUN_REF.match(word.lower()) else None
    return None


def parse_actions(fix: str, resolve: dict[str, str | None], recorder: RunRecorder) -> list[CheckActionOut]:
    """The commands in one fix text. `resolve` caches prefix -> full id (None: unknown or ambiguous) per answer."""
    actions = []
    for match in COMMAND.finditer(fix):
        ref = _run_ref(match.group(3))
        if ref is not None and ref not in resolve:
            try:
                resolve[ref] = str(recorder.get(ref).id)
            except RunNotFound:  # pruned meanwhile, or a prefix that several runs share
                resolve[ref] = None
        actions.append(CheckActionOut(command=" ".join(match.group(1).split()), verb=match.group(2),
                                      run_id=resolve.get(ref) if ref else None))
    return actions


def checklist_out(recorder: RunRecorder, items: Iterable[CheckItem]) -> list[CheckItemOut]:
    """GET status's checklist: each item as the CLI says it, plus the actions its fix names."""
    resolve: dict[str, str | None] = {}
    return [CheckItemOut(**item.as_dict(), actions=parse_actions(item.fix, resolve, recorder)) for item in items]
