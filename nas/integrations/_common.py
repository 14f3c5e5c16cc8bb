"""Shared by the Optuna pruner and the Tune scheduler: policy lookup, scaling, and the stopping
session that both drive."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nas._scale import normalise
from nas.errors import ConfigError
from nas.interfaces import DIRECTIONS, Decision, Direction, LearningCurvePredictor, StoppingPolicy
from nas.policies import StoppingSession

__all__ = ["PolicyState"]


class PolicyState:
    """A stopping policy in a :class:`~nas.policies.StoppingSession` with the caller's scaling.

    ``policy`` is a policy object or a name (``none``, ``median``, ``asha``, ``predictive`` or
    ``"module:attr"``) built with ``policy_options``.  Raw values are mapped to [0, 1], higher
    better, with ``value_range`` and ``direction``.  ``predictor`` (an object or a name) is fitted
    on the complete curves on :func:`nas.policies.should_refit`'s schedule, synchronously (the
    plain-Optuna and plain-Tune callers have no background thread to offer).
    """

    def __init__(self, policy: str | StoppingPolicy, *, horizon: int,
                 direction: str = Direction.MAXIMIZE, value_range: Sequence[float] = (0.0, 1.0),
                 policy_options: dict[str, Any] | None = None,
                 predictor: str | LearningCurvePredictor | None = None) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ConfigError(f"horizon = {horizon!r}: must be an integer >= 1 (the "
                              "last step a trial reports)")
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction = {direction!r}: must be maximize or minimize")
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ConfigError(f"value_range = {tuple(value_range)!r}: must be (lo, hi) "
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
        # the one stopping step (nas.policies.StoppingSession), its refits inline: the plain
        # Optuna and Tune callers have no background thread to offer
        self.session = StoppingSession(
            policy, horizon=horizon,
            new_predictor=None if pred is None else (lambda: pred),  # refit in place
            normalise=self.normalise)
        self.mirror = self.session.mirror
        self._numbers: dict[Any, int] = {}

    def normalise(self, value: float) -> float:
        return normalise(value, self.lo, self.hi, self.direction)

    def number(self, key: Any) -> int:
        """The session's trial number of the caller's trial ``key`` (Tune's trial ids are
        strings)."""
        n = self._numbers.get(key)
        if n is None:
            n = self._numbers[key] = len(self._numbers)
        return n

    def complete(self, key: Any, final_value: float | None = None) -> None:
        """Trial ``key`` ran to the end; its final value is ``final_value`` or its last value."""
        self.session.complete(self.number(key), final_value)

    def decide(self, key: Any, values: Sequence[float]) -> Decision:
        """Decide about trial ``key`` whose raw values at steps 1..t are ``values``."""
        n = self.number(key)
        curve = self.mirror.curves.get(n)
        if curve is None or len(curve) != len(values) - 1:  # catch up on unseen values
            self.mirror.curves[n] = [self.normalise(v) for v in values[:-1]]
        return self.session.report(n, len(values), float(values[-1]))
