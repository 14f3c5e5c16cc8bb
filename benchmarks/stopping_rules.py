"""Research harness for stopping rules on cached pfn forecasts.

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

from _sr_cache import GRID, cache_path

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
    k = min(math.floor(x), NG - 1)
    fr = x - k
    Fb = F[:, k] * (1.0 - fr) + F[:, k + 1] * fr
    return S[:, k + 1] + (GRID[k + 1] - best) * (1.0 - 0.5 * (Fb + F[:, k + 1]))


def p_above(F: np.ndarray, bar: float) -> np.ndarray:
    """P(y_T > bar) for rows of grid forecasts."""
    if bar >= 1.0:
        return np.zeros(F.shape[0])
    x = max(bar, 0.0) * NG
    k = min(math.floor(x), NG - 1)
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
    file_rows: np.ndarray | None = None  # row in the file of each (complete) curve

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
        keep = np.flatnonzero(cs.lengths == cs.horizon)  # as nas bench replay: complete curves
        feats = None if cs.config_features is None else cs.config_features[keep]
        return cls(name, path, cs.curves[keep], cs.groups()[keep], feats, cs.horizon,
                   z["index"][keep], z["F"], z["S"], z["mean"], keep)


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


def run(fam: Family, rule: Any, seeds: int = 5, explain: bool = False,
        audit: float = 0.0) -> Result:
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
            aud = None
            if audit > 0:
                from nas.policies import StopAudit

                aud = StopAudit(audit, seed=s)
            for i in idx[order]:
                stop = int(rule.stop_step(st, int(i)))
                if aud is not None and stop < fam.T and aud.draw(st.pos):
                    stop = fam.T  # audited: runs on to its horizon, as nas bench replay

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
                frow = row if fam.file_rows is None else int(fam.file_rows[row])
                lost.append({"group": g, "seed": s, "row": frow, "stop": stop, "final": f,
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


def config_ei(st: Study, k: int, sigma: float) -> float:
    """Expected improvement over the best from the config features alone: the finals of the k
    completed trials nearest in (standardised) config space, each smoothed by N(0, sigma^2)."""
    if st.feats is None or st.best is None:
        return 0.0
    from scipy.special import ndtr

    X = st.feats[: st.pos + 1]
    sd = X.std(axis=0)
    ok = sd > 0
    if not ok.any():
        return 0.0
    Z = X[:, ok] / sd[ok]
    done = np.flatnonzero(st.done[: st.pos])
    if done.size == 0:
        return 0.0
    d = np.sqrt(((Z[done] - Z[-1]) ** 2).sum(1))
    kk = min(k, done.size)
    near = done[np.argpartition(d, kk - 1)[:kk]]
    f = st.rec[near, st.T - 1]
    z = (f - st.best) / sigma
    return float(np.mean(sigma * (np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) + z * ndtr(z))))


class Hybrid:
    """EI < k_lo stops alone; at an ASHA rung (grace, eta) a value below the rung's (1 - 1/eta)
    quantile stops when EI < k_hi, unless the config vouches for the trial (config EI >= k_cfg)."""

    def __init__(self, k_lo: float = 8e-4, k_hi: float = 1e-2, eta: float = 3.0, grace: int = 1,
                 cfg: dict[str, float] | None = None, trust: tuple[str, float] | None = None,
                 floor: tuple[float, float] | None = None) -> None:
        self.floor = floor  # (tau, gamma): EI stops need EI < gamma * min contender EI at t
        self.lo2: float | None = None  # EI stops at steps where a bloomer was seen need EI < lo2
        self.k_lo, self.k_hi, self.cfg, self.trust = k_lo, k_hi, cfg, trust
        self.asha = Asha(grace, eta)
        self.last: Any = None

    def stop_step(self, st: Study, i: int) -> int:
        if st.best is None:
            return st.T
        F, S = st.forecast(i)
        ei = ei_grid(F, S, st.best)
        lo = np.full(ei.shape, self.k_lo)
        if self.floor is not None:
            tau, gamma = self.floor
            done = np.flatnonzero(st.done[: st.pos])
            cont = done[st.rec[done, -1] >= st.best - tau]
            for j in st.rows[cont]:
                Fj, Sj = st.forecast(int(j))
                lo = np.minimum(lo, gamma * ei_grid(Fj, Sj, st.best))
        stop = ei < lo
        y = st.fam.curves[i]
        if self.lo2 is not None and self.trust is not None:
            for t in np.flatnonzero(stop) + 1:
                if ei[t - 1] < self.lo2:
                    break
                v = st.values_at(int(t))
                if v.size and self.bloomed(st, int(t), np.percentile(v, (1 - 1 / self.asha.eta) * 100)):
                    stop[t - 1] = False
                else:
                    break
        cei = None
        if self.k_hi > self.k_lo:
            for t in self.asha.rungs(st.T):
                if stop[: t].any():
                    break
                v = st.values_at(t)
                if not v.size:
                    continue
                cut = np.percentile(v, (1 - 1 / self.asha.eta) * 100)
                if y[t - 1] < cut and ei[t - 1] < self.k_hi and not self.bloomed(st, t, cut):
                    if self.cfg is not None:
                        if cei is None:
                            cei = config_ei(st, int(self.cfg["k"]), self.cfg["sigma"])
                        if cei >= self.cfg["k_cfg"]:
                            continue
                    stop[t - 1] = True
                    break
        hit = np.flatnonzero(stop)
        if not hit.size:
            return st.T
        t = int(hit[0]) + 1
        self.last = {"ei": float(ei[t - 1]), "cfg_ei": cei, "y_t": float(y[t - 1])}
        return t

    def bloomed(self, st: Study, t: int, cut: float) -> bool:
        """Whether this study has seen a trial below rung t's cutoff that came within tau of the
        best: ('final', tau) among completed trials, ('traj', tau) anywhere in a later value."""
        if self.trust is None:
            return False
        kind, tau = self.trust
        R = st.rec[: st.pos]
        low = R[:, t - 1] < cut
        if kind == "final":
            sel = low & st.done[: st.pos]
            return bool(sel.any() and (R[sel, -1] >= st.best - tau).any())
        later = np.nanmax(np.where(np.isnan(R[low, t:]), -1.0, R[low, t:]), axis=1) \
            if low.any() else np.zeros(0)
        return bool((later >= st.best - tau).any())


class Regret:
    """The regret rule (research version of nas.policies.RegretPolicy).

    Contenders: completed trials whose final came within ``tau`` of the best.  A step t is
    *protected* for the trial when some contender had recorded a value <= the trial's value at t
    (this study has seen a run that looked no better at t and still became a contender).
      - EI < tol_min stops always;
      - EI < tol stops at unprotected steps;
      - at a rung (ASHA, ``eta``), a value below the rung's (1 - 1/eta) quantile of the values
        earlier trials recorded there stops when EI < tol_rung, at unprotected steps.
    """

    def __init__(self, tol: float = 1.5e-3, tol_min: float = 8e-4, tol_rung: float = 2e-2,
                 eta: float = 2.0, tau: float = 0.2, margin: float = 0.0,
                 partial: bool = False, cfg_k: int = 0, min_cont: int = 0,
                 analogs: int = 0, lift: float | None = None, top: str | int | None = None,
                 rel: float | None = None) -> None:
        self.rel = rel  # not None: contender gap = min(tau, rel * (best - median completed final))
        self.top = top  # contenders also among the top (int) or sqrt(n_complete) ("sqrt")
        self.lift = lift  # not None: a contender protects t only if its gain from t to T would
        # lift this trial to >= best - lift
        self.analogs = analogs  # > 0: stop when >= this many completed analogs (within margin
        # at t) exist and none of their gains from t to T would lift the trial above the best
        self.min_cont = min_cont  # fewer contenders than this: every step is protected
        self.partial = partial  # contenders: any earlier trial whose record came within tau
        self.cfg_k = cfg_k  # > 0: protected everywhere when one of the k nearest completed
        # trials in (standardised) config space is a contender
        self.tol, self.tol_min, self.tol_rung, self.tau, self.margin = tol, tol_min, tol_rung, tau, margin
        self.asha = Asha(1, eta)
        self.last: Any = None

    def stop_step(self, st: Study, i: int) -> int:
        if st.best is None:
            return st.T
        T = st.T
        F, S = st.forecast(i)
        ei = ei_grid(F, S, st.best)
        y = st.fam.curves[i][: T - 1]
        if self.partial:
            R = st.rec[: st.pos]
            cont = np.flatnonzero(np.nanmax(np.where(np.isnan(R), -1, R), axis=1) >= st.best - self.tau)
        else:
            done = np.flatnonzero(st.done[: st.pos])
            tau = self.tau
            if self.rel is not None and done.size:
                tau = min(tau, self.rel * (st.best - float(np.median(st.rec[done, -1]))))
            cont = done[st.rec[done, -1] >= st.best - tau]
            if self.top is not None and cont.size:
                m = math.ceil(math.sqrt(done.size)) if self.top == "sqrt" else int(self.top)
                cont = cont[np.argsort(-st.rec[cont, -1], kind="stable")[:m]]
        Yk = st.rec[cont]
        if self.lift is None:
            prot = (Yk[:, : T - 1] <= y[None, :] + self.margin).any(axis=0)
        else:
            gain_ok = y[None, :] + (Yk[:, T - 1:T] - Yk[:, : T - 1]) >= st.best - self.lift
            prot = ((Yk[:, : T - 1] <= y[None, :] + self.margin) & gain_ok).any(axis=0)
        thin = cont.size < self.min_cont  # too few contenders: EI stops need EI < tol_min
        if self.cfg_k and st.feats is not None and cont.size:
            X = st.feats[: st.pos + 1]
            sd = X.std(axis=0)
            ok = sd > 0
            done = np.flatnonzero(st.done[: st.pos])
            if ok.any() and done.size:
                Z = X[:, ok] / sd[ok]
                d = ((Z[done] - Z[-1]) ** 2).sum(1)
                kk = min(self.cfg_k, done.size)
                near = done[np.argpartition(d, kk - 1)[:kk]]
                if np.isin(near, cont).any():
                    prot[:] = True
        stop = (ei < self.tol_min) | ((ei < self.tol) & ~prot & ~thin)
        if self.analogs and not thin:
            done = np.flatnonzero(st.done[: st.pos])
            Yc = st.rec[done]
            near = np.abs(Yc[:, : T - 1] - y[None, :]) <= self.margin
            lift = y[None, :] + (Yc[:, T - 1:T] - Yc[:, : T - 1])
            top = np.where(near, lift, -np.inf).max(axis=0) if done.size else np.full(T - 1, np.inf)
            stop |= (near.sum(0) >= self.analogs) & (top < st.best) & ~prot
        why = ["EI"] * (T - 1)
        for t in self.asha.rungs(T):
            if stop[: t].any():
                break
            if prot[t - 1] or ei[t - 1] >= self.tol_rung:
                continue
            v = st.values_at(t)
            if v.size and y[t - 1] < np.percentile(v, (1 - 1 / self.asha.eta) * 100):
                stop[t - 1] = True
                why[t - 1] = "rung"
                break
        hit = np.flatnonzero(stop)
        if not hit.size:
            return T
        t = int(hit[0]) + 1
        self.last = {"ei": float(ei[t - 1]), "by": why[t - 1], "protected": bool(prot[t - 1]),
                     "y_t": float(y[t - 1]), "mean": float(st.fam.mean[st.fam.index[i, t - 1]])}
        return t


# -- sweeps, leave-one-family-out, tables -----------------------------------------------------
ANCHORS = {"a": 1884, "b": 174, "c": 259}  # late bloomers that must never cause regret
GRID_REGRET = [{"tol": tol, "tol_min": 8e-4, "tol_rung": rung, "eta": eta, "tau": 0.2,
                "margin": m, "min_cont": mc, "analogs": an}
               for an in (3, 0) for mc in (3, 0) for eta in (2.0, 3.0) for tol in (1.5e-3, 1e-3, 2e-3)
               for rung in (8e-2, 2e-2, 4e-2) for m in (0.05, 0.1)]


def summary(fam: Family, rule: Any, audit: float = 0.0) -> dict[str, Any]:
    r = run(fam, rule, explain=True, audit=audit)
    anchor = ANCHORS.get(fam.name)
    return {"speedup": r.speedup, "regret": r.regret, "worst": r.worst,
            "anchor_lost": sum(1 for x in r.lost if x["row"] == anchor),
            "lost": [{k: v for k, v in x.items()} for x in r.lost]}


def sweep(names: str, out: Path) -> None:
    res: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    for k in names:
        fam = Family.load(k)
        grid = GRID_REGRET if k != "a" else [c for c in GRID_REGRET if c["margin"] == 0.05]
        for cfg in grid:  # (a) is the slow family: margin 0.1 (dominated on b-d) left out
            key = json.dumps(cfg, sort_keys=True)
            if key in res.get(k, {}):
                continue
            res.setdefault(k, {})[key] = summary(fam, Regret(**cfg))
            out.write_text(json.dumps(res, default=float))
            print(k, key, f"{res[k][key]['speedup']:.2f}x @ {res[k][key]['regret']:.4f}", flush=True)


def replay_policy(fam: Family, policy: Any, seeds: int = 5) -> Result:
    """The policy object itself through ``nas.bench._replay.replay_group`` with the real pfn
    (the cross-check of the harness; slow: computes the pfn forecasts it needs)."""
    import torch

    from nas.bench._replay import _ForecastCache, replay_group
    from predictors.pfn import PFNPredictor

    torch.set_num_threads(1)
    per: dict[str, tuple[float, float]] = {}
    worst = 0.0
    for g in dict.fromkeys(fam.groups.tolist()):
        idx = np.flatnonzero(fam.groups == g)
        curves = fam.curves[idx]
        feats = None if fam.feats is None else fam.feats[idx]
        pred = PFNPredictor(threads=1)
        cache = _ForecastCache(pred, curves, feats, g)
        sp, rg = [], []
        for s in range(seeds):
            order = np.random.default_rng(s).permutation(idx.size)
            r = replay_group(curves, feats, g, policy, order, pred, cache)
            sp.append(idx.size * fam.T / r.consumed)
            rg.append(float(curves[:, -1].max()) - r.best)
            worst = max(worst, rg[-1])
        per[g] = (float(np.mean(sp)), float(np.mean(rg)))
    return Result(float(np.mean([v[0] for v in per.values()])),
                  float(np.mean([v[1] for v in per.values()])), worst, per)


DEFAULT = {"tol": 1.5e-3, "tol_min": 8e-4, "tol_rung": 8e-2, "eta": 2.0, "tau": 0.2,
           "margin": 0.05, "min_cont": 3, "analogs": 3}
PEERS = {"asha": lambda: Asha(), "median": lambda: Median()}


def bar(fam_res: dict[str, Any], peers: dict[str, dict[str, Any]]) -> tuple[bool, bool, float]:
    """(holds, 1.5x, speed ratio to the faster peer) of one result on one family."""
    fast = max(peers.values(), key=lambda r: r["speedup"])
    ratio = fam_res["speedup"] / fast["speedup"]
    ok = (ratio >= 1.0 and fam_res["regret"] <= max(fast["regret"], 0.005) + 1e-12
          and not fam_res["anchor_lost"])
    return ok, bool(ok and ratio >= 1.5 and fam_res["regret"] <= 0.005), ratio


def fmt(r: dict[str, Any]) -> str:
    return f"{r['speedup']:.2f}x @ {r['regret']:.4f} ({r['worst']:.3f})"


def lofo(sweep_res: dict[str, Any], peers: dict[str, Any], fams: list[str],
         fixed: dict[str, Any] | None = None) -> list[str]:
    """For each family: the grid setting chosen on the others, evaluated on it.  Chosen = holds
    the bar on the most of the others, then the most 1.5x passes, then the largest worst-case
    speed ratio to the faster peer."""
    lines = [("| held out | setting chosen on the others | holds on the others | on the held-out "
             "family | faster peer | bar | 1.5x |"), "|---|---|---|---|---|---|---|"]
    keys = [k for k in sweep_res[fams[0]] if all(k in sweep_res[f] for f in fams)]
    if fixed:
        keys = [k for k in keys if all(json.loads(k)[o] == v for o, v in fixed.items())]
    for h in fams:
        train = [f for f in fams if f != h]
        best_key, best_score = None, None
        for key in keys:
            checks = [bar(sweep_res[f][key], peers[f]) for f in train]
            score = (sum(c[0] for c in checks), sum(c[1] for c in checks),
                     min(c[2] for c in checks))
            if best_score is None or score > best_score:
                best_key, best_score = key, score
        assert best_key is not None and best_score is not None
        r = sweep_res[h][best_key]
        ok, x15, ratio = bar(r, peers[h])
        fast = max(peers[h].items(), key=lambda kv: kv[1]["speedup"])
        cfg = json.loads(best_key)
        short = ", ".join(f"{k} {v:g}" for k, v in cfg.items() if k not in ("tol_min", "tau"))
        lines.append(f"| ({h}) | {short} | {best_score[0]}/{len(train)} | {fmt(r)} | "
                     f"{fast[0]} {fmt(fast[1])} | {'holds' if ok else 'FAILS'} | "
                     f"{'yes' if x15 else 'no'} ({ratio:.2f}x) |")
    return lines


def table(fams: list[str], sweep_file: Path | None) -> str:
    out: list[str] = []
    rows = [("asha (grace 1, eta 3)", lambda: Asha()), ("median (5 startup)", lambda: Median()),
            ("predictive + pfn, delta .002, eps .01 (current default)", lambda: Predictive()),
            ("EI < 8e-4 alone (C4)", lambda: EIRule(8e-4)),
            ("asha proposes + EI < 1e-2, EI < 8e-4 alone (C5)", lambda: Hybrid()),
            ("**regret (proposed default)**", lambda: Regret(**DEFAULT))]
    audited = [("predictive + pfn, current default, audit .05", lambda: Predictive()),
               ("**regret (proposed default), audit .05**", lambda: Regret(**DEFAULT))]
    loaded = {k: Family.load(k) for k in fams}
    res: dict[str, dict[str, Any]] = {}
    for name, mk in rows:
        res[name] = {k: summary(f, mk()) for k, f in loaded.items()}
    for name, mk in audited:
        res[name] = {k: summary(f, mk(), audit=0.05) for k, f in loaded.items()}
    peers = {k: {"asha": res[rows[0][0]][k], "median": res[rows[1][0]][k]} for k in fams}
    out.append("| rule | " + " | ".join(f"({k}) {loaded[k].path.name} ({loaded[k].curves.shape[0]})"
                                        for k in fams) + " |")
    out.append("|---" * (len(fams) + 1) + "|")
    for name, _ in rows + audited:
        cells = []
        for k in fams:
            r = res[name][k]
            anchor = " **loses anchor**" if r["anchor_lost"] else ""
            cells.append(fmt(r) + anchor)
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Bar per family for the regret rule (vs the faster of asha and median):")
    out.append("")
    for k in fams:
        ok, x15, ratio = bar(res[rows[-1][0]][k], peers[k])
        out.append(f"- ({k}): {'holds' if ok else 'FAILS'}; {ratio:.2f}x the faster peer; "
                   f"1.5x at regret <= .005: {'yes' if x15 else 'no'}")
    out.append("")
    out.append("What decided each regret of the regret rule (the stopped trial with the highest "
               "final above the best completed one; row = 0-based row of the file):")
    out.append("")
    out.append("| family | group | seed | row | stop step | EI at stop | by | value at stop | "
               "pfn mean | best then | final | regret |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k in fams:
        for x in res[rows[-1][0]][k]["lost"]:
            w = x["why"] or {}
            out.append(f"| ({k}) | {x['group'][:40]} | {x['seed']} | {x['row']} | {x['stop']} | "
                       f"{w.get('ei', float('nan')):.2e} | {w.get('by', '')} | "
                       f"{w.get('y_t', float('nan')):.3f} | {w.get('mean', float('nan')):.3f} | "
                       f"{x['best_then']:.4f} | {x['final']:.4f} | {x['regret']:.4f} |")
    if sweep_file is not None and sweep_file.exists():
        sw = json.loads(sweep_file.read_text())
        have = [k for k in fams if k in sw and len(sw[k]) >= len(GRID_REGRET) // 2]
        out.append("")
        n_common = sum(all(key in sw[k] for k in have) for key in sw[have[0]])
        out.append(f"Leave-one-family-out over the {n_common}-setting grid "
                   f"(families with a complete sweep: {', '.join(have)}):")
        out.append("")
        out.extend(lofo(sw, peers, have))
        out.append("")
        out.append("The same with the thin-evidence guard fixed a priori (min_cont 3; the grid "
                   "chooses tol, tol_rung, eta, margin, analogs):")
        out.append("")
        out.extend(lofo(sw, peers, have, {"min_cont": 3}))
        if len(have) == 4:
            out.append("")
            out.append("The same over (a)-(c) only (each chosen on the other two):")
            out.append("")
            out.extend(lofo(sw, peers, [k for k in have if k != "d"]))
        out.append("")
        out.append("Sensitivity around the default (one option changed at a time):")
        out.append("")
        out.append("| change | " + " | ".join(f"({k})" for k in have) + " |")
        out.append("|---" * (len(have) + 1) + "|")
        base = {k: v for k, v in DEFAULT.items()}
        for opt in ("tol", "tol_rung", "eta", "margin", "min_cont", "analogs"):
            for key in sw[have[0]]:
                if not all(key in sw[k] for k in have):
                    continue
                cfg = json.loads(key)
                diff = [o for o in base if cfg.get(o) != base[o]]
                if diff == [opt] or (opt == "tol" and not diff):
                    label = "default" if not diff else f"{opt} {cfg[opt]:g}"
                    cells = []
                    for k in have:
                        r = sw[k][key]
                        ok, x15, _ = bar(r, peers[k])
                        cells.append(fmt(r) + ("" if ok else " ✗") + (" ≥1.5x" if x15 else ""))
                    out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "table"
    if cmd == "crosscheck":  # harness vs the RegretPolicy through nas.bench replay_group
        from nas.policies import RegretPolicy

        fam = Family.load(sys.argv[2])
        pol = RegretPolicy(summarise=False)
        mine = run(fam, Regret(tol=pol.tolerance, tol_min=pol.tolerance_min,
                               tol_rung=pol.rung_tolerance, eta=pol.reduction_factor,
                               tau=pol.contender_gap, margin=pol.margin,
                               min_cont=pol.min_contenders, analogs=pol.analogs))
        theirs = replay_policy(fam, pol)
        print(f"harness {mine.short()}  replay_group(RegretPolicy) {theirs.short()}")
        for g in mine.groups:
            print(f"  {g[:40]:40s} harness {mine.groups[g]}  replay {theirs.groups[g]}")
    if cmd == "table":
        fams = [k for k in "abcd" if FAMILIES[k].exists()]
        print(table(fams, Path(sys.argv[2]) if len(sys.argv) > 2 else None))
    if cmd == "sweep":
        sweep(sys.argv[2], Path(sys.argv[3]))
