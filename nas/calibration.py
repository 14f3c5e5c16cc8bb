"""Recalibration of learning-curve forecasts on a study's own trials.

A predictor's forecast F_t of a trial's final value y_T, made after t epochs, is *calibrated*
when its probability integral transform u = F_t(y_T) is uniform over the trials of the study.
Predictors trained elsewhere are not: the shipped PFN is too wide on smooth converging curves
(its PIT values pile up in [0.2, 0.8]), and Baker's regressor is too wide when it has seen only
a handful of curves.  Following Kuleshov et al. 2018 ("Accurate uncertainties for deep learning
using calibrated regression", ICML), the calibrated forecast is G_b(F_t(y)), where G_b is the
distribution function of the PIT values observed in the study, per prefix-length bucket b
(a forecast after 1 epoch is miscalibrated differently from one after half the run).

What is specific here:

* **Discrete forecasts.**  Curves pile up at exactly 0 (chance level), and forecasts put atoms
  there, so a PIT is an *interval* [F_t(y_T-), F_t(y_T)]; each sample adds the uniform
  distribution on its interval to G (the randomised PIT, integrated out).
* **Weights.**  Each sample carries a weight: the engine gives a trial's samples in a bucket a
  total weight of 1 (its prefixes are not independent evidence), times 1/audit for a trial that
  the policy wanted to stop and the audit let run on (:class:`nas.policies.StopAudit`): those stand for
  every stopped trial like them, so the calibration data is not only the survivors'.
* **Shrinkage.**  G_b = (W_b ECDF_b + m G_all) / (W_b + m) with G_all = (W ECDF + m u) / (W + m):
  a bucket with little data borrows from all buckets, and with no data at all the map is the
  identity (the raw forecast).  m = ``prior_weight`` (default 4 trials).  With W trials, no
  calibrated tail probability falls below about m (1 - u) / (W + m): a study cannot talk itself
  into certainty it has not seen.
* ``min_trials``: below this many trials in all (default 8), the calibrator is the identity.

The maps are tabulated on a grid of u (``GRID`` points, even in logit u), so evaluating G is one ``np.interp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.forecasts import take_rows

__all__ = ["BUCKET_EDGES", "GRID", "CalibratedForecast", "CalibratedPredictor", "PITCalibrator",
           "pit_intervals", "prefix_bucket", "score_steps", "trial_weights"]

#: prefix-fraction buckets t / T: (0, 1/16], (1/16, 1/8], (1/8, 1/4], (1/4, 1/2], (1/2, 1)
BUCKET_EDGES = np.array([1 / 16, 1 / 8, 1 / 4, 1 / 2])
#: the u grid on which the maps are tabulated: even in logit(u), so that the tails of an
#: over-narrow forecast (PITs of 1e-6 or 1 - 1e-6) are resolved, plus the ends 0 and 1
GRID = np.concatenate([[0.0], 1.0 / (1.0 + np.exp(-np.linspace(-25.0, 25.0, 1023))), [1.0]])


def prefix_bucket(t: np.ndarray | int, horizon: int) -> np.ndarray:
    """Bucket index of prefix length(s) ``t`` of a curve with ``horizon`` epochs."""
    frac = np.asarray(t, dtype=np.float64) / float(max(horizon, 1))
    return np.searchsorted(BUCKET_EDGES, frac, side="left")


def _interval_ecdf(lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mixture of uniform distributions on [lo_i, hi_i] (points where lo = hi),
    its distribution function on ``GRID`` (unnormalised: total ``w.sum()``)."""
    if lo.size == 0:
        return np.zeros(GRID.shape[0])
    width = hi - lo
    point = width <= 1e-12
    out = np.zeros(GRID.shape[0])
    if point.any():
        # step functions: weight of samples with u <= grid value
        order = np.argsort(lo[point])
        us, ws = lo[point][order], np.cumsum(w[point][order])
        k = np.searchsorted(us, GRID, side="right")
        out += np.where(k > 0, ws[np.maximum(k - 1, 0)], 0.0)
    sp = ~point
    if sp.any():
        # piecewise linear: sum_i w_i clip((g - lo_i) / width_i, 0, 1), exactly, by sweeping the
        # slope changes at lo_i (+w/width) and hi_i (-w/width)
        a, b, wi = lo[sp], hi[sp], w[sp]
        slope = wi / width[sp]
        knots = np.concatenate([a, b])
        dslope = np.concatenate([slope, -slope])
        order = np.argsort(knots, kind="stable")
        knots, dslope = knots[order], dslope[order]
        cum_slope = np.cumsum(dslope)
        cum_int = np.concatenate([[0.0], np.cumsum(cum_slope[:-1] * np.diff(knots))])
        k = np.searchsorted(knots, GRID, side="right") - 1
        valid = k >= 0
        kk = np.maximum(k, 0)
        val = cum_int[kk] + cum_slope[kk] * (GRID - knots[kk])
        out += np.where(valid, val, 0.0)
    return out


class PITCalibrator:
    """Per-bucket recalibration maps fitted on weighted interval PITs (module docstring)."""

    def __init__(self, prior_weight: float = 4.0, min_trials: float = 8.0) -> None:
        self.prior_weight = float(prior_weight)
        self.min_trials = float(min_trials)
        self.maps_: np.ndarray | None = None  # (n_buckets, len(GRID)), or None: identity
        self.inverse_: np.ndarray | None = None
        self.pooled_: np.ndarray = GRID.copy()  # the map of a bucket without data of its own
        self.weight_: np.ndarray = np.zeros(len(BUCKET_EDGES) + 1)
        self.n_trials_ = 0.0

    @property
    def active(self) -> bool:
        return self.maps_ is not None

    def fit(self, bucket: np.ndarray, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray,
            n_trials: float | None = None, trial_weight: np.ndarray | None = None,
            ) -> PITCalibrator:
        """Fit from samples: bucket index, PIT interval [lo, hi], weight (see module docstring).
        ``n_trials`` is the (weighted) number of trials behind them (default: the weight of the
        largest bucket).  ``trial_weight``: each trial's weight (1, or 1/audit for audited
        trials); when given, the evidence counts as its effective sample size
        (sum w)^2 / sum w^2, not sum w, and ``min_trials`` counts trials, not weight: a few
        heavily weighted audited trials do not make the map confident."""
        bucket = np.asarray(bucket, dtype=np.int64).reshape(-1)
        lo = np.clip(np.asarray(lo, dtype=np.float64).reshape(-1), 0.0, 1.0)
        hi = np.clip(np.asarray(hi, dtype=np.float64).reshape(-1), 0.0, 1.0)
        hi = np.maximum(hi, lo)
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(w) & (w > 0)
        bucket, lo, hi, w = bucket[ok], lo[ok], hi[ok], w[ok]
        nb = max(len(BUCKET_EDGES) + 1, int(bucket.max()) + 1 if bucket.size else 0)
        self.weight_ = np.bincount(bucket, weights=w, minlength=nb)[:nb].astype(np.float64)
        self.n_trials_ = float(self.weight_.max()) if n_trials is None else float(n_trials)
        enough = self.n_trials_ >= self.min_trials
        if trial_weight is not None:
            tw = np.asarray(trial_weight, dtype=np.float64)
            tw = tw[np.isfinite(tw) & (tw > 0)]
            enough = tw.size >= self.min_trials
            if tw.size and self.n_trials_ > 0:
                ess = float(tw.sum() ** 2 / np.sum(tw ** 2))
                scale = ess / float(tw.sum())
                w = w * scale
                self.weight_ = self.weight_ * scale
                self.n_trials_ = ess
        if not enough or w.size == 0:
            self.maps_ = self.inverse_ = None
            return self
        m = self.prior_weight
        total = float(self.weight_.sum())
        # the pooled map: every bucket's samples, scaled to the trials they come from
        pooled_w = self.n_trials_ / total
        pooled = (_interval_ecdf(lo, hi, w) * pooled_w + m * GRID) / (self.n_trials_ + m)
        maps = np.empty((nb, GRID.shape[0]))
        for b in range(nb):
            sel = bucket == b
            wb = float(self.weight_[b])
            own = _interval_ecdf(lo[sel], hi[sel], w[sel])
            maps[b] = (own + m * pooled) / (wb + m)
        self.pooled_ = np.maximum.accumulate(np.clip(pooled, 0.0, 1.0))
        maps = np.maximum.accumulate(np.clip(maps, 0.0, 1.0), axis=1)
        maps[:, 0] = np.minimum(maps[:, 0], 0.0)
        maps[:, -1] = 1.0
        self.maps_ = maps
        return self

    def apply(self, u: np.ndarray, bucket: np.ndarray) -> np.ndarray:
        """G_b(u): calibrated probabilities of raw ones ``u`` (rows in ``bucket``)."""
        uu = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        if self.maps_ is None:
            return uu
        b = np.broadcast_to(np.asarray(bucket, dtype=np.int64), uu.shape)
        out = np.empty_like(uu)
        for k in np.unique(b):
            sel = b == k
            g = self.maps_[int(k)] if 0 <= k < self.maps_.shape[0] else self.pooled_
            out[sel] = np.interp(uu[sel], GRID, g)
        return out

    def inverse(self, q: float, bucket: int) -> float:
        """The raw level u with G_b(u) = q (the smallest such)."""
        if self.maps_ is None:
            return float(q)
        k = int(bucket)
        g = self.maps_[k] if 0 <= k < self.maps_.shape[0] else self.pooled_
        # g is non-decreasing; np.interp needs increasing x: nudge ties apart
        x = g + np.arange(g.shape[0]) * 1e-12
        return float(np.clip(np.interp(q, x, GRID), 0.0, 1.0))

    def state(self) -> dict[str, Any]:
        """A JSON-able summary (for logs and benchmark documents)."""
        return {"active": self.active, "n_trials": self.n_trials_,
                "bucket_weight": [float(x) for x in self.weight_]}


class CalibratedForecast:
    """A forecast seen through per-row calibration maps: cdf(y) = G_b(F(y)).

    ``quantile(q)`` is F^{-1}(G_b^{-1}(q)) (row by row, one base call per bucket); ``mean`` is
    the average of 64 mid-quantiles; ``logpdf`` differentiates G_b numerically (one grid cell).
    """

    def __init__(self, base: Any, calibrator: PITCalibrator, buckets: np.ndarray) -> None:
        self.base = base
        self.calibrator = calibrator
        self.buckets = np.asarray(buckets, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return int(self.buckets.shape[0])

    def take(self, rows: Any) -> CalibratedForecast:
        idx = np.atleast_1d(np.arange(len(self))[rows])
        return CalibratedForecast(take_rows(self.base, idx), self.calibrator, self.buckets[idx])

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        raw = np.asarray(self.base.cdf(y), dtype=np.float64)
        return self.calibrator.apply(raw, self.buckets)

    def quantile(self, q: float) -> np.ndarray:
        out = np.empty(len(self))
        for b in np.unique(self.buckets):
            sel = self.buckets == b
            u = self.calibrator.inverse(float(q), int(b))
            out[sel] = np.asarray(self.base.quantile(u), dtype=np.float64)[sel]
        return out

    @property
    def mean(self) -> np.ndarray:
        qs = (np.arange(64) + 0.5) / 64
        return np.mean([self.quantile(float(q)) for q in qs], axis=0)

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        raw = np.asarray(self.base.cdf(y), dtype=np.float64)
        base_lp = np.asarray(self.base.logpdf(y), dtype=np.float64)
        if self.calibrator.maps_ is None:
            return base_lp
        # dG/du by a central difference scaled to the grid's local spacing (even in logit u)
        h = np.maximum(np.minimum(raw, 1.0 - raw) * 0.05, 1e-12)
        lo = self.calibrator.apply(np.clip(raw - h, 0, 1), self.buckets)
        hi = self.calibrator.apply(np.clip(raw + h, 0, 1), self.buckets)
        dens = np.maximum((hi - lo) / np.maximum(np.minimum(raw + h, 1) - np.maximum(raw - h, 0),
                                                 1e-12), 1e-12)
        return base_lp + np.log(dens)


def pit_intervals(forecast: Any, y: np.ndarray, eps: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """[F(y-), F(y)] of each row at its true value ``y`` (the interval PIT)."""
    yy = np.asarray(y, dtype=np.float64)
    hi = np.asarray(forecast.cdf(yy), dtype=np.float64)
    lo = np.asarray(forecast.cdf(yy - eps), dtype=np.float64)
    return np.minimum(lo, hi), hi


def score_steps(until: int, n: int = 16) -> np.ndarray:
    """The prefix lengths of a trial that are scored for calibration: all of 1..until when
    there are at most ``n``, else ``n`` of them spread evenly in log t (every bucket keeps
    samples; each trial weighs 1 per bucket whatever their number, see :func:`trial_weights`)."""
    if until <= n:
        return np.arange(1, until + 1)
    return np.unique(np.round(np.geomspace(1, until, n)).astype(np.int64))


def trial_weights(steps: Sequence[int] | np.ndarray, horizon: int) -> np.ndarray:
    """Per sample weight 1 / (number of the trial's samples in the same bucket): each trial
    weighs 1 in every bucket it has samples in."""
    b = prefix_bucket(np.asarray(steps), horizon)
    counts = np.bincount(b, minlength=len(BUCKET_EDGES) + 1)
    return 1.0 / counts[b]


class CalibratedPredictor:
    """Any learning-curve predictor, recalibrated on the study's own trials.

    The engine and ``nas bench replay`` call :meth:`fit_study` on the refit schedule (off the
    scheduler hook's path) with the study's complete trials, each with a weight and the step up
    to which its prefixes count (``until``: the horizon for a trial that ran unflagged, the audit
    step for one the policy wanted to stop; see :class:`nas.policies.StopAudit`).  The PIT samples come
    from forecasts the base predictor makes *without having seen the curve*: a base that learns
    from curves (``learns_from_curves``, e.g. Baker's) is cross-fitted on two halves for the
    scores and refitted on all for the hook; a pre-trained one (the PFN) scores every curve as
    it is.  Until ``min_trials`` trials are in, forecasts are the raw ones.
    """

    learns_from_curves = True

    def __init__(self, base: Any, prior_weight: float = 4.0, min_trials: float = 8.0,
                 pit_cache: dict[Any, Any] | None = None) -> None:
        self.base = base
        self.name = getattr(base, "name", type(base).__name__)
        self.calibrator = PITCalibrator(prior_weight, min_trials)
        self.fit_seconds_ = 0.0
        # PITs of a fixed (non-learning) base do not change between refits: the engine passes
        # one dict for the whole study, so each completed trial is scored once
        self.pit_cache = pit_cache

    def __repr__(self) -> str:
        return f"CalibratedPredictor({self.base!r}, active={self.calibrator.active})"

    @property
    def base_learns(self) -> bool:
        return bool(getattr(self.base, "learns_from_curves", True))

    def fit(self, curves: Sequence[Any]) -> CalibratedPredictor:
        """The plain protocol: every curve complete, weight 1."""
        return self.fit_study(curves)

    def fit_study(self, curves: Sequence[Any], weights: Sequence[float] | None = None,
                  until: Sequence[int] | None = None, max_trials: int = 400,
                  ) -> CalibratedPredictor:
        """Fit the base on ``curves`` (complete), then the calibrator on the PITs of their
        prefixes: ``weights`` per trial (1/audit for audited ones), PITs only up to step
        ``until`` of each.  At most ``max_trials`` curves (a seeded random subset) are scored:
        the maps need a few hundred trials, not thousands."""
        import copy
        import time

        t0 = time.perf_counter()
        n = len(curves)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        lengths = [len(c) for c in curves]
        upto = lengths if until is None else [min(int(u), L - 1) for u, L in zip(until, lengths)]
        refit = getattr(self.base, "refit", None)
        fit_base = refit if callable(refit) and getattr(self.base, "model_name_", None) else None
        if self.base_learns:
            (fit_base or self.base.fit)(list(curves))
        # the scoring models: halves (cross-fitting) for a learning base, the base itself else
        scorers: list[tuple[Any, np.ndarray]] = []
        perm = np.random.default_rng(n).permutation(n)
        scored = perm[:max_trials]
        if self.base_learns and n >= 4:
            halves = [np.sort(scored[: scored.size // 2]), np.sort(scored[scored.size // 2:])]
            for k in (0, 1):
                model = copy.deepcopy(self.base)
                fitter = getattr(model, "refit", None)
                # each half is scored by a model that has not seen it (cross-fitting)
                train = [curves[i] for i in np.setdiff1d(np.arange(n), halves[k])]
                (fitter if callable(fitter) and getattr(model, "model_name_", None)
                 else model.fit)(train)
                scorers.append((model, halves[k]))
        elif not self.base_learns:
            scorers.append((self.base, np.sort(scored)))
        bs, los, his, ws = [], [], [], []
        cache = self.pit_cache if not self.base_learns else None
        for model, rows in scorers:
            batch, fin, steps, wt, keys, cached = [], [], [], [], [], []
            for i in rows:
                c = curves[int(i)]
                L, s = lengths[int(i)], upto[int(i)]
                if L < 2 or s < 1 or w[int(i)] <= 0:
                    continue
                ts = score_steps(s)
                vals = np.asarray(c.values, dtype=np.float64)
                key = (vals.tobytes(), s)
                if cache is not None and key in cache:
                    lo_c, hi_c = cache[key]
                    cached.append((prefix_bucket(ts, L), lo_c, hi_c, trial_weights(ts, L) * w[int(i)]))
                    continue
                for t in ts:
                    batch.append(_prefix(c, int(t)))
                fin.append(np.full(ts.shape[0], float(vals[L - 1])))
                steps.append(ts)
                keys.append(key)
                wt.append(trial_weights(ts, L) * w[int(i)])
            for b_c, lo_c, hi_c, w_c in cached:
                bs.append(b_c)
                los.append(lo_c)
                his.append(hi_c)
                ws.append(w_c)
            if not batch:
                continue
            horizon = lengths[int(rows[0])]
            fc = model.predict(batch, horizon)
            lo, hi = pit_intervals(fc, np.concatenate(fin))
            bs.append(prefix_bucket(np.concatenate(steps), horizon))
            los.append(lo)
            his.append(hi)
            ws.append(np.concatenate(wt))
            if cache is not None:
                at = np.cumsum([0] + [x.shape[0] for x in steps])
                for k, key in enumerate(keys):
                    cache[key] = (lo[at[k]:at[k + 1]], hi[at[k]:at[k + 1]])
        if bs:
            self.calibrator.fit(np.concatenate(bs), np.concatenate(los), np.concatenate(his),
                                np.concatenate(ws), n_trials=float(w[scored].sum()),
                                trial_weight=w[scored])
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    @property
    def reads_study(self) -> bool:
        return bool(getattr(self.base, "reads_study", False))

    def predict(self, curves: Sequence[Any], horizon: int, context: Any = None) -> Any:
        """The base's forecast (with the study ``context`` when the base reads it),
        recalibrated once the calibrator is active."""
        fc = (self.base.predict(curves, horizon, context=context)
              if context is not None and self.reads_study else self.base.predict(curves, horizon))
        if not self.calibrator.active:
            return fc
        steps = np.array([len(c) for c in curves])
        return CalibratedForecast(fc, self.calibrator, prefix_bucket(steps, horizon))


def _prefix(curve: Any, t: int) -> Any:
    from nas.interfaces import Curve

    return Curve(np.asarray(curve.values)[:t], curve.features, curve.group)
