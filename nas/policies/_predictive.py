"""The predictive stopping rule: stop when a forecast says the trial will hardly beat the best.

Called like every policy by the runner's scheduler hook and by ``nas bench replay``; it asks
``study.predictor`` (the study's latest fitted predictor, refitted by the engine on the
:func:`nas.policies.should_refit` schedule, never by the policy) for the distribution of the
value at the trial's horizon and computes ``p_improve = P(y_T > y_best) = 1 - F(y_best)``.
"""

from __future__ import annotations

from nas._checks import Checker
from nas.interfaces import CONTINUE, STOP, Decision, StudyView, TrialView
from nas.policies._view import forecast, forecast_summary, not_yet

__all__ = ["DEFAULT_DELTA", "DEFAULT_EPSILON", "PredictivePolicy"]

#: Default threshold on P(y_T > y_best).  delta is a *per-decision* risk, but what a user
#: tolerates is a per-*study* risk: losing the trial that would have become the best.  A stop with
#: calibrated p_i = P(y_T > y_best) < delta discards an improvement with probability p_i, so over a
#: study the chance of discarding any improvement is at most sum_i p_i < N * delta (union bound over
#: the N trials that can be stopped).  Tolerating epsilon = 10% for a study of N = 50 trials (the
#: scale of the shipped studies, 32-60 trials) gives delta = epsilon / N = 0.002.  The earlier
#: default 0.05 (a 5% error per decision) cannot work with a *calibrated* predictor: once n trials
#: have completed, a fresh trial whose prefix says nothing yet beats them all with probability
#: about 1/(n+1), below 0.05 from n = 20 on, so every later trial would be stopped at its first
#: epoch.  A study file or ``--delta`` can change it; studies far larger than 50 trials may want
#: epsilon / N with their own N.
DEFAULT_DELTA = 0.002

#: Default regret tolerance: stop when P(y_T > y_best + epsilon) < delta.  A trial that can only
#: tie the best or beat it by less than epsilon (on the normalised [0, 1] scale: 0.01 = one point
#: of accuracy on a [0, 1] objective) is not worth its remaining epochs; with epsilon = 0 the rule
#: keeps every trial whose forecast leaves any room above the best.  See docs/predictors.md.
DEFAULT_EPSILON = 0.01


class PredictivePolicy:
    """Stop when ``P(y_T > y_best + epsilon) < delta`` after at least ``min_epochs`` epochs.

    Never stops before a first trial has completed (``study.best_value is None``), nor when the
    study has no predictor.  ``summarise=False`` skips the 5/50/95% quantiles in the Decision
    (the action is the same; the replay benchmark uses it for speed, the runner keeps them to
    store the forecast).
    """

    name = "predictive"
    needs_predictor = True
    options = ("delta", "epsilon", "min_epochs")

    def __init__(self, delta: float = DEFAULT_DELTA, min_epochs: int = 1,
                 summarise: bool = True, epsilon: float = DEFAULT_EPSILON) -> None:
        c = Checker("policy predictive")
        delta = c.num(delta, "delta", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        min_epochs = c.int_(min_epochs, "min_epochs", lo=1)
        epsilon = c.num(epsilon, "epsilon", lo=0.0, hi=1.0, hi_open=True)
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self.min_epochs = int(min_epochs)
        self.summarise = bool(summarise)

    def __repr__(self) -> str:
        return (f"PredictivePolicy(delta={self.delta:g}, epsilon={self.epsilon:g}, "
                f"min_epochs={self.min_epochs})")

    def decide(self, trial: TrialView, study: StudyView) -> Decision:
        wait = not_yet(trial, study, self.min_epochs)
        if wait is not None:
            return wait
        best, predictor = study.best_value, study.predictor
        assert best is not None and predictor is not None
        fc = forecast(study, trial)  # with the study as context, for a study-reading predictor
        bar = best + self.epsilon
        summary = forecast_summary(fc, predictor, trial.horizon, bar, self.summarise)
        p = float(summary.p_improve or 0.0)
        action = STOP if p < self.delta else CONTINUE
        rel = "<" if action == STOP else ">="
        what = f"best {best:.4g}" if not self.epsilon else \
            f"best {best:.4g} + epsilon {self.epsilon:g}"
        return Decision(action, f"P(y_T > {what}) = {p:.3g} {rel} delta {self.delta:g}",
                        forecast=summary,
                        threshold=min(bar, 1.0))
