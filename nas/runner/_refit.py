"""The refit worker: fits a fresh predictor on the study's complete curves in a background thread and swaps it into the mirror."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.interfaces import Curve, LearningCurvePredictor
from nas.policies import StudyCurves, should_refit

logger = logging.getLogger(__name__)

__all__ = ["RefitWorker"]


class RefitWorker:
    """Refits the study's predictor off the hook's path, on :func:`~nas.policies.should_refit`'s
    schedule; one fit at a time (a request during a fit runs once more after it).

    ``new_predictor`` builds a fresh, unfitted predictor (None: the study has none);
    ``audit_rate`` is the stop audit's rate (1.0 without an audit).
    """

    def __init__(self, name: str | None, new_predictor: Callable[[], LearningCurvePredictor | None], mirror: StudyCurves,
                 *, horizon: int, calibrate: bool, audit_rate: float = 1.0) -> None:
        self.name = name
        self.new_predictor = new_predictor
        self.mirror = mirror
        self.horizon = horizon
        self.calibrate = calibrate
        self.audit_rate = audit_rate
        self.refits = 0  # predictors fitted and swapped in
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = False
        self._threads_set = False
        self._pit_cache: dict[Any, Any] = {}  # calibration PITs of a fixed predictor, per trial

    @property
    def enabled(self) -> bool:
        """Whether the study has a predictor to refit."""
        return self.name is not None

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def after_complete(self, n_complete: int) -> None:
        """A trial completed (``n_complete`` in all): refit when the schedule says so."""
        if self.enabled and should_refit(n_complete):
            self.start()

    def start(self) -> None:
        """Fit a fresh predictor on the complete curves in a background thread, then swap."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._pending = True
                return
            mirror = self.mirror
            numbers = [n for n in mirror.complete if n in mirror.curves]
            curves = [Curve(np.asarray(mirror.curves[n])) for n in numbers]
            # the stop audit's trials stand for the would-be stops the audit did not draw:
            # weight 1/rate, and their PITs count only up to the step of the stop
            weights = [1.0 / self.audit_rate if n in mirror.audited else 1.0 for n in numbers]
            until = [mirror.audited.get(n, self.horizon - 1) for n in numbers]
            self._thread = threading.Thread(target=self._refit, args=(curves, weights, until),
                                            name="nas-refit", daemon=True)
            self._thread.start()

    def _refit(self, curves: Sequence[Curve], weights: Sequence[float] | None = None,
               until: Sequence[int] | None = None) -> None:
        p = self.new_predictor()  # built (and checked) before the run started
        if "torch" in sys.modules and not self._threads_set:
            # The driver's forecasts are single-curve batches: one intra-op thread is fastest
            # and leaves the cores to the workers (process-wide; NAS_DRIVER_THREADS overrides).
            import torch

            torch.set_num_threads(int(os.environ.get("NAS_DRIVER_THREADS", "1")))
            self._threads_set = True
        if p is not None:
            try:
                if self.calibrate:
                    from nas.calibration import CalibratedPredictor

                    p = CalibratedPredictor(p, pit_cache=self._pit_cache).fit_study(
                        curves, weights, until)
                else:
                    p = p.fit(curves) or p
                # warm up (lazy initialisation, first-call costs) here, not in the hook
                p.predict([Curve(np.array([0.5]))], self.horizon)
                self.mirror.set_predictor(p)
                self.refits += 1
            except Exception as exc:  # noqa: BLE001
                # keep the previous predictor; the policy copes with None
                (logger.debug if not curves else logger.warning)(
                    "refit of predictor %s on %d curves failed: %s", self.name, len(curves), exc)
        with self._lock:
            again, self._pending = self._pending, False
        if again:
            self.start()

    def wait(self, timeout: float = 60.0) -> None:
        """Join the running fit (at most ``timeout`` seconds)."""
        t = self._thread
        if t is not None:
            t.join(timeout)
