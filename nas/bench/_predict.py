"""``nas bench predict``: how well a predictor forecasts final values from curve prefixes.

Protocol (issue 5, section 3), implemented exactly:

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
from nas.interfaces import Curve

__all__ = ["LOGLIK_BIN", "binned_loglik", "cutoff_length", "run_predict", "set_threads"]

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


def run_predict(
    cs: CurveSet,
    predictor: str,
    *,
    options: Mapping[str, Any] | None = None,
    cutoffs: Sequence[float] = (0.1, 0.2, 0.4),
    folds: int = 5,
    seed: int = 0,
    threads: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the predict protocol on ``cs`` and return the JSON document (see module docstring)."""
    from nas import registry

    cs.require_unit_range()
    if folds < 2:
        raise ConfigError(f"--folds is {folds}, but must be >= 2")
    for f in cutoffs:
        if not 0.0 < f < 1.0:
            raise ConfigError(f"cutoff {f} must lie in (0, 1)")
    set_threads(threads)
    T = cs.horizon
    groups = cs.groups()
    names = list(dict.fromkeys(groups.tolist()))
    keys = [f"{f:g}" for f in cutoffs]
    acc: dict[str, dict[str, list[np.ndarray]]] = {
        k: {m: [] for m in ("loglik", "mse", "cover", "last", "y", "active")} for k in keys}
    seconds = {k: 0.0 for k in keys}
    total_jobs = len(names) * folds
    job = 0
    for g in names:
        gidx = np.flatnonzero(groups == g)
        perm = np.random.default_rng(seed).permutation(gidx.shape[0])
        for k in range(folds):
            held = gidx[perm[k::folds]]
            train = np.setdiff1d(gidx, held)
            train = train[cs.lengths[train] == T]
            model = registry.create("predictor", predictor, dict(options or {}))
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
            job += 1
            if progress is not None:
                progress(f"predict {g[:40]} fold {k + 1}/{folds}", job, total_jobs)
    out: dict[str, Any] = {"predictor": predictor, "file": os.fspath(cs.source), "n": 0,
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
    return out
