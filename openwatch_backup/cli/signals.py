"""SIGTERM ends a CLI run exactly like Ctrl-C: the run is recorded `cancelled`, its child processes are killed,
its `.partial` file and scratch databases removed, and the CLI exits 130 (README's exit statuses).

`timeout`, `docker stop` and systemd send SIGTERM, not SIGINT. Both handlers are installed explicitly: a
command started in the background by a non-interactive shell inherits SIGINT *ignored*, and Python keeps an
ignored SIGINT ignored, so `kill -INT` would otherwise do nothing at all.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from openwatch_backup.errors import RunCancelled

_WHY: dict[int, str] = {signal.SIGINT: "SIGINT (Ctrl-C)",
                        signal.SIGTERM: "SIGTERM (kill, timeout, docker stop or systemd)"}


def _cancel(signum: int, _frame: FrameType | None) -> None:
    # The first signal cancels. The cleanup it starts (kill the child, remove the partial file, record the run)
    # must not be cut short by the next SIGTERM (systemd repeats none; it sends SIGKILL after its timeout);
    # a second Ctrl-C still interrupts, for a person who really wants out.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raise RunCancelled(f"cancelled by {_WHY.get(signum, signal.Signals(signum).name)}")


def install() -> None:
    """Cancel the running command on SIGINT and SIGTERM (main thread only, as Python requires)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _cancel)


@contextmanager
def stop_on_signal() -> Iterator[None]:
    """For a command that runs until stopped (the demo): SIGINT and SIGTERM both raise KeyboardInterrupt, once.
    Later signals are ignored, so the stop they started (worker, beat, API, servers) runs to its end."""
    def stop(signum: int, _frame: FrameType | None) -> None:
        for other in (signal.SIGINT, signal.SIGTERM):
            signal.signal(other, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
