"""The regret rule: stop a trial when its expected improvement over the best is below a regret
tolerance, unless this study has seen a run that looked as bad at this step and still came close
to the best (a late bloomer).

Called like every policy by the runner's scheduler hook and by ``nas bench replay``.  It reads
``study.predictor`` (the study's pfn or baker) for the forecast of the trial's value at its
horizon, and the study's own curves:

* **EI in regret units.**  ``EI = E[(y_T - y_best)+] = int_{y_best}^1 (1 - F(v)) dv`` is the
  regret (on the normalised [0, 1] scale) that the trial is expected to remove if it runs on.  A
  threshold on it is in the user's units; a threshold on P(y_T > y_best) is not (a parity run at
  chance with P = 0.02 but a large upside must go on, a mediocre learner with the same P must
  stop).
* **Contenders and protected steps.**  A *contender* is a completed trial whose final came within
  ``contender_gap`` of the best.  Step t is *protected* for a trial when some contender recorded a
  value at t no higher than the trial's value + ``margin``: this study has seen a run that looked
  no better at this step and still became a contender, so the prefix-only forecast is not
  trusted there.  (Completed trials are survivors of the rule; a protected step only ever makes
  the rule more careful.)
* **Thin evidence.**  While fewer than ``min_contenders`` contenders exist, the study has not
  shown what its good runs look like early on; the prefix-only forecast alone then stops a trial
  only below ``tolerance_min`` (rung stops still apply).
* **Analogs.**  The completed trials whose value at t was within ``margin`` of the trial's are
  its analogs; when there are at least ``analogs`` of them and none of their gains from t to
  their final would lift the trial above the best, it stops (at unprotected steps, once the study
  has ``min_contenders`` contenders).  This is how a study shows that its runs plateau (a task
  whose runs all saturate near one value), which a pretrained forecast cannot know.
* **Rank at rungs.**  At ASHA rungs (``grace_period * reduction_factor**k``), a value below the
  rung's ``1 - 1/reduction_factor`` quantile of the values earlier trials recorded there
  proposes a stop, confirmed when ``EI < rung_tolerance``, at unprotected steps only.

The rule, at step t < T once a trial has completed::

    EI < tolerance_min                                  -> STOP (always)
    EI < tolerance, t unprotected, >= min_contenders    -> STOP
    >= analogs analogs, none lifts it above the best,
        t unprotected, >= min_contenders                -> STOP
    t a rung, value < rung cutoff, EI < rung_tolerance,
        t unprotected                                   -> STOP
    otherwise                                           -> CONTINUE

The defaults were chosen on the dev families with a leave-one-family-out check
(``benchmarks/stopping_rules.py``, ``benchmarks/results/stopping_rules.md``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nas._checks import Checker
from nas.interfaces import CONTINUE, STOP, Decision, ForecastSummary, StudyView, TrialView
from nas.policies._view import forecast, forecast_summary, not_yet

__all__ = ["RegretPolicy", "expected_improvement"]


def expected_improvement(forecast: Any, best: float, points: int = 129) -> float:
    """``E[(y - best)+] = int_best^1 (1 - F(v)) dv`` of a one-row forecast on [0, 1].

    Exact for a bar distribution (``edges``/``probs``/``atom_lower``/``atom_upper``, e.g. the
    pfn's :class:`predictors.HistogramForecast`, whose CDF is linear within a bin); otherwise the
    trapezoid rule on ``points`` points of [best, 1].
    """
    b = float(best)
    if b >= 1.0:
        return 0.0
    b = max(b, 0.0)
    edges = getattr(forecast, "edges", None)
    probs = getattr(forecast, "probs", None)
    if edges is not None and probs is not None:
        e = np.asarray(edges, dtype=np.float64)
        p = np.asarray(probs, dtype=np.float64)[0]
        a0 = float(np.asarray(getattr(forecast, "atom_lower", 0.0)).reshape(-1)[0])
        Fe = np.minimum(a0 + np.concatenate([[0.0], np.cumsum(p)]), 1.0)
        if e[0] > 0.0 or e[-1] < 1.0:
            e = np.concatenate([[0.0] if e[0] > 0.0 else [], e, [1.0] if e[-1] < 1.0 else []])
            Fe = np.concatenate([[0.0] if edges[0] > 0.0 else [], Fe,
                                 [1.0] if edges[-1] < 1.0 else []])
        j = int(np.clip(np.searchsorted(e, b, side="right") - 1, 0, len(e) - 2))
        w = e[j + 1] - e[j]
        Fb = Fe[j] + (b - e[j]) / w * (Fe[j + 1] - Fe[j])
        head = (e[j + 1] - b) * (1.0 - 0.5 * (Fb + Fe[j + 1]))
        tail = np.sum(np.diff(e[j + 1:]) * (1.0 - 0.5 * (Fe[j + 1:-1] + Fe[j + 2:])))
        return float(max(head + tail, 0.0))
    ys = np.linspace(b, 1.0, points)
    if hasattr(forecast, "take"):
        F = np.asarray(forecast.take(np.zeros(points, dtype=int)).cdf(ys), dtype=np.float64)
    else:
        F = np.array([float(np.asarray(forecast.cdf(np.array([y]))).reshape(-1)[0]) for y in ys])
    F = np.clip(F, 0.0, 1.0)
    return float(max(np.sum(np.diff(ys) * (1.0 - 0.5 * (F[1:] + F[:-1]))), 0.0))


class RegretPolicy:
    """Stop on the expected improvement over the best in regret units, keeping the late bloomers
    this study has shown (see the module docstring for the rule).

    Options (normalised [0, 1] objective units): ``tolerance`` (EI below it stops at unprotected
    steps), ``tolerance_min`` (EI below it stops always), ``rung_tolerance`` (EI below it confirms
    a rung's rank stop), ``reduction_factor`` and ``grace_period`` (the rungs, as ASHA),
    ``contender_gap`` (a contender's final is within it of the best), ``margin`` (a contender that
    recorded at most the trial's value + margin at a step protects that step),
    ``min_contenders`` (below it, ``tolerance`` and the analogs do not apply), ``analogs`` (how
    many analogs a plateau stop needs; 0 turns it off), ``min_epochs``.
    ``summarise=False`` skips the 5/50/95% quantiles in the Decision (same actions).
    """

    name = "regret"
    needs_predictor = True
    options = ("tolerance", "tolerance_min", "rung_tolerance", "reduction_factor",
               "grace_period", "contender_gap", "margin", "min_contenders", "analogs",
               "min_epochs")

    def __init__(self, tolerance: float = 1.5e-3, tolerance_min: float = 8e-4,
                 rung_tolerance: float = 8e-2, reduction_factor: float = 2.0,
                 grace_period: int = 1, contender_gap: float = 0.2, margin: float = 0.05,
                 min_contenders: int = 3, analogs: int = 3, min_epochs: int = 1,
                 summarise: bool = True) -> None:
        c = Checker("policy regret")
        self.tolerance = c.num(tolerance, "tolerance", lo=0.0, hi=1.0, hi_open=True)
        self.tolerance_min = c.num(tolerance_min, "tolerance_min", lo=0.0, hi=1.0, hi_open=True)
        self.rung_tolerance = c.num(rung_tolerance, "rung_tolerance", lo=0.0, hi=1.0, hi_open=True)
        if self.tolerance_min > self.tolerance:
            raise c.fail("tolerance_min", tolerance_min,
                         f"must be <= tolerance ({self.tolerance:g})")
        self.reduction_factor = c.num(reduction_factor, "reduction_factor", lo=1.0, lo_open=True)
        self.grace_period = c.int_(grace_period, "grace_period", lo=1)
        self.contender_gap = c.num(contender_gap, "contender_gap", lo=0.0, hi=1.0)
        self.margin = c.num(margin, "margin", lo=0.0, hi=1.0)
        self.min_contenders = c.int_(min_contenders, "min_contenders", lo=0)
        self.analogs = c.int_(analogs, "analogs", lo=0)
        self.min_epochs = c.int_(min_epochs, "min_epochs", lo=1)
        self.summarise = c.bool_(summarise, "summarise")
        self._stats: tuple[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def __repr__(self) -> str:
        return (f"RegretPolicy(tolerance={self.tolerance:g}, tolerance_min={self.tolerance_min:g}, "
                f"rung_tolerance={self.rung_tolerance:g}, "
                f"reduction_factor={self.reduction_factor:g}, grace_period={self.grace_period}, "
                f"contender_gap={self.contender_gap:g}, margin={self.margin:g}, "
                f"min_contenders={self.min_contenders}, analogs={self.analogs}, "
                f"min_epochs={self.min_epochs})")

    # -- study statistics ------------------------------------------------------------------
    def rungs(self, horizon: int) -> list[int]:
        """ASHA's milestones below ``horizon`` (as :class:`nas.policies.ASHAPolicy`)."""
        if horizon < self.grace_period:
            return []
        n = int(np.log(horizon / self.grace_period) / np.log(self.reduction_factor) + 1)
        steps = {math.ceil(self.grace_period * self.reduction_factor**k - 1e-9) for k in range(n)}
        return sorted(s for s in steps if s < horizon)

    def _study_stats(self, study: StudyView,
                     exclude: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(completed curves NaN-padded, their finals, contender mask).  Cached per study state
        (a pure function of it: no hidden state changes a decision)."""
        best = study.best_value
        complete = getattr(study, "complete", None)
        curves = getattr(study, "curves", None)
        if best is None or complete is None or curves is None:
            return np.zeros((0, 0)), np.zeros(0), np.zeros(0, dtype=bool)
        key = (id(study), len(complete), len(curves), best, exclude)
        if self._stats is not None and self._stats[0] == key:
            return self._stats[1]
        nums = [n for n in complete if n != exclude and n in curves]
        width = max((len(curves[n]) for n in nums), default=0)
        mat = np.full((len(nums), width), np.nan)
        for k, n in enumerate(nums):
            mat[k, : len(curves[n])] = curves[n]
        finals = np.array([complete[n] for n in nums], dtype=np.float64)
        out = (mat, finals, finals >= best - self.contender_gap)
        self._stats = (key, out)
        return out

    def contenders(self, study: StudyView, exclude: int | None = None) -> np.ndarray:
        """Curves (rows, NaN-padded) of the completed trials whose final is within
        ``contender_gap`` of the best."""
        mat, _, cont = self._study_stats(study, exclude)
        return mat[cont]

    def no_analog_lifts(self, trial: TrialView, study: StudyView) -> bool:
        """Whether at least ``analogs`` completed trials were within ``margin`` of the trial at
        this step and none of their gains to their final would lift it above the best."""
        if not self.analogs or study.best_value is None:
            return False
        mat, finals, _ = self._study_stats(study, trial.number)
        t = trial.step
        if mat.shape[0] < self.analogs or mat.shape[1] < t:
            return False
        y = float(trial.values[-1])
        col = mat[:, t - 1]
        near = np.abs(col - y) <= self.margin
        if int(near.sum()) < self.analogs:
            return False
        return bool(np.max(y + finals[near] - col[near]) < study.best_value)

    def protected(self, trial: TrialView, study: StudyView,
                  cont: np.ndarray | None = None) -> bool:
        """Whether a contender recorded at most the trial's value + margin at this step."""
        t = trial.step
        if cont is None:
            cont = self.contenders(study, trial.number)
        if cont.shape[0] == 0 or cont.shape[1] < t:
            return False
        col = cont[:, t - 1]
        return bool(np.any(col <= float(trial.values[-1]) + self.margin))

    # -- the rule --------------------------------------------------------------------------
    def decide(self, trial: TrialView, study: StudyView) -> Decision:
        wait = not_yet(trial, study, self.min_epochs)
        if wait is not None:
            return wait
        t, best, predictor = trial.step, study.best_value, study.predictor
        assert best is not None and predictor is not None
        fc = forecast(study, trial)  # with the study as context, for a study-reading predictor
        ei = expected_improvement(fc, best)
        summary = self._summary(fc, predictor, trial.horizon, best)
        if ei < self.tolerance_min:
            return Decision(STOP, f"EI {ei:.2g} < tolerance_min {self.tolerance_min:g}",
                            forecast=summary, threshold=best)
        cont = self.contenders(study, trial.number)
        if self.protected(trial, study, cont):
            return Decision(CONTINUE, f"EI {ei:.2g}, but a contender looked no better at step {t}",
                            forecast=summary, threshold=best)
        if cont.shape[0] >= self.min_contenders:
            if ei < self.tolerance:
                return Decision(STOP, f"EI {ei:.2g} < tolerance {self.tolerance:g}",
                                forecast=summary, threshold=best)
            if self.no_analog_lifts(trial, study):
                return Decision(STOP, f"EI {ei:.2g}, but no analog's gain from step {t} lifts it "
                                f"above best {best:.4g}", forecast=summary, threshold=best)
        if ei >= self.rung_tolerance:
            return Decision(CONTINUE, f"EI {ei:.2g} >= tolerance", forecast=summary,
                            threshold=best)
        if t in self.rungs(trial.horizon):
            cur = float(trial.values[-1])
            vals = study.values_at(t)
            vals = vals[~np.isnan(vals)]
            if vals.size:
                cut = float(np.percentile(vals, (1.0 - 1.0 / self.reduction_factor) * 100.0))
                if cur < cut:
                    return Decision(
                        STOP, f"rung {t}: value {cur:.4g} < cutoff {cut:.4g} and EI {ei:.2g} < "
                        f"rung_tolerance {self.rung_tolerance:g}", forecast=summary, threshold=best)
        return Decision(CONTINUE, f"EI {ei:.2g} >= tolerance {self.tolerance:g}",
                        forecast=summary, threshold=best)

    def _summary(self, fc: Any, predictor: Any, horizon: int, best: float) -> ForecastSummary:
        return forecast_summary(fc, predictor, horizon, best, self.summarise)
