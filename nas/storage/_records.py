"""Plain, frozen records that the storage returns: no database session behind them."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nas.interfaces import Direction, ForecastSummary, TrialState

__all__ = [
    "AuditRecord",
    "DecisionRecord",
    "EvaluationRecord",
    "ForecastRecord",
    "StepRecord",
    "StudyRecord",
    "TrialImport",
    "TrialRecord",
    "directions_of",
]

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
    #: columns whose stored value could not be read (corrupted by another writer): shown as
    #: "unreadable"; the field then holds its empty value
    unreadable: tuple[str, ...] = ()

    @property
    def direction(self) -> str:
        """Direction of the primary objective: ``"maximize"`` or ``"minimize"``."""
        return directions_of(self.objectives)[0]

    @property
    def directions(self) -> list[str]:
        return directions_of(self.objectives)


def directions_of(objectives: Any) -> list[str]:
    """The directions of a study's ``objectives`` column (``maximize`` where it has none)."""
    got = objectives if isinstance(objectives, list) else []
    default = Direction.MAXIMIZE.value
    return [str(o.get("direction", default)) if isinstance(o, dict) else default
            for o in got] or [default]

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
    #: columns whose stored value could not be read (as :attr:`StudyRecord.unreadable`)
    unreadable: tuple[str, ...] = ()
    #: where the worker trained it: ``cpu`` or ``cuda:0 <GPU name>``, and its torch threads
    #: (None for imported curves and trials of databases before revision 0006)
    device: str | None = None
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ForecastRecord:
    """One row of ``forecasts``: after ``step``, the predictor's view of the value at its
    horizon (``summary``: predictor, horizon, mean, quantiles and P(improve), in raw objective
    units; missing values are None)."""

    trial_id: int
    step: int
    summary: ForecastSummary
    created: _dt.datetime | None = None


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


@dataclass(frozen=True)
class EvaluationRecord:
    """One row of ``evaluations``: the study's final evaluation (``nas evaluate``).  ``results``
    has one entry per retrained configuration, best first: ``{rank, number, val_value, metric,
    mean, std, runs: [{seed, <metrics>}], dir}``."""

    study_id: int
    metric: str
    seeds: int
    top: int
    results: list[dict[str, Any]]
    wall_s: float | None
    created: _dt.datetime

    def to_dict(self, study: str) -> dict[str, Any]:
        """The result document of :func:`nas.evaluate.evaluate_study` (``study``: its name)."""
        return {"study": study, "metric": self.metric, "seeds": self.seeds, "top": self.top,
                "results": self.results, "wall_s": self.wall_s}


@dataclass(frozen=True)
class TrialImport:
    """One trial of a bulk import (:meth:`nas.storage.Storage.import_study`): ``curve`` holds
    the values of steps 1, 2, ... (any iterable of floats, a NumPy row too; NaN/inf/None are
    stored as missing); ``decisions`` the keyword arguments of ``Storage.add_decision`` with
    ``step``."""

    number: int
    state: str = TrialState.COMPLETE
    config: Mapping[str, Any] = field(default_factory=dict)
    features: Mapping[str, Any] | None = None
    group: str | None = None
    value: float | None = None
    epochs: int | None = None
    curve: Iterable[float | None] = ()
    decisions: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class AuditRecord:
    """One ``AUDIT`` decision (the policy would have stopped the trial; the stop audit let it
    run on) with what its verdict needs: the trial's ``state`` and final ``value``, the
    decision's ``threshold`` (None where missing or unreadable), the study's ``direction`` and
    the decision's ``reason`` (which records the audit's inclusion probability)."""

    number: int
    step: int
    state: str
    value: float | None
    threshold: float | None
    direction: str
    reason: str | None = None


@dataclass(frozen=True)
class StepRecord:
    """One result of a trial as it travels from the engine to the database
    (:meth:`nas.storage.Storage.record_steps`): the curve point after ``step`` (``value`` and
    ``wall_time`` None, NaN or inf: stored as missing), the predictor's ``forecast`` and the
    policy's ``decision`` (``policy``, ``action``, ``reason`` and ``threshold``: the raw
    value its forecast had to clear) when there are any."""

    trial_id: int
    step: int
    value: float | None
    wall_time: float | None = None
    forecast: ForecastSummary | None = None
    decision: Mapping[str, Any] | None = None
