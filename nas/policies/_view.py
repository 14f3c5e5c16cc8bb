"""What a stopping policy sees of its study: :class:`StudyCurves`."""

from __future__ import annotations

import numpy as np

from nas.interfaces import (
    CONTINUE,
    Curve,
    Decision,
    Forecast,
    ForecastSummary,
    LearningCurvePredictor,
    StudyContext,
    StudyView,
    TrialView,
    predictor_caps,
)

__all__ = ["StudyCurves", "forecast", "forecast_summary", "not_yet"]


class StudyCurves:
    """The one implementation of :class:`~nas.interfaces.StudyView`: a study's curves in memory.

    The runner keeps one as its mirror of the database; the replay benchmark and the
    conformance checks build theirs from recorded curves.  Values are normalised to [0, 1],
    higher better.  Single-threaded use (the Tune loop), except
    :attr:`predictor`, which the refit thread swaps atomically.
    """

    def __init__(self) -> None:
        self.curves: dict[int, list[float]] = {}
        self.complete: dict[int, float] = {}
        self.audited: dict[int, int] = {}  # the stop audit's trials: number -> step of the stop
        self.audit_p: dict[int, float] = {}  # ... and the probability they were audited with
        #: config features of the trials whose space gives them (number -> vector)
        self.features: dict[int, np.ndarray] = {}
        #: bumped by the stopping session whenever the study changes (the context cache key)
        self.version = 0
        self._predictor: LearningCurvePredictor | None = None

    @property
    def best_value(self) -> float | None:
        return max(self.complete.values()) if self.complete else None

    @property
    def n_complete(self) -> int:
        return len(self.complete)

    def values_at(self, step: int, *, complete_only: bool = False,
                  exclude: int | None = None) -> np.ndarray:
        """Values recorded at ``step`` (1-based) by the trials that reached it, leaving out
        ``exclude`` (the trial being decided about)."""
        skip = exclude
        src = self.complete.keys() if complete_only else self.curves.keys()
        out = [self.curves[n][step - 1] for n in src
               if n != skip and len(self.curves.get(n, ())) >= step]
        return np.asarray(out, dtype=np.float64)

    @property
    def predictor(self) -> LearningCurvePredictor | None:
        return self._predictor

    def set_predictor(self, p: LearningCurvePredictor | None) -> None:
        self._predictor = p

    def context(self, horizon: int, exclude: int | None = None) -> StudyContext:
        """The study's other curves (each as far as it got) as a study-reading predictor sees
        them (:class:`~nas.interfaces.StudyContext`)."""
        nums = [n for n, c in self.curves.items() if n != exclude and c]
        return StudyContext(
            curves=tuple(Curve(np.asarray(self.curves[n]), self.features.get(n)) for n in nums),
            complete=tuple(n in self.complete for n in nums), horizon=horizon,
            version=self.version)


def not_yet(trial: TrialView, study: StudyView, min_epochs: int) -> Decision | None:
    """Why a forecast-based rule does not decide about ``trial`` yet (a CONTINUE decision), or
    None when it may: before ``min_epochs``, at the horizon, before any trial completed, or
    without a predictor."""
    t = trial.step
    if t < min_epochs:
        return Decision(CONTINUE, f"step {t} < min_epochs {min_epochs}")
    if t >= trial.horizon:
        return Decision(CONTINUE, "trial is at its horizon")
    if study.best_value is None:
        return Decision(CONTINUE, "no trial has completed yet")
    if study.predictor is None:
        return Decision(CONTINUE, "the study has no predictor")
    return None


def forecast(study: object, trial: TrialView) -> Forecast:
    """The study predictor's forecast of ``trial``'s value at its horizon; a predictor that
    reads the study (``reads_study``) gets the study's other curves as context."""
    p = study.predictor  # type: ignore[attr-defined]
    if predictor_caps(p)["reads_study"] and isinstance(study, StudyCurves):
        return p.predict([trial.curve()], trial.horizon,  # type: ignore[call-arg]
                         context=study.context(trial.horizon, exclude=trial.number))
    return p.predict([trial.curve()], trial.horizon)  # type: ignore[no-any-return]


def forecast_summary(fc: Forecast, predictor: object, horizon: int, bar: float,
                     quantiles: bool = True) -> ForecastSummary:
    """What a decision keeps of a one-row forecast: mean, 5/50/95% quantiles (``quantiles``)
    and ``p_improve = P(y_T > bar)`` (0 when ``bar >= 1``)."""
    p = 0.0 if bar >= 1.0 else float(1.0 - np.asarray(fc.cdf(np.array([bar])))[0])
    q = ([float(np.asarray(fc.quantile(x))[0]) for x in (0.05, 0.5, 0.95)] if quantiles
         else [None, None, None])
    return ForecastSummary(getattr(predictor, "name", type(predictor).__name__), horizon,
                           float(np.asarray(fc.mean)[0]), q[0], q[1], q[2],
                           min(1.0, max(0.0, p)))
