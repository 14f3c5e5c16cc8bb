"""The time-limit watchdog: which live trials overran ``training.time_limit_s`` (hung workers)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from nas.runner._trials import LiveTrial

__all__ = ["Watchdog"]


class Watchdog:
    """Finds the live trials past their time limit; checked at most once a second."""

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self._last = 0.0

    def overdue(self, live: Mapping[str, LiveTrial]) -> set[str]:
        """Live trials past ``time_limit_s`` plus a grace (max(5 s, half the limit)) since the
        worker started them (max(60 s, the limit) before a first result, which must also cover
        the worker's start-up): marked FAILED with a time-limit error; the caller stops them.
        Checked at most once a second."""
        limit = self.limit_s
        now = time.monotonic()
        if limit is None or now - self._last < 1.0:
            return set()
        self._last = now
        out = set()
        for key, t in live.items():
            grace = max(5.0, 0.5 * limit) if t.reported else max(60.0, limit)
            if t.error is None and now - t.started > limit + grace:
                t.error = (f"time limit of {limit:g} s exceeded (no result for "
                           f"{now - t.started:.0f} s; stopped by the driver)")
                out.add(key)
        return out
