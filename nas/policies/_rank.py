"""Rank-based stopping rules: Optuna's MedianPruner and Ray Tune's ASHA, as plain policies.

Both are called by the runner's scheduler hook and by ``nas bench replay`` after every epoch of a
trial; they keep no state of their own and read the rest of the study through
:class:`nas.interfaces.StudyView` (``values_at``, ``n_complete``).  Steps are 1-based epochs.
"""

from __future__ import annotations

import math

import numpy as np

from nas._checks import Checker
from nas.interfaces import CONTINUE, STOP, Decision, StudyView, TrialView

__all__ = ["ASHAPolicy", "MedianPolicy", "NoStopping"]


class NoStopping:
    """Never stops a trial (the baseline of every speed-up)."""

    name = "none"

    def decide(self, trial: TrialView, study: StudyView) -> Decision:
        return Decision(CONTINUE, "policy none never stops")

    def __repr__(self) -> str:
        return "NoStopping()"


class MedianPolicy:
    """Optuna's ``MedianPruner`` rule (``optuna/pruners/_percentile.py``, percentile 50).

    At step t (1-based) a trial stops when **its best value so far is strictly below the median
    of the values that COMPLETE trials recorded at step t** (ties continue), provided at least
    ``n_startup_trials`` trials have completed (and at least one), ``t >= n_warmup_steps`` and t is
    a pruning step of the interval: ``(t - n_warmup_steps) % interval_steps == 0`` (Optuna's
    "first step in the interval" check, for a trial that reports every epoch).  Steps where no
    completed trial has a value never stop.  A best value of NaN stops (as in Optuna).

    ``complete_only=False`` (not Optuna's rule) takes the median over every other trial that
    reached step t, stopped ones included; survivors then no longer raise the bar.
    """

    name = "median"
    options = ("n_startup_trials", "n_warmup_steps", "interval_steps", "complete_only")

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 interval_steps: int = 1, complete_only: bool = True) -> None:
        c = Checker("policy median")
        self.complete_only = c.bool_(complete_only, "complete_only")
        self.n_startup_trials = c.int_(n_startup_trials, "n_startup_trials", lo=0)
        self.n_warmup_steps = c.int_(n_warmup_steps, "n_warmup_steps", lo=0)
        self.interval_steps = c.int_(interval_steps, "interval_steps", lo=1)

    def __repr__(self) -> str:
        return (f"MedianPolicy(n_startup_trials={self.n_startup_trials}, "
                f"n_warmup_steps={self.n_warmup_steps}, interval_steps={self.interval_steps}, "
                f"complete_only={self.complete_only})")

    def decide(self, trial: TrialView, study: StudyView) -> Decision:
        n = study.n_complete
        if n == 0 or n < self.n_startup_trials:
            return Decision(CONTINUE, f"{n} complete trials < n_startup_trials")
        t = trial.step
        if t < 1 or t < self.n_warmup_steps:
            return Decision(CONTINUE, "warm-up")
        if (t - self.n_warmup_steps) % self.interval_steps != 0:
            return Decision(CONTINUE, "not a pruning step of the interval")
        vals = trial.values
        best = float(np.nanmax(vals)) if np.any(~np.isnan(vals)) else math.nan
        if math.isnan(best):
            return Decision(STOP, "no finite value so far")
        others = study.values_at(t, complete_only=self.complete_only, exclude=trial.number)
        others = others[~np.isnan(others)]
        if others.size == 0:
            return Decision(CONTINUE, f"no complete trial has a value at step {t}")
        med = float(np.percentile(others, 50.0))
        if best < med:
            return Decision(STOP, f"best {best:.4g} < median {med:.4g} of {others.size} at step {t}")
        return Decision(CONTINUE, f"best {best:.4g} >= median {med:.4g} at step {t}")


class ASHAPolicy:
    """Asynchronous successive halving with Ray Tune's rule (``AsyncHyperBandScheduler``, 1 bracket).

    Rungs sit at ``grace_period * reduction_factor**k`` (rounded up to an epoch) for k = 0, 1, ...
    while below the trial's horizon T (Ray: ``int(log(T/grace)/log(eta)) + 1`` rungs, the one equal to T being moot since
    the trial ends there).  When a trial reaches a rung (t equals a milestone), the cutoff is the
    ``(1 - 1/eta)`` quantile (``numpy.percentile``, linear interpolation) of the values recorded
    at that rung by the trials that reached it before (every earlier trial that got that far,
    stopped or not: ``study.values_at(t)``); it stops when its current value is **strictly
    below** the cutoff (ties continue) and continues when the rung has no values yet.
    """

    name = "asha"
    options = ("grace_period", "reduction_factor")

    def __init__(self, grace_period: int = 1, reduction_factor: float = 3) -> None:
        c = Checker("policy asha")
        self.grace_period = c.int_(grace_period, "grace_period", lo=1)
        self.reduction_factor = c.num(reduction_factor, "reduction_factor", lo=1.0, lo_open=True)

    def __repr__(self) -> str:
        return f"ASHAPolicy(grace_period={self.grace_period}, reduction_factor={self.reduction_factor:g})"

    def rungs(self, horizon: int) -> list[int]:
        """The milestones (ascending) for a trial of ``horizon`` epochs, as Ray computes them."""
        if horizon < self.grace_period:
            return []
        n = int(np.log(horizon / self.grace_period) / np.log(self.reduction_factor) + 1)
        # a trial records at the first epoch >= the milestone (Ray compares cur_iter >= milestone)
        steps = [math.ceil(self.grace_period * self.reduction_factor**k - 1e-9) for k in range(n)]
        return sorted({s for s in steps if s < horizon})

    def decide(self, trial: TrialView, study: StudyView) -> Decision:
        t = trial.step
        if t not in self.rungs(trial.horizon):
            return Decision(CONTINUE, f"step {t} is not a rung")
        cur = float(trial.values[-1])
        recorded = study.values_at(t, exclude=trial.number)
        recorded = recorded[~np.isnan(recorded)]
        if recorded.size == 0:
            return Decision(CONTINUE, f"rung {t} has no values yet")
        cutoff = float(np.percentile(recorded, (1.0 - 1.0 / self.reduction_factor) * 100.0))
        if cur < cutoff:
            return Decision(STOP, f"value {cur:.4g} < rung {t} cutoff {cutoff:.4g} ({recorded.size})")
        return Decision(CONTINUE, f"value {cur:.4g} >= rung {t} cutoff {cutoff:.4g}")
