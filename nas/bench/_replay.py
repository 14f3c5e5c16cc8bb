"""``nas bench replay``: replay recorded curves as a sequential random search under a policy.

Protocol (issue 5, section 4), implemented exactly:

* per task group and seed s = 0..seeds-1: the group's complete curves (length = the file's T) in
  file order, run one at a time in the order ``numpy.random.default_rng(s).permutation(n)``;
* after each epoch t < T the policy decides on the prefix ``y_1..y_t`` with a
  :class:`nas.policies.StudyCurves` that holds every earlier trial's values (up to where it
  stopped) and ``best_value`` = the best final value among completed trials (None before the
  first);
* a learning predictor is refit on the runner's schedule (:func:`nas.policies.should_refit`:
  after the 5th, 10th, 20th, 40th, ... completion) on the completed curves;
* per group: speedup = n*T / epochs consumed (a trial stopped after t epochs consumed t),
  regret = best final value in the group - best final value among completed trials; means over
  seeds, then over groups; ``worst_regret`` is the largest regret of any (group, seed) run.

Speed: forecasts are computed in batches (the early prefixes of the next trials in the seed's
order, then the rest of a trial's prefixes when it survives) and cached until the predictor is
refit; a predictor that does not learn from the study (``learns_from_curves = False``, e.g. a
pre-trained PFN) is never refit and its cache is shared by every seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.calibration import (
    CalibratedForecast,
    CalibratedPredictor,
    PITCalibrator,
    pit_intervals,
    prefix_bucket,
    trial_weights,
)
from nas.curvefile import CurveSet
from nas.errors import ConfigError
from nas.interfaces import Curve, Forecast, LearningCurvePredictor, StoppingPolicy, TrialView
from nas.policies import DEFAULT_AUDIT, StopAudit, StudyCurves, false_stop_summary, should_refit

__all__ = ["GroupRun", "add_trial", "replay_group", "run_replay"]

Progress = Callable[[str, int, int], None]
_EARLY = 5  # prefixes 1.._EARLY are batched across upcoming trials


class _ForecastCache:
    """Forecasts of (curve index, prefix length) under one fitted predictor state."""

    def __init__(self, predictor: LearningCurvePredictor, curves: np.ndarray,
                 features: np.ndarray | None, group: str, block: int = 64) -> None:
        self.predictor = predictor
        self.curves = curves
        self.features = features
        self.group = group
        self.block = block
        self.T = curves.shape[1]
        self._rows: dict[tuple[int, int], tuple[Any, int]] = {}

    def clear(self) -> None:
        self._rows.clear()

    def _compute(self, items: list[tuple[int, int]]) -> None:
        batch = [Curve(self.curves[i, :t], None if self.features is None else self.features[i],
                       self.group) for i, t in items]
        fc = self.predictor.predict(batch, self.T)
        for r, key in enumerate(items):
            self._rows[key] = (fc, r)

    def pits(self, i: int, steps: np.ndarray, final: float) -> tuple[np.ndarray, np.ndarray]:
        """Interval PITs of curve ``i``'s forecasts at prefixes ``steps`` at its ``final``."""
        missing = [(i, int(t)) for t in steps if (i, int(t)) not in self._rows]
        if missing:
            self._compute(missing)
        lo = np.empty(steps.shape[0])
        hi = np.empty(steps.shape[0])
        for k, t in enumerate(steps):
            fc, r = self._rows[(i, int(t))]
            one = fc.take([r]) if hasattr(fc, "take") else _Row(fc, r)
            a, b = pit_intervals(one, np.array([final]))
            lo[k], hi[k] = a[0], b[0]
        return lo, hi

    def get(self, i: int, t: int, upcoming: Sequence[int]) -> tuple[Any, int]:
        key = (i, t)
        if key not in self._rows:
            if t <= _EARLY:
                trials = [i] + [j for j in upcoming if (j, 1) not in self._rows][: self.block - 1]
                ts = range(1, min(_EARLY, self.T - 1) + 1)
                self._compute([(j, s) for j in trials for s in ts])
            else:
                self._compute([(i, s) for s in range(t, self.T)])
        return self._rows[key]


class _CachedPredictor:
    """What a policy sees as ``study.predictor`` during replay: answers the current trial's
    one-curve query from the cache (through the study's calibration maps when it has them),
    anything else from the real predictor."""

    def __init__(self, cache: _ForecastCache, calibrator: PITCalibrator | None = None) -> None:
        self.cache = cache
        self.calibrator = calibrator
        self.name = getattr(cache.predictor, "name", type(cache.predictor).__name__)
        self.current: tuple[int, int] | None = None
        self.upcoming: Any = ()

    def fit(self, curves: Sequence[Curve]) -> _CachedPredictor:
        raise RuntimeError("policies must not fit the study's predictor")

    def predict(self, curves: Sequence[Curve], horizon: int) -> Forecast:
        cur = self.current
        if cur is not None and len(curves) == 1 and len(curves[0]) == cur[1] \
                and horizon == self.cache.T:
            fc, row = self.cache.get(cur[0], cur[1], self.upcoming)
            out: Any = fc.take([row]) if hasattr(fc, "take") else _Row(fc, row)
        else:
            out = self.cache.predictor.predict(curves, horizon)
        cal = self.calibrator
        if cal is not None and cal.active:
            steps = np.array([len(c) for c in curves])
            out = CalibratedForecast(out, cal, prefix_bucket(steps, horizon))
        return out  # type: ignore[no-any-return]


class _Row:
    """One row of a batched forecast that has no ``take`` (evaluates all rows, keeps one)."""

    def __init__(self, base: Forecast, row: int) -> None:
        self._base, self._row = base, row
        self._n = int(np.asarray(base.mean).shape[0])

    def _at(self, y: float | np.ndarray) -> np.ndarray:
        return np.full(self._n, float(np.asarray(y).reshape(-1)[0]))

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self._base.mean)[[self._row]]

    def quantile(self, q: float) -> np.ndarray:
        return np.asarray(self._base.quantile(q))[[self._row]]

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(self._base.cdf(self._at(y)))[[self._row]]

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(self._base.logpdf(self._at(y)))[[self._row]]


def add_trial(study: StudyCurves, values: np.ndarray, complete: bool) -> None:
    """Record the next finished trial of a replay in ``study`` (its values up to where it
    stopped; the final value counts for ``best_value`` when it ran to the end)."""
    number = len(study.curves)
    study.curves[number] = [float(v) for v in values]
    if complete:
        study.complete[number] = float(values[-1])


@dataclass
class GroupRun:
    """What one replay of one group did: epochs consumed, the best completed final, and the
    audit's record: per would-be stop (STOP or AUDIT), whether the trial's true final (known in
    a replay) beat the decision's threshold, and for the audited ones what the study saw."""

    consumed: int
    best: float
    stops: int = 0
    audited: int = 0
    audited_false: int = 0
    true_false: int = 0  # among all would-be stops, by the file's finals (unknowable live)


def replay_group(
    curves: np.ndarray,
    features: np.ndarray | None,
    group: str,
    policy: StoppingPolicy,
    order: np.ndarray,
    predictor: LearningCurvePredictor | None = None,
    cache: _ForecastCache | None = None,
    *,
    audit: StopAudit | None = None,
    calibrate: bool = False,
    calibration: Mapping[str, Any] | None = None,
) -> GroupRun:
    """Replay one group in ``order`` (see the module docstring)."""
    T = curves.shape[1]
    learns = predictor is not None and getattr(predictor, "learns_from_curves", True)
    if predictor is not None and cache is None:
        cache = _ForecastCache(predictor, curves, features, group)
    wrapper = (CalibratedPredictor(predictor, **dict(calibration or {}))
               if calibrate and predictor is not None else None)
    proxy = (_CachedPredictor(cache, None if wrapper is None else wrapper.calibrator)
             if cache is not None else None)
    study = StudyCurves()
    study.set_predictor(proxy)  # type: ignore[arg-type]
    run = GroupRun(0, 0.0)
    completed: list[int] = []
    weights: list[float] = []
    until: list[int] = []
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    rate = 0.0 if audit is None else audit.rate

    def curve(j: int) -> Curve:
        return Curve(curves[j], None if features is None else features[j], group)

    for pos, i in enumerate(order):
        i = int(i)
        row = curves[i]
        feat = None if features is None else features[i]
        if proxy is not None:
            proxy.upcoming = order[pos + 1:]
        stopped_at = T
        audited_at: int | None = None
        for t in range(1, T):
            if proxy is not None:
                proxy.current = (i, t)
            d = policy.decide(TrialView(pos, row[:t], T, feat, group), study)
            if d.action != "STOP":
                continue
            bar = d.threshold if d.threshold is not None else study.best_value
            wrong = bar is not None and float(row[-1]) > bar
            run.stops += 1
            run.true_false += int(wrong)
            if audit is not None:
                d = audit.review(d, pos)
            if d.action == "AUDIT":
                audited_at = t
                run.audited += 1
                run.audited_false += int(wrong)
            else:
                stopped_at = t
            break
        run.consumed += stopped_at
        add_trial(study, row[:stopped_at], complete=stopped_at == T)
        if stopped_at < T:
            continue
        completed.append(i)
        weights.append(1.0 / rate if audited_at is not None else 1.0)
        until.append(T - 1 if audited_at is None else audited_at)
        if wrapper is not None and not learns and cache is not None:
            ts = np.arange(1, until[-1] + 1)
            lo, hi = cache.pits(i, ts, float(row[-1]))
            samples.append((prefix_bucket(ts, T), lo, hi, trial_weights(ts, T) * weights[-1]))
        if not should_refit(len(completed)):
            continue
        if wrapper is not None and learns and cache is not None:
            wrapper.fit_study([curve(j) for j in completed], weights, until)
            cache.clear()
        elif wrapper is not None and samples:
            b, lo, hi, w = (np.concatenate(x) for x in zip(*samples))
            wrapper.calibrator.fit(b, lo, hi, w, n_trials=float(np.sum(weights)),
                                   trial_weight=np.asarray(weights))
        elif learns and predictor is not None and cache is not None:
            predictor.fit([curve(j) for j in completed])
            cache.clear()
    best = study.best_value
    run.best = 0.0 if best is None else best
    return run


def run_replay(
    cs: CurveSet,
    policy: str,
    *,
    policy_options: Mapping[str, Any] | None = None,
    predictor: str | None = None,
    predictor_options: Mapping[str, Any] | None = None,
    seeds: int = 5,
    audit: float | None = None,
    calibrate: bool | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the replay protocol and return the JSON document (see the module docstring).

    ``audit``: the stop audit's rate (default :data:`nas.policies.DEFAULT_AUDIT` for policies
    that stop, as in ``nas run``; 0 turns it off).  ``calibrate``: recalibrate the predictor on
    the replayed study's own trials before the stop rule reads it (default off, as in
    ``nas run``: ``stopping.calibrate``)."""
    from nas import registry
    from nas.policies import make_policy
    from nas.policies._audit import check_rate

    cs.require_unit_range()
    if seeds < 1:
        raise ConfigError(f"--seeds is {seeds}, but must be >= 1")
    opts = dict(policy_options or {})
    pol = make_policy(policy, opts)
    needs_predictor = hasattr(pol, "delta")
    if needs_predictor and predictor is None:
        raise ConfigError(f"policy {policy!r} needs --predictor (e.g. baker)")
    if hasattr(pol, "summarise"):
        pol = make_policy(policy, {**opts, "summarise": False})  # same actions, fewer quantiles
    rate = check_rate(DEFAULT_AUDIT if audit is None else audit, "--audit", where="")
    if policy == "none":
        rate = 0.0
    cal = bool(calibrate) and needs_predictor
    T = cs.horizon
    groups = cs.groups()
    names = list(dict.fromkeys(groups.tolist()))
    per_group: dict[str, dict[str, float]] = {}
    worst = 0.0
    jobs, job = len(names) * seeds, 0
    totals = {"stops": 0, "audited": 0, "audited_false": 0, "true_false": 0}
    for g in names:
        idx = np.flatnonzero((groups == g) & (cs.lengths == T))
        if idx.size == 0:
            continue
        curves = cs.curves[idx]
        feats = None if cs.config_features is None else cs.config_features[idx]
        best_all = float(curves[:, -1].max())
        shared = None
        speed, regret = [], []
        for s in range(seeds):
            pred = None
            if needs_predictor:
                assert predictor is not None
                if shared is not None:
                    pred = shared.predictor
                else:
                    pred = registry.create("predictor", predictor, dict(predictor_options or {}))
                    if not getattr(pred, "learns_from_curves", True):
                        shared = _ForecastCache(pred, curves, feats, g)
            order = np.random.default_rng(s).permutation(idx.shape[0])
            run = replay_group(curves, feats, g, pol, order, pred, shared,
                               audit=StopAudit(rate, seed=s) if rate > 0 else None,
                               calibrate=cal)
            speed.append(idx.shape[0] * T / run.consumed)
            regret.append(best_all - run.best)
            worst = max(worst, best_all - run.best)
            for k in totals:
                totals[k] += int(getattr(run, k))
            job += 1
            if progress is not None:
                progress(f"replay {g[:40]} seed {s}", job, jobs)
        per_group[g] = {"speedup": float(np.mean(speed)), "regret": float(np.mean(regret))}
    delta = getattr(pol, "delta", None)
    stops = totals["stops"]
    return {
        "policy": policy,
        "predictor": predictor if needs_predictor else None,
        "delta": delta,
        "epsilon": getattr(pol, "epsilon", None),
        "calibrated": cal,
        "audit": rate,
        "speedup": float(np.mean([v["speedup"] for v in per_group.values()])),
        "regret": float(np.mean([v["regret"] for v in per_group.values()])),
        "worst_regret": float(worst),
        "false_stops": {
            **false_stop_summary(totals["audited"], totals["audited_false"]),
            "stops": stops,
            # known only in a replay: every would-be stop's true outcome
            "true_rate": (totals["true_false"] / stops) if stops else None,
        },
        "file": os.fspath(cs.source),
        "seeds": seeds,
        "options": {k: v for k, v in vars(pol).items() if not k.startswith("_") and k != "summarise"},
        "groups": per_group,
    }
