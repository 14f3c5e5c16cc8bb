"""``nas bench predict``: how well a predictor forecasts final values from curve prefixes.

Protocol, implemented exactly:

* per task group (the file's ``task``; one group ``all`` without it), in file order, take
  ``perm = numpy.random.default_rng(seed).permutation(n_group)``; fold k holds the curves at
  positions ``perm[k::folds]``;
* a fresh predictor (``nas.registry.create("predictor", name, options)``) is fitted on the other
  folds' *complete* curves (length = the file's T);
* every held-out curve of length L >= 2 shows its first ``c = min(L-1, max(1, round(f*L)))``
  values (Python's ``round``) and the predictor forecasts y_L (``horizon = L``), batched;
* per cutoff, means over all those curves of: the binned log-likelihood
  ``log(max(F(y+h) - F(y-h), 1e-9) / 2h)`` with h = 0.005; the MSE of the predictive mean;
  ``coverage90`` = share with ``q05 <= y <= q95``; the MSE of the last observed value; and the
  prediction time per curve (``us_per_curve``; the thread count is in the JSON).

**Study context** (``context=True``, the default, for a predictor that declares
``reads_study``): each held-out curve is forecast with its group's *earlier* curves as a
:class:`~nas.interfaces.StudyContext`, as a sequential random search would have them:

* the order is the group's ``perm`` above (the fold permutation; ``nas bench replay``'s seed-s
  order is the same permutation for s = seed), and a curve's context is the ``max_context``
  (100) curves just before it in that order, whatever their fold;
* each earlier curve is cut where a median rule would have stopped it: at the rungs
  ``r1 = max(1, round(T/9))`` and ``r2 = max(1, round(T/3))``, a curve whose value at the rung
  is below the median of the values at that rung of the curves before *it* (in the order, among
  those that reached the rung; at least 3 of them) stops there; the others run to the end
  (``complete``);
* config features travel with the curves when the file has them; the held-out curve itself
  shows its prefix only.  One predict call per held-out curve and cutoff (each has its own
  context), with a fresh ``version`` per call.

``context=False`` (``--no-context``) forecasts from the prefix alone.

Extra (not part of the protocol, read by nobody but people): ``tail_calibration`` per cutoff,
the reliability of the tail probability P(y_L > y_ref) that the predictive policy thresholds,
with y_ref the best final of a random subset of the fold's training curves (see
:func:`tail_calibration`).

Called by the CLI (``nas/cli/_bench.py``) and by tests; returns the JSON document as a dict.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nas.curvefile import CurveSet
from nas.errors import ConfigError
from nas.interfaces import Curve, StudyContext, predictor_caps

__all__ = ["LOGLIK_BIN", "TAIL_BINS", "binned_loglik", "cutoff_length", "median_rule_lengths",
           "run_predict", "set_threads", "tail_calibration"]

#: the context curves a held-out curve sees: the ones just before it in the group's order
CONTEXT_SIZE = 100

LOGLIK_BIN = 0.005
_FLOOR = 1e-9

Progress = Callable[[str, int, int], None]


def cutoff_length(f: float, length: int) -> int:
    """Observed prefix length for cutoff ``f`` of a curve of ``length`` values."""
    return min(length - 1, max(1, round(f * length)))


def binned_loglik(forecast: Any, y: np.ndarray, h: float = LOGLIK_BIN) -> np.ndarray:
    """log((F(y + h) - F(y - h)) / 2h), the mass floored at 1e-9 (see the module docstring)."""
    mass = np.asarray(forecast.cdf(y + h)) - np.asarray(forecast.cdf(y - h))
    return np.log(np.maximum(mass, _FLOOR) / (2.0 * h))


#: bins of the forecast tail probability P(y_L > y_ref) in the ``tail_calibration`` block
TAIL_BINS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _reference_best(finals: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """For n held-out curves, the best final of a random subset of the training curves (size
    log-uniform in [5, 200], capped at what there is): the y_best a study would hold after that
    many completions, the threshold the predictive policy compares with."""
    if finals.shape[0] == 0:
        return np.full(n, np.inf)
    hi = min(200, finals.shape[0])
    lo = min(5, hi)
    sizes = np.round(np.exp(rng.uniform(np.log(lo), np.log(hi) + 1e-12, n))).astype(np.int64)
    sizes = np.clip(sizes, 1, finals.shape[0])
    return np.array([finals[rng.choice(finals.shape[0], s, replace=False)].max() for s in sizes])


def tail_calibration(p: np.ndarray, hit: np.ndarray) -> dict[str, Any]:
    """Reliability of the tail probability that the predictive policy thresholds: per bin of the
    forecast P(y_L > y_ref) (``TAIL_BINS``), the number of cases, their mean forecast and the
    observed frequency of y_L > y_ref; plus, for delta 0.05 and 0.01, the share of cases below
    delta (stopped) and the share of the actual exceedances among them (lost)."""
    ok = np.isfinite(p)
    p, hit = np.clip(p[ok], 0.0, 1.0), hit[ok]
    bins = []
    idx = np.clip(np.searchsorted(TAIL_BINS, p, side="right") - 1, 0, len(TAIL_BINS) - 2)
    for b in range(len(TAIL_BINS) - 1):
        sel = idx == b
        n = int(sel.sum())
        bins.append({"lo": TAIL_BINS[b], "hi": TAIL_BINS[b + 1], "n": n,
                     "mean_p": float(p[sel].mean()) if n else None,
                     "freq": float(hit[sel].mean()) if n else None})
    out: dict[str, Any] = {"n": int(p.shape[0]), "events": int(hit.sum()), "bins": bins}
    for d in (0.05, 0.01):
        below = p < d
        out[f"stopped_at_{d:g}"] = float(below.mean()) if p.size else None
        out[f"lost_at_{d:g}"] = float(hit[below].sum() / max(hit.sum(), 1.0))
    return out


def set_threads(threads: int) -> None:
    """Limit BLAS/OpenMP pools (and torch, when loaded) to ``threads`` for timing."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _curves(cs: CurveSet, idx: Sequence[int], cut: Sequence[int] | None = None) -> list[Curve]:
    feats = cs.config_features
    groups = cs.groups()
    out = []
    for k, i in enumerate(idx):
        n = int(cs.lengths[i]) if cut is None else int(cut[k])
        out.append(Curve(cs.curves[i, :n], None if feats is None else feats[i], str(groups[i])))
    return out


def median_rule_lengths(curves: np.ndarray, lengths: np.ndarray, order: np.ndarray
                        ) -> np.ndarray:
    """How far each curve of a group ran when replayed in ``order`` under the median rule at
    rungs T/9 and T/3 (see the module docstring).  ``curves`` (n, T), ``lengths`` (n,)."""
    n = curves.shape[0]
    T = curves.shape[1]
    rungs = sorted({max(1, round(T / 9)), max(1, round(T / 3))})
    ran = lengths.astype(np.int64).copy()
    seen: dict[int, list[float]] = {r: [] for r in rungs}
    for i in order:
        for r in rungs:
            if ran[i] < r or r >= lengths[i]:
                break
            v = float(curves[i, r - 1])
            prev = seen[r]
            prev.append(v)
            if len(prev) > 3 and v < float(np.median(prev[:-1])):
                ran[i] = r
                break
    del n
    return ran


def _context_for(cs: CurveSet, gidx: np.ndarray, order: np.ndarray, ran: np.ndarray,
                 pos: int, version: int) -> StudyContext:
    """The context of the curve at position ``pos`` of the group's ``order``."""
    feats = cs.config_features
    T = cs.horizon
    before = order[max(0, pos - CONTEXT_SIZE):pos]
    curves = tuple(Curve(cs.curves[gidx[j], :ran[j]],
                         None if feats is None else feats[gidx[j]]) for j in before)
    complete = tuple(bool(ran[j] >= cs.lengths[gidx[j]]) for j in before)
    return StudyContext(curves, complete, T, version)


def run_predict(
    cs: CurveSet,
    predictor: str,
    *,
    options: Mapping[str, Any] | None = None,
    cutoffs: Sequence[float] = (0.1, 0.2, 0.4),
    folds: int = 5,
    seed: int = 0,
    threads: int = 1,
    calibrate: bool = True,
    progress: Progress | None = None,
    context: bool = True,
) -> dict[str, Any]:
    """Run the predict protocol on ``cs`` and return the JSON document (see module docstring).

    ``calibrate``: wrap the predictor in :class:`nas.calibration.CalibratedPredictor`, whose
    maps are fitted on the training folds' curves only (as ``nas run`` does on a study's
    completed trials)."""
    from nas import registry
    from nas.calibration import CalibratedPredictor

    cs.require_unit_range()
    if folds < 2:
        raise ConfigError(f"--folds = {folds}: must be >= 2")
    for f in cutoffs:
        if not 0.0 < f < 1.0:
            raise ConfigError(f"cutoff {f} must lie in (0, 1)")
    set_threads(threads)
    T = cs.horizon
    groups = cs.groups()
    names = list(dict.fromkeys(groups.tolist()))
    keys = [f"{f:g}" for f in cutoffs]
    acc: dict[str, dict[str, list[np.ndarray]]] = {
        k: {m: [] for m in ("loglik", "mse", "cover", "last", "y", "active", "tail_p", "tail_hit")} for k in keys}
    seconds = {k: 0.0 for k in keys}
    total_jobs = len(names) * folds
    job = 0
    version = 0
    reads = context and predictor_caps(registry.create("predictor", predictor, dict(options or {}))
                                       )["reads_study"]
    for g in names:
        gidx = np.flatnonzero(groups == g)
        perm = np.random.default_rng(seed).permutation(gidx.shape[0])
        if reads:
            ran = median_rule_lengths(cs.curves[gidx], cs.lengths[gidx], perm)
            where = np.empty(gidx.shape[0], dtype=np.int64)
            where[perm] = np.arange(gidx.shape[0])
            local = {int(i): k for k, i in enumerate(gidx)}
        for k in range(folds):
            held = gidx[perm[k::folds]]
            train = np.setdiff1d(gidx, held)
            train = train[cs.lengths[train] == T]
            model = registry.create("predictor", predictor, dict(options or {}))
            if calibrate:
                model = CalibratedPredictor(model)
            tail_rng = np.random.default_rng([seed, k, len(names), names.index(g)])
            set_threads(threads)
            model.fit(_curves(cs, train))
            held = held[cs.lengths[held] >= 2]
            for key, f in zip(keys, cutoffs):
                lengths = cs.lengths[held]
                for L in np.unique(lengths):
                    rows = held[lengths == L]
                    c = [cutoff_length(f, int(L))] * rows.shape[0]
                    batch = _curves(cs, rows, c)
                    t0 = time.perf_counter()
                    if reads:
                        parts = []
                        for r, cv in zip(rows, batch):
                            version += 1
                            ctx = _context_for(cs, gidx, perm, ran, int(where[local[int(r)]]), version)
                            parts.append(model.predict([cv], int(L), context=ctx))
                        fc = _Stacked(parts)
                    else:
                        fc = model.predict(batch, int(L))
                    mean = np.asarray(fc.mean, dtype=np.float64)
                    seconds[key] += time.perf_counter() - t0
                    y = cs.curves[rows, int(L) - 1]
                    q05, q95 = np.asarray(fc.quantile(0.05)), np.asarray(fc.quantile(0.95))
                    bucket = acc[key]
                    bucket["loglik"].append(binned_loglik(fc, y))
                    bucket["mse"].append((mean - y) ** 2)
                    bucket["cover"].append(((y >= q05) & (y <= q95)).astype(np.float64))
                    bucket["last"].append((cs.curves[rows, c[0] - 1] - y) ** 2)
                    bucket["active"].append(np.nanmax(cs.curves[rows], axis=1) > 0.1)
                    ref = _reference_best(cs.curves[train, T - 1], rows.shape[0], tail_rng)
                    bucket["tail_p"].append(1.0 - np.asarray(fc.cdf(ref), dtype=np.float64))
                    bucket["tail_hit"].append((y > ref).astype(np.float64))
            job += 1
            if progress is not None:
                progress(f"predict {g[:40]} fold {k + 1}/{folds}", job, total_jobs)
    out: dict[str, Any] = {"predictor": predictor, "calibrated": bool(calibrate),
                           "context": bool(reads),
                           "file": os.fspath(cs.source), "n": 0,
                           "folds": folds, "seed": seed, "threads": threads, "cutoffs": {},
                           "active": {}}
    for key in keys:
        a: dict[str, np.ndarray] = {m: np.concatenate(v) if v else np.zeros(0)
                                    for m, v in acc[key].items()}
        n = int(a["mse"].shape[0])
        out["n"] = n
        out["cutoffs"][key] = {
            "loglik": float(a["loglik"].mean()) if n else None,
            "mse": float(a["mse"].mean()) if n else None,
            "coverage90": float(a["cover"].mean()) if n else None,
            "us_per_curve": 1e6 * seconds[key] / n if n else None,
            "mse_last_value": float(a["last"].mean()) if n else None,
        }
        act = a["active"].astype(bool)
        m = int(act.sum())
        out["active"][key] = {
            "n": m,
            "loglik": float(a["loglik"][act].mean()) if m else None,
            "mse": float(a["mse"][act].mean()) if m else None,
            "coverage90": float(a["cover"][act].mean()) if m else None,
            "mse_last_value": float(a["last"][act].mean()) if m else None,
        }
        out.setdefault("tail_calibration", {})[key] = tail_calibration(a["tail_p"], a["tail_hit"])
    return out


class _Stacked:
    """One-curve forecasts read as one batch (mean, quantile, cdf per curve)."""

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = list(parts)

    @property
    def mean(self) -> np.ndarray:
        return np.concatenate([np.atleast_1d(np.asarray(p.mean, dtype=np.float64)) for p in self.parts])

    def quantile(self, q: float) -> np.ndarray:
        return np.concatenate([np.atleast_1d(np.asarray(p.quantile(q))) for p in self.parts])

    def cdf(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return np.concatenate([np.atleast_1d(np.asarray(p.cdf(y[i:i + 1] if y.ndim else y)))
                               for i, p in enumerate(self.parts)])
