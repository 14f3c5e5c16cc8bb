"""An Optuna pruner that wraps a nas stopping policy (for users of plain Optuna).

Usage::

    import optuna
    from nas.integrations import PolicyPruner

    study = optuna.create_study(direction="maximize",
                                pruner=PolicyPruner("asha", horizon=20))
    def objective(trial):
        for epoch in range(1, 21):
            acc = train_one_epoch(...)
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return acc

Optuna calls :meth:`PolicyPruner.prune` from ``trial.should_prune()`` in the objective's
thread.  The policy sees the trial's reported values in step order, scaled to [0, 1] (higher
better) with ``value_range`` and the study's direction, and every other trial's curve; COMPLETE
trials count as finished (their final value is the trial's value).  Single-objective studies
only (Optuna does not report intermediate values for several objectives).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.integrations._common import PolicyState
from nas.interfaces import LearningCurvePredictor, StoppingPolicy

__all__ = ["PolicyPruner"]


class PolicyPruner(optuna.pruners.BasePruner):
    """``prune`` is True when the nas policy says STOP after the trial's latest report.

    ``policy``: a policy object or name (``none``, ``median``, ``asha``, ``predictive``,
    ``"module:attr"``) built with ``policy_options``; ``horizon``: the last step a trial reports
    (the predictive policy forecasts it); ``value_range``: the objective's (lo, hi) for scaling;
    ``predictor``: for ``predictive``, a predictor object or name, refit on the complete
    trials' curves on :func:`nas.policies.should_refit`'s schedule.  ``last_decision`` holds the
    latest :class:`~nas.interfaces.Decision` (e.g. to log its reason).
    """

    def __init__(self, policy: str | StoppingPolicy = "asha", *, horizon: int,
                 value_range: Sequence[float] = (0.0, 1.0),
                 policy_options: dict[str, Any] | None = None,
                 predictor: str | LearningCurvePredictor | None = None) -> None:
        self._args = {"policy": policy, "horizon": horizon, "value_range": value_range,
                      "policy_options": policy_options, "predictor": predictor}
        self._state: PolicyState | None = None
        self._direction: str | None = None
        # validate now (a bad option is an error at construction, not at the first report)
        self._make("maximize")
        self.last_decision: Any = None

    def _make(self, direction: str) -> PolicyState:
        a = self._args
        return PolicyState(a["policy"], horizon=a["horizon"], direction=direction,  # type: ignore[arg-type]
                           value_range=a["value_range"],  # type: ignore[arg-type]
                           policy_options=a["policy_options"],  # type: ignore[arg-type]
                           predictor=a["predictor"])  # type: ignore[arg-type]

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        direction = "minimize" if study.direction == optuna.study.StudyDirection.MINIMIZE \
            else "maximize"
        if self._state is None or self._direction != direction:
            self._state, self._direction = self._make(direction), direction
        st = self._state
        # Mirror the other trials (curves of finished and running ones; completes with values).
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number or not t.intermediate_values:
                continue
            n = st.number(t.number)
            st.mirror.curves[n] = [st.normalise(v) for _, v in
                                   sorted(t.intermediate_values.items())]
            if t.state == TrialState.COMPLETE and n not in st.mirror.complete \
                    and t.value is not None:
                st.complete(t.number, t.value)
            elif t.state == TrialState.FAIL:
                st.session.fail(n)
        values = [v for _, v in sorted(trial.intermediate_values.items())]
        if not values:
            return False
        self.last_decision = st.decide(trial.number, values)
        return bool(self.last_decision.stop)
