"""Rebuilding a study's history from the database: the Optuna study, the mirror and the counters a
restarted driver resumes from."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.interfaces import COUNTED_STATES, TaskSpec, TrialState
from nas.policies import StudyCurves
from nas.runner._stats import Tally

if TYPE_CHECKING:
    import optuna

    from nas.storage import Storage

logger = logging.getLogger(__name__)

__all__ = ["History", "rebuild"]


@dataclass
class History:
    """What the stored trials leave to the next run: the next trial number, and the
    INTERRUPTED trials to run again as ``(number, params)`` (enqueued in Optuna, in order)."""

    next_number: int = 0
    reruns: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def rebuild(storage: Storage, study_id: int, study: optuna.Study, spec: TaskSpec,
            n_objectives: int, mirror: StudyCurves, tally: Tally) -> History:
    """Optuna history, mirror and tally from the stored trials; INTERRUPTED ones are re-queued."""
    import optuna
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState as OptunaState

    records = storage.trials(study_id, with_curves=True)
    mirror.audited = {n: step for n, (step, _) in storage.audits(study_id).items()}
    rerun = {r.distributions.get("rerun_of") for r in records}
    history = History(next_number=1 + max((r.number for r in records), default=-1))
    for r in records:
        tally.count(r.state)
        payload = r.distributions or {}
        params = payload.get("params", {})
        try:
            dists = {k: json_to_distribution(v)
                     for k, v in payload.get("distributions", {}).items()}
        except Exception as exc:  # noqa: BLE001  (not written by this runner: imported curves)
            logger.debug("trial %d has no Optuna distributions (%s)", r.number, exc)
            continue
        curve = [v for v in (r.curve or []) if v is not None]
        if r.state == TrialState.INTERRUPTED:
            if r.number not in rerun:
                history.reruns.append((r.number, params))
            continue
        if r.state not in COUNTED_STATES:
            continue
        tally.epochs_run += len(curve)
        norm = [spec.normalise(v) for v in curve]
        if norm and all(math.isfinite(x) for x in norm):
            mirror.curves[r.number] = norm
            if r.features:  # as the engine orders them: by name
                mirror.features[r.number] = np.asarray(
                    [float(r.features[k]) for k in sorted(r.features)], dtype=np.float64)
        to_optuna: dict[str, OptunaState] = {TrialState.COMPLETE: OptunaState.COMPLETE,
                                             TrialState.STOPPED: OptunaState.PRUNED,
                                             TrialState.FAILED: OptunaState.FAIL}
        state = to_optuna[r.state]
        values: list[float] | None = None
        if r.state == TrialState.COMPLETE:
            stored = r.values or [r.value]
            values = [v for v in stored if v is not None]
            if len(values) != len(stored) or len(values) != n_objectives:
                continue
            if norm:
                mirror.complete[r.number] = norm[-1]
            tally.update_best(r.number, float(values[0]), r.config)
        inter = {i + 1: v for i, v in enumerate(curve)} if n_objectives == 1 else {}
        try:
            study.add_trial(optuna.trial.create_trial(
                state=state, params=params, distributions=dists, values=values,
                intermediate_values=inter))
        except ValueError as exc:
            logger.warning("trial %d not added to the sampler's history: %s", r.number, exc)
    for _, params in history.reruns:
        study.enqueue_trial(params, skip_if_exists=False)
    return history
