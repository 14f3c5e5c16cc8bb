"""Research harness for stopping rules on cached pfn forecasts (issue 27, item 2).

The shipped pfn is pretrained and learns nothing from a study, so its forecast of (curve i,
prefix t) does not depend on the replay order: ``benchmarks/_sr_cache.py`` stores every
forecast once per family (CDF F and the upper integral S on a 201-point grid, exact for the
pfn's bar distribution at the grid points).  This module replays the protocol of
``nas bench replay`` on those forecasts, in numpy:

* per task group and seed s = 0..4, the group's complete curves in the order
  ``numpy.random.default_rng(s).permutation(n)``, one trial at a time;
* after each epoch t < T a rule decides, using only what a live study knows (the trial's prefix,
  its config features, the forecast, the best completed final, the values earlier trials recorded,
  their features, and the finals of completed trials);
* speedup = n*T / epochs consumed, regret = group best final - best completed final; means over
  seeds then groups; the worst (group, seed) regret; audit 0.

Because a study's state only changes when a trial ends, a rule decides a whole trial at once:
``rule.stop_step(study, i)`` returns the first epoch t < T at which it stops (or T).

    python benchmarks/stopping_rules.py check   # harness vs `nas bench replay` (asha, median, predictive)
    python benchmarks/stopping_rules.py table   # the tables of benchmarks/results/stopping_rules.md
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _sr_cache import GRID, cache_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = {
    "a": Path("/work/shared/data/taskset_dev.npz"),
    "b": ROOT / "benchmarks/data/taskset_learning.npz",
    "c": ROOT / "benchmarks/data/nas_corpus.npz",
    "d": Path("/work/wt27d/benchmarks/data/nas_corpus_d.npz"),
}
NG = GRID.size - 1


# -- forecasts on the grid ------------------------------------------------------------------
def ei_grid(F: np.ndarray, S: np.ndarray, best: float) -> np.ndarray:
    """E[(y_T - best)+] = int_best^1 (1 - F) for rows of grid forecasts (F, S: (m, 201))."""
    if best >= 1.0:
        return np.zeros(F.shape[0])
    x = max(best, 0.0) * NG
    k = min(int(math.floor(x)), NG - 1)
    fr = x - k
    Fb = F[:, k] * (1.0 - fr) + F[:, k + 1] * fr
    return S[:, k + 1] + (GRID[k + 1] - best) * (1.0 - 0.5 * (Fb + F[:, k + 1]))


def p_above(F: np.ndarray, bar: float) -> np.ndarray:
    """P(y_T > bar) for rows of grid forecasts."""
    if bar >= 1.0:
        return np.zeros(F.shape[0])
    x = max(bar, 0.0) * NG
    k = min(int(math.floor(x)), NG - 1)
    fr = x - k
    return 1.0 - (F[:, k] * (1.0 - fr) + F[:, k + 1] * fr)


# -- a family -------------------------------------------------------------------------------
@dataclass
class Family:
    name: str
    path: Path
    curves: np.ndarray
    groups: np.ndarray
    feats: np.ndarray | None
    T: int
    index: np.ndarray
    F: np.ndarray
    S: np.ndarray
    mean: np.ndarray

    @classmethod
    def load(cls, name: str, path: Path | None = None) -> Family:
        from nas.curvefile import load_curves

        path = Path(path or FAMILIES[name])
        cs = load_curves(path)
        cp = cache_path(path)
        if not cp.exists():
            from _sr_cache import build

            build(str(path), cp)
        z = np.load(cp)
        keep = cs.lengths == cs.horizon
        return cls(name, path, cs.curves, cs.groups(), cs.config_features, cs.horizon,
                   z["index"], z["F"], z["S"], z["mean"]) if keep.all() else _partial(cs, z, name, path)


def _partial(cs: Any, z: Any, name: str, path: Path) -> Family:
    raise SystemExit(f"{path}: incomplete curves are not supported by the harness")


# -- the study a rule sees ------------------------------------------------------------------
class Study:
    """What a live study knows while trial ``pos`` (curve row ``i``) runs."""

    def __init__(self, fam: Family, rows: np.ndarray) -> None:
        self.fam = fam
        self.rows = rows  # the group's file rows in replay order
        n, T = rows.size, fam.T
        self.T = T
        self.rec = np.full((n, T), np.nan)  # values recorded (NaN after a stop)
        self.stop = np.zeros(n, dtype=int)
        self.done = np.zeros(n, dtype=bool)
        self.pos = 0
        self.best: float | None = None
        self.n_complete = 0
        self.feats = None if fam.feats is None else fam.feats[rows]

    # helpers for rules
    def values_at(self, t: int, complete_only: bool = False) -> np.ndarray:
        col = self.rec[: self.pos, t - 1]
        if complete_only:
            col = col[self.done[: self.pos]]
        return col[~np.isnan(col)]

    def forecast(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        u = self.fam.index[i]
        return self.fam.F[u], self.fam.S[u]

    def record(self, i: int, stop: int) -> None:
        y = self.fam.curves[i]
        self.rec[self.pos, :stop] = y[:stop]
        self.stop[self.pos] = stop
        if stop == self.T:
            self.done[self.pos] = True
            self.n_complete += 1
            self.best = float(y[-1]) if self.best is None else max(self.best, float(y[-1]))
        self.pos += 1


@dataclass
class Result:
    speedup: float
    regret: float
    worst: float
    groups: dict[str, tuple[float, float]] = field(default_factory=dict)
    lost: list[dict[str, Any]] = field(default_factory=list)  # what decided each regret

    def short(self) -> str:
        return f"{self.speedup:.2f}x @ {self.regret:.4f} ({self.worst:.3f})"


def run(fam: Family, rule: Any, seeds: int = 5, explain: bool = False) -> Result:
    names = list(dict.fromkeys(fam.groups.tolist()))
    per: dict[str, tuple[float, float]] = {}
    worst = 0.0
    lost: list[dict[str, Any]] = []
    for g in names:
        idx = np.flatnonzero(fam.groups == g)
        best_all = float(fam.curves[idx, -1].max())
        sp, rg = [], []
        for s in range(seeds):
            order = np.random.default_rng(s).permutation(idx.size)
            st = Study(fam, idx[order])
            info: dict[int, Any] = {}
            for i in idx[order]:
                stop = int(rule.stop_step(st, int(i)))
                if explain and stop < fam.T:
                    info[int(i)] = (stop, st.best, getattr(rule, "last", None))
                st.record(int(i), stop)
            r = best_all - (st.best or 0.0)
            sp.append(idx.size * fam.T / st.stop.sum())
            rg.append(r)
            worst = max(worst, r)
            if explain and r > 0:
                fin = fam.curves[idx[order], -1]
                beat = [(float(fin[k]), int(idx[order][k])) for k in range(idx.size)
                        if fin[k] > (st.best or 0.0) and st.stop[k] < fam.T]
                f, row = max(beat)
                stop, b, why = info[row]
                lost.append({"group": g, "seed": s, "row": row, "stop": stop, "final": f,
                             "best_then": b, "regret": r, "why": why})
        per[g] = (float(np.mean(sp)), float(np.mean(rg)))
    return Result(float(np.mean([v[0] for v in per.values()])),
                  float(np.mean([v[1] for v in per.values()])), worst, per, lost)


# -- the peers and the current default --------------------------------------------------------
class Asha:
    def __init__(self, grace: int = 1, eta: float = 3.0) -> None:
        self.grace, self.eta = grace, eta

    def rungs(self, T: int) -> list[int]:
        n = int(np.log(T / self.grace) / np.log(self.eta) + 1)
        steps = {math.ceil(self.grace * self.eta**k - 1e-9) for k in range(n)}
        return sorted(s for s in steps if s < T)

    def stop_step(self, st: Study, i: int) -> int:
        y = st.fam.curves[i]
        for t in self.rungs(st.T):
            v = st.values_at(t)
            if v.size and y[t - 1] < np.percentile(v, (1 - 1 / self.eta) * 100):
                return t
        return st.T


class Median:
    def __init__(self, startup: int = 5) -> None:
        self.startup = startup

    def stop_step(self, st: Study, i: int) -> int:
        if st.n_complete == 0 or st.n_complete < self.startup:
            return st.T
        y = st.fam.curves[i]
        run_best = np.maximum.accumulate(y)
        med = np.median(st.rec[: st.pos][st.done[: st.pos]], axis=0)
        hit = np.flatnonzero(run_best[: st.T - 1] < med[: st.T - 1])
        return int(hit[0]) + 1 if hit.size else st.T


class Predictive:
    """P(y_T > best + eps) < delta (the current default: delta .002, eps .01)."""

    def __init__(self, delta: float = 0.002, eps: float = 0.01) -> None:
        self.delta, self.eps = delta, eps

    def stop_step(self, st: Study, i: int) -> int:
        if st.best is None:
            return st.T
        F, _ = st.forecast(i)
        p = p_above(F, st.best + self.eps)
        hit = np.flatnonzero(p < self.delta)
        return int(hit[0]) + 1 if hit.size else st.T


class EIRule:
    """Stop when EI = E[(y_T - best)+] < tol (prefix only)."""

    def __init__(self, tol: float = 8e-4) -> None:
        self.tol = tol

    def stop_step(self, st: Study, i: int) -> int:
        if st.best is None:
            return st.T
        F, S = st.forecast(i)
        ei = ei_grid(F, S, st.best)
        hit = np.flatnonzero(ei < self.tol)
        self.last = None if not hit.size else {"ei": float(ei[hit[0]])}
        return int(hit[0]) + 1 if hit.size else st.T
