"""A Ray Tune scheduler that wraps a nas stopping policy (for users of plain Ray Tune).

Usage::

    from ray import tune
    from nas.integrations.tune import PolicyScheduler

    tuner = tune.Tuner(train_fn, param_space=...,
                       tune_config=tune.TuneConfig(
                           scheduler=PolicyScheduler("asha", metric="acc", mode="max",
                                                     horizon=20)))

Tune calls :meth:`PolicyScheduler.on_trial_result` on the driver after every result (results are
not buffered: ``_supports_buffered_results = False``); the policy sees the trial's ``metric``
values in order, scaled to [0, 1] (higher better) with ``value_range`` and ``mode``.  A trial
that ends normally counts as complete with its last value.  This module and ``nas/runner*`` are
the only ones that import ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from nas.errors import ConfigError
from nas.integrations._common import PolicyState
from nas.interfaces import LearningCurvePredictor, StoppingPolicy

__all__ = ["PolicyScheduler"]


class PolicyScheduler(FIFOScheduler):
    """CONTINUE or STOP after every reported result, as the nas policy decides.

    ``policy``: a policy object or name (``none``, ``median``, ``asha``, ``predictive``,
    ``"module:attr"``) with ``policy_options``; ``metric`` and ``mode`` (``max``/``min``);
    ``horizon``: the number of results a full trial reports; ``value_range``: the metric's
    (lo, hi); ``predictor``: for ``predictive``, an object or name.  ``decisions`` counts the
    STOP decisions by trial id.
    """

    _supports_buffered_results = False

    def __init__(self, policy: str | StoppingPolicy = "asha", *, metric: str, mode: str = "max",
                 horizon: int, value_range: Sequence[float] = (0.0, 1.0),
                 policy_options: dict[str, Any] | None = None,
                 predictor: str | LearningCurvePredictor | None = None) -> None:
        super().__init__()
        if mode not in ("max", "min"):
            raise ConfigError(f"mode = {mode!r}: must be 'max' or 'min'")
        if not isinstance(metric, str) or not metric:
            raise ConfigError(f"metric = {metric!r}: must be a metric name")
        self._metric_name = metric
        self._state = PolicyState(policy, horizon=horizon,
                                  direction="maximize" if mode == "max" else "minimize",
                                  value_range=value_range, policy_options=policy_options,
                                  predictor=predictor)
        self._values: dict[str, list[float]] = {}
        self.stopped: dict[str, str] = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        v = result.get(self._metric_name)
        if not isinstance(v, (int, float)):
            return TrialScheduler.CONTINUE
        vals = self._values.setdefault(trial.trial_id, [])
        vals.append(float(v))
        d = self._state.decide(trial.trial_id, vals)
        if d.stop:
            self.stopped[trial.trial_id] = d.reason
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        if trial.trial_id not in self.stopped and self._values.get(trial.trial_id):
            self._state.complete(trial.trial_id)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        if trial.trial_id not in self.stopped and trial.trial_id in self._values \
                and trial.status == "ERROR":
            self._state.session.fail(self._state.number(trial.trial_id))

    def debug_string(self) -> str:
        return f"nas policy {self._state.policy_name}: {len(self.stopped)} stopped"
