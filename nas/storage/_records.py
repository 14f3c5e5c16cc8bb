"""Plain, frozen records that the storage returns: no database session behind them."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "FINISHED_STATES",
    "STATES",
    "DecisionRecord",
    "ForecastRecord",
    "StudyRecord",
    "TrialRecord",
]

#: Trial states, upper case as stored.  STOPPED = stopped early by the policy (Optuna: PRUNED).
STATES = ("RUNNING", "COMPLETE", "STOPPED", "FAILED", "INTERRUPTED")
FINISHED_STATES = ("COMPLETE", "STOPPED", "FAILED", "INTERRUPTED")


@dataclass(frozen=True)
class StudyRecord:
    """One row of ``studies``.  ``objectives`` is ``[{"name": ..., "direction": ...}, ...]``."""

    id: int
    name: str
    space: str
    task: str
    objectives: list[dict[str, Any]]
    config: dict[str, Any]
    created: _dt.datetime
    status: str

    @property
    def direction(self) -> str:
        """Direction of the primary objective: ``"maximize"`` or ``"minimize"``."""
        if self.objectives:
            return str(self.objectives[0].get("direction", "maximize"))
        return "maximize"

    @property
    def directions(self) -> list[str]:
        return [str(o.get("direction", "maximize")) for o in self.objectives] or ["maximize"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrialRecord:
    """One row of ``trials`` (``group`` is the column ``group_name``), plus its objective values
    and, when asked for, its curve: the values of steps 1, 2, ... in order (None = missing)."""

    id: int
    study_id: int
    number: int
    state: str
    config: dict[str, Any]
    distributions: dict[str, Any]
    features: dict[str, Any] | None
    group: str | None
    value: float | None
    values: list[float | None] | None
    epochs: int | None
    error: str | None
    node: str | None
    started: _dt.datetime | None
    finished: _dt.datetime | None
    curve: list[float | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ForecastRecord:
    """One row of ``forecasts``: after ``step``, the predictor's view of the value at ``horizon``."""

    trial_id: int
    step: int
    predictor: str
    horizon: int
    mean: float | None
    q05: float | None
    q50: float | None
    q95: float | None
    p_improve: float | None
    created: _dt.datetime


@dataclass(frozen=True)
class DecisionRecord:
    """One row of ``decisions``: the policy's CONTINUE/STOP/AUDIT after ``step``, its reason,
    and the raw value the forecast had to clear (None where the policy has none)."""

    trial_id: int
    step: int
    policy: str
    action: str
    reason: str
    created: _dt.datetime
    threshold: float | None = None
