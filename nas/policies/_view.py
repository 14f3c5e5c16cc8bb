"""What a stopping policy sees of its study: :class:`StudyCurves`."""

from __future__ import annotations

import numpy as np

from nas.interfaces import LearningCurvePredictor

__all__ = ["StudyCurves"]


class StudyCurves:
    """The one implementation of :class:`~nas.interfaces.StudyView`: a study's curves in memory.

    The runner keeps one as its mirror of the database; the replay benchmark and the
    conformance checks build theirs from recorded curves.  Values are normalised to [0, 1],
    higher better.  ``current`` is the trial being decided
    about; :meth:`values_at` leaves it out.  Single-threaded use (the Tune loop), except
    :attr:`predictor`, which the refit thread swaps atomically.
    """

    def __init__(self) -> None:
        self.curves: dict[int, list[float]] = {}
        self.complete: dict[int, float] = {}
        self.audited: dict[int, int] = {}  # the stop audit's trials: number -> step of the stop
        #: config features of the trials whose space gives them (number -> vector)
        self.features: dict[int, np.ndarray] = {}
        self.current: int | None = None
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
        ``exclude`` (the trial being decided about; default :attr:`current`)."""
        skip = self.current if exclude is None else exclude
        src = self.complete.keys() if complete_only else self.curves.keys()
        out = [self.curves[n][step - 1] for n in src
               if n != skip and len(self.curves.get(n, ())) >= step]
        return np.asarray(out, dtype=np.float64)

    @property
    def predictor(self) -> LearningCurvePredictor | None:
        return self._predictor

    def set_predictor(self, p: LearningCurvePredictor | None) -> None:
        self._predictor = p
