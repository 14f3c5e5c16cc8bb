"""Run statistics: the engine's counters (:class:`Tally`) and their frozen snapshot (:class:`RunStats`).

The engine updates one :class:`Tally` on its own thread; :meth:`Engine.stats
<nas.runner._engine.Engine.stats>` copies it into a :class:`RunStats`, which is all that the
progress view and the run summary read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.interfaces import COUNTED_STATES, TrialState, better

__all__ = ["RunStats", "Tally"]


class Tally:
    """The engine's running counters: trials by state, epochs, the best trial, nodes, forecasts
    and the timings of its hooks."""

    def __init__(self, direction: str) -> None:
        self.direction = direction
        #: every trial of the study by state (also those of earlier runs)
        self.counts: dict[str, int] = {}
        self.epochs_run = 0
        self.best: tuple[int, float, dict[str, Any]] | None = None
        self.nodes: dict[str, int] = {}  # trials started per Ray node
        self.forecasts = 0  # forecasts queued for the database in this run
        self.hook_ms: list[float] = []
        self.hook_ms_refit: list[float] = []  # the subset measured while a refit was running
        #: driver time spent in the engine's own calls (suggest, every result, trial end)
        self.busy_s = 0.0

    def count(self, state: str, n: int = 1) -> None:
        self.counts[state] = self.counts.get(state, 0) + n

    @property
    def done(self) -> int:
        """Trials that count against the budget."""
        return sum(self.counts.get(s, 0) for s in COUNTED_STATES)

    def update_best(self, number: int, value: float, config: dict[str, Any]) -> None:
        """Keep trial ``number`` as the best when ``value`` beats the best so far."""
        if better(value, None if self.best is None else self.best[1], self.direction):
            self.best = (number, value, config)


def _percentile(xs: tuple[float, ...], q: float) -> float | None:
    return float(np.percentile(np.asarray(xs), q)) if xs else None


@dataclass(frozen=True)
class RunStats:
    """A snapshot of one study run's statistics (:meth:`Engine.stats
    <nas.runner._engine.Engine.stats>`); ``counts`` covers every trial of the study by state,
    also those of earlier runs, ``budget`` is what this run may start."""

    study: str
    budget: int
    launched: int
    horizon: int
    counts: Mapping[str, int]
    epochs_run: int
    best_number: int | None = None
    best_value: float | None = None
    nodes: Mapping[str, int] = field(default_factory=dict)
    forecasts: int = 0
    refits: int = 0
    refitting: bool = False
    hook_ms: tuple[float, ...] = ()
    hook_ms_refit: tuple[float, ...] = ()
    busy_s: float = 0.0
    write_batches: int = 0
    writes_failed: int = 0
    writer_cpu_s: float = 0.0

    @property
    def done(self) -> int:
        """Trials that count against the budget (COMPLETE, STOPPED, FAILED)."""
        return sum(self.counts.get(s, 0) for s in COUNTED_STATES)

    @property
    def running(self) -> int:
        return self.counts.get(TrialState.RUNNING, 0)

    @property
    def hook_ms_p50(self) -> float | None:
        return _percentile(self.hook_ms, 50)

    @property
    def hook_ms_p99(self) -> float | None:
        return _percentile(self.hook_ms, 99)
