"""The stopping session: the one per-epoch stopping step of a study.

One :class:`StoppingSession` per study owns everything that a stop decision depends on:

* the study's curves, normalised to [0, 1] with higher better (:class:`StudyCurves`, which the
  policy reads as its :class:`~nas.interfaces.StudyView`), and each trial's config features;
* the predictor and its refit schedule (:func:`should_refit`), run by an injected
  :class:`Refits` executor: :class:`ThreadRefits` off the hook's path in ``nas run``,
  :class:`InlineRefits` in the replay benchmark and the plain Optuna/Tune integrations;
* the stop audit (:class:`StopAudit`): an audited trial runs on to its horizon, and its final
  later tells the study whether the stop would have been wrong;
* the decision itself, with the threshold the stop gave up (``Decision.threshold``).

The engine (``nas run``), the Optuna pruner, the Tune scheduler, ``nas bench replay`` and the
race all drive this object through three calls::

    d = session.report(trial, epoch, value)   # after every epoch: CONTINUE, STOP or AUDIT
    session.complete(trial)                    # the trial ran to its horizon
    session.fail(trial)                        # it failed: its curve is forgotten

so the rule that a replay measures is exactly the rule that runs live.  Listeners
(:meth:`StoppingSession.listen`) see every decision, e.g. the race's recorder.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from nas.interfaces import (
    AUDIT,
    CONTINUE,
    STOP,
    Curve,
    Decision,
    LearningCurvePredictor,
    StoppingPolicy,
    TrialView,
    predictor_caps,
)
from nas.policies._audit import StopAudit, inclusion_from_reason
from nas.policies._schedule import should_refit
from nas.policies._view import StudyCurves

__all__ = ["InlineRefits", "Refits", "StoppingSession", "ThreadRefits", "policy_caps"]

logger = logging.getLogger(__name__)

Listener = Callable[[int, int, float, Decision], None]


def policy_caps(policy: object) -> dict[str, Any]:
    """What a policy declares of itself: ``needs_predictor`` (bool) and ``options`` (the names
    of its keyword options).  Undeclared: no predictor, no options."""
    return {"needs_predictor": bool(getattr(policy, "needs_predictor", False)),
            "options": tuple(getattr(policy, "options", ()))}


class Refits(Protocol):
    """Runs a predictor refit job: now, or off the caller's path."""

    def submit(self, job: Callable[[], None]) -> None: ...

    @property
    def running(self) -> bool: ...

    def wait(self, timeout: float = 60.0) -> None: ...


class InlineRefits:
    """Runs each refit at once, in the caller's thread (replay, the plain integrations)."""

    running = False

    def submit(self, job: Callable[[], None]) -> None:
        job()

    def wait(self, timeout: float = 60.0) -> None:
        return None


class ThreadRefits:
    """Runs refits in one background thread, one at a time; a job submitted during a refit runs
    after it (only the latest such job: it holds the newest snapshot of the study)."""

    def __init__(self, name: str = "nas-refit") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending: Callable[[], None] | None = None

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._pending = job
                return
            self._thread = threading.Thread(target=self._run, args=(job,), name=self.name,
                                            daemon=True)
            self._thread.start()

    def _run(self, job: Callable[[], None]) -> None:
        while True:
            job()
            with self._lock:
                nxt, self._pending = self._pending, None
                if nxt is None:
                    return
            job = nxt

    def wait(self, timeout: float = 60.0) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)


class StoppingSession:
    """The stopping step of one study (see the module docstring).

    ``policy``: the stopping policy (a plain object; see :func:`policy_caps`).  ``horizon``: the
    last step of a full trial.  ``new_predictor``: builds a fresh, unfitted predictor for each
    fit (None: the study has none; ignored when the policy needs none).  ``audit``: the stop
    audit (None: every stop is carried out).  ``calibrate``: recalibrate forecasts on the
    study's own trials at each refit.  ``refits``: where fits run (default inline).
    ``normalise``: maps a raw value to [0, 1], higher better (default: values are already
    normalised).  ``mirror``: an existing :class:`StudyCurves` (a resumed study's history).
    """

    def __init__(self, policy: StoppingPolicy, *, horizon: int,
                 new_predictor: Callable[[], LearningCurvePredictor | None] | None = None,
                 audit: StopAudit | None = None, calibrate: bool = False,
                 refits: Refits | None = None,
                 normalise: Callable[[float], float] | None = None,
                 mirror: StudyCurves | None = None) -> None:
        self.policy = policy
        self.caps = policy_caps(policy)
        self.horizon = int(horizon)
        self.audit = audit if audit is not None and audit.rate > 0 else None
        m0 = mirror if mirror is not None else None
        if self.audit is not None:
            if self.audit.horizon is None:  # the audit's epoch budget needs the horizon
                self.audit.horizon = int(horizon)
            if m0 is not None:  # a resumed study: what it consumed and would have stopped
                self.audit.consumed = sum(len(c) for c in m0.curves.values())
                self.audit.trials = len(m0.curves)
                self.audit.stops = len(m0.audited) + sum(
                    1 for n, c in m0.curves.items() if n not in m0.complete and len(c) < horizon)
        self.calibrate = bool(calibrate)
        self.refits: Refits = refits if refits is not None else InlineRefits()
        self.normalise = normalise
        self.mirror = mirror if mirror is not None else StudyCurves()
        self.new_predictor = new_predictor if self.caps["needs_predictor"] else None
        self.refit_count = 0  # predictors fitted and swapped in
        self.decisions = 0
        self._running_on: set[int] = set()  # audited trials, running on to the horizon
        self._listeners: list[Listener] = []
        self._pit_cache: dict[Any, Any] = {}
        self._threads_set = False
        self._learns = False
        if self.new_predictor is not None:
            probe = self.new_predictor()
            self._learns = probe is not None and predictor_caps(probe)["learns_from_curves"]
            self._refit()  # the first fit (of a resumed study's curves, or none)

    # ------------------------------------------------------------------ reading
    @property
    def predictor(self) -> LearningCurvePredictor | None:
        """The latest fitted predictor (what the policy sees as ``study.predictor``)."""
        return self.mirror.predictor

    @property
    def refitting(self) -> bool:
        return self.refits.running

    def running_on(self, trial: int) -> bool:
        """Whether ``trial`` is an audited one that runs on to its horizon."""
        return trial in self._running_on

    def listen(self, listener: Listener) -> None:
        """Call ``listener(trial, epoch, normalised value, decision)`` after every report."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ the three calls
    def report(self, trial: int, epoch: int, value: float, *,
               features: np.ndarray | None = None) -> Decision:
        """Trial ``trial`` reported ``value`` (raw, or normalised without ``normalise``) at
        ``epoch`` (1-based): its decision.  A repeated or earlier epoch means the trial
        restarted: its curve is cut back first."""
        x = self.normalise(value) if self.normalise is not None else float(value)
        m = self.mirror
        curve = m.curves.setdefault(trial, [])
        if epoch <= len(curve):
            del curve[epoch - 1:]
        if not math.isfinite(x):
            d = Decision(STOP, f"the value {value!r} is not finite")
            self._notify(trial, epoch, x, d)
            return d
        curve.append(x)
        m.version += 1
        if self.audit is not None:
            self.audit.consumed += 1
            self.audit.trials += epoch == 1
        if features is not None:
            m.features[trial] = np.asarray(features, dtype=np.float64)
        if epoch >= self.horizon:
            d = Decision(CONTINUE, "last epoch")
        elif trial in self._running_on:
            d = Decision(CONTINUE, "stop audit: runs on to the horizon")
        else:
            d = self.policy.decide(TrialView(trial, np.asarray(curve), self.horizon,
                                             m.features.get(trial)), m)
            self.decisions += 1
            if d.stop:
                if d.threshold is None:  # what the stop gave up: beating the best so far
                    d = replace(d, threshold=m.best_value)
                if self.audit is not None:
                    d = self.audit.review(d, trial, epoch)
                    if d.action == AUDIT:
                        self._running_on.add(trial)
                        m.audited[trial] = epoch
                        m.audit_p[trial] = inclusion_from_reason(d.reason) or self.audit.rate
        self._notify(trial, epoch, x, d)
        return d

    def complete(self, trial: int, final: float | None = None) -> None:
        """Trial ``trial`` ran to its horizon; its final value is ``final`` (raw, as in
        :meth:`report`) or its last reported value.  Refits the predictor on schedule."""
        m = self.mirror
        curve = m.curves.get(trial)
        if final is not None:
            m.complete[trial] = self.normalise(final) if self.normalise else float(final)
        elif curve:
            m.complete[trial] = curve[-1]
        else:
            return
        self._running_on.discard(trial)
        m.version += 1
        if self.new_predictor is not None and (self._learns or self.calibrate) \
                and should_refit(m.n_complete):
            self._refit()

    def stopped(self, trial: int) -> None:
        """Trial ``trial`` ended after a STOP: its curve stays, as far as it got."""
        self._running_on.discard(trial)

    def fail(self, trial: int) -> None:
        """Trial ``trial`` failed: it is forgotten."""
        self.mirror.curves.pop(trial, None)
        self.mirror.features.pop(trial, None)
        self._running_on.discard(trial)
        self.mirror.version += 1

    def wait_refit(self, timeout: float = 60.0) -> None:
        """Let a running refit finish (at most ``timeout`` seconds)."""
        self.refits.wait(timeout)

    # ------------------------------------------------------------------ internals
    def _notify(self, trial: int, epoch: int, x: float, d: Decision) -> None:
        for fn in self._listeners:
            fn(trial, epoch, x, d)

    def _refit(self) -> None:
        """Snapshot the complete curves now; fit a fresh predictor on them in the executor."""
        m = self.mirror
        numbers = [n for n in m.complete if n in m.curves]
        curves = [Curve(np.asarray(m.curves[n]), m.features.get(n)) for n in numbers]
        # the stop audit's trials stand for the would-be stops the audit did not draw:
        # weight 1/p (their inclusion probability), and their PITs count only up to the step of the stop
        rate = self.audit.rate if self.audit is not None else 1.0
        weights = [1.0 / m.audit_p.get(n, rate) if n in m.audited else 1.0 for n in numbers]
        until = [m.audited.get(n, self.horizon - 1) for n in numbers]
        self.refits.submit(lambda: self._fit(curves, weights, until))

    def _fit(self, curves: Sequence[Curve], weights: Sequence[float],
             until: Sequence[int]) -> None:
        assert self.new_predictor is not None
        if "torch" in sys.modules and not self._threads_set \
                and isinstance(self.refits, ThreadRefits):
            # The driver's forecasts are single-curve batches: one intra-op thread is fastest
            # and leaves the cores to the workers (process-wide; NAS_DRIVER_THREADS overrides).
            import torch

            torch.set_num_threads(int(os.environ.get("NAS_DRIVER_THREADS", "1")))
            self._threads_set = True
        p = self.new_predictor()
        if p is None:
            return
        try:
            if self.calibrate:
                from nas.calibration import CalibratedPredictor

                p = CalibratedPredictor(p, pit_cache=self._pit_cache).fit_study(
                    curves, weights, until)
            elif self._learns:
                p = p.fit(curves) or p
            # warm up (lazy initialisation, first-call costs) here, not in the hook
            p.predict([Curve(np.array([0.5]))], self.horizon)
            self.mirror.set_predictor(p)
            self.refit_count += 1
        except Exception as exc:  # noqa: BLE001  (keep the previous predictor; policies cope)
            (logger.debug if not curves else logger.warning)(
                "refit of the predictor on %d curves failed: %s", len(curves), exc)
