"""Stop signals of a run: SIGINT and SIGTERM raise :class:`Terminated` in the driver's main thread.

Both handlers are installed explicitly (a driver started in the background by a script would
otherwise ignore SIGINT) and again after Ray starts (whose own SIGTERM handler would abort the
driver); the runner then marks the live trials INTERRUPTED.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["Terminated", "install_stop_handlers", "last_stop_signal", "received_stop_signal",
           "restore_handlers"]


class Terminated(KeyboardInterrupt):
    """The run was stopped by a signal (``signum``: SIGINT or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: The last stop signal this process received during a run (None: none).  Kept apart from
#: the exception because Tune or Ray may re-raise a plain KeyboardInterrupt on its way out.
last_stop_signal: int | None = None


def received_stop_signal() -> int | None:
    """The last stop signal this process received during a run (None: none)."""
    return last_stop_signal


def _raise_terminated(signum: int, frame: Any) -> None:
    global last_stop_signal
    last_stop_signal = signum
    raise Terminated(signum)


def install_stop_handlers() -> dict[int, Any]:
    """SIGINT and SIGTERM raise :class:`Terminated` in the main thread (where Tune's loop and
    the engine run; the runner then marks live trials INTERRUPTED).  Returns the previous
    handlers; nothing is done outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    old: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, _raise_terminated)
    return old


def restore_handlers(old: Mapping[int, Any]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
