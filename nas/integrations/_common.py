"""Shared by the Optuna pruner and the Tune scheduler: policy lookup, scaling, refits."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas._scale import normalise
from nas.errors import ConfigError
from nas.interfaces import Curve, Decision, LearningCurvePredictor, StoppingPolicy, TrialView
from nas.policies import StudyCurves

__all__ = ["PolicyState"]

logger = logging.getLogger(__name__)


class PolicyState:
    """A stopping policy plus the study's curves (normalised) and an optional predictor.

    ``policy`` is a policy object or a name (``none``, ``median``, ``asha``, ``predictive`` or
    ``"module:attr"``) built with ``policy_options``.  Raw values are mapped to [0, 1], higher
    better, with ``value_range`` and ``direction``.  ``predictor`` (an object or a name) is fitted
    on the complete curves on :func:`nas.policies.should_refit`'s schedule, synchronously (the
    plain-Optuna and plain-Tune callers have no background thread to offer).
    """

    def __init__(self, policy: str | StoppingPolicy, *, horizon: int,
                 direction: str = "maximize", value_range: Sequence[float] = (0.0, 1.0),
                 policy_options: dict[str, Any] | None = None,
                 predictor: str | LearningCurvePredictor | None = None) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ConfigError(f"`horizon` is {horizon!r}, but must be an integer >= 1 (the "
                              "last step a trial reports)")
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"`direction` is {direction!r}, but must be maximize or minimize")
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ConfigError(f"`value_range` is {tuple(value_range)!r}, but must be (lo, hi) "
                              "with lo < hi")
        if isinstance(policy, str):
            from nas.policies import make_policy

            policy = make_policy(policy, policy_options or {})
        elif policy_options:
            raise ConfigError("`policy_options` only apply when `policy` is a name")
        pred: LearningCurvePredictor | None
        if isinstance(predictor, str):
            from nas.registry import create

            pred = create("predictor", predictor)
        else:
            pred = predictor
        self.policy: StoppingPolicy = policy
        self.policy_name = getattr(policy, "name", type(policy).__name__)
        self.horizon = horizon
        self.direction = direction
        self.lo, self.hi = lo, hi
        self.mirror = StudyCurves()
        self._predictor = pred
        self._fitted_at = -1

    def normalise(self, value: float) -> float:
        return normalise(value, self.lo, self.hi, self.direction)

    def complete(self, key: Any, final_value: float | None = None) -> None:
        """Trial ``key`` ran to the end; its final value is ``final_value`` or its last value."""
        curve = self.mirror.curves.get(key)
        if final_value is not None:
            self.mirror.complete[key] = self.normalise(final_value)
        elif curve:
            self.mirror.complete[key] = curve[-1]
        self._maybe_refit()

    def _maybe_refit(self) -> None:
        from nas.policies import should_refit

        n = self.mirror.n_complete
        if self._predictor is None or n == self._fitted_at:
            return
        if self._fitted_at < 0 or should_refit(n):
            curves = [Curve(np.asarray(self.mirror.curves[k])) for k in self.mirror.complete
                      if k in self.mirror.curves]
            try:
                self._predictor = self._predictor.fit(curves) or self._predictor
                self.mirror.set_predictor(self._predictor)
            except Exception as exc:  # noqa: BLE001 - too few curves for this predictor yet: the policy waits
                logger.debug("predictor fit on %d curves failed: %s", len(curves), exc)
            self._fitted_at = n

    def decide(self, key: Any, values: Sequence[float]) -> Decision:
        """Decide about trial ``key`` whose raw values at steps 1..t are ``values``."""
        norm = [self.normalise(v) for v in values]
        self.mirror.curves[key] = norm
        if self._fitted_at < 0:
            self._maybe_refit()
        if not norm or not all(math.isfinite(x) for x in norm):
            return Decision("STOP", "the value is not finite")
        self.mirror.current = key
        try:
            return self.policy.decide(TrialView(0, np.asarray(norm), self.horizon), self.mirror)
        finally:
            self.mirror.current = None
