"""Forecast cache of the stopping-rule harness (benchmarks/stopping_rules.py).

The shipped pfn is pretrained and never learns from a study, so its forecast of (curve i,
prefix t) does not depend on the replay order.  For every curve and prefix t < T we store, on
the grid G = linspace(0, 1, 201):
  F[u, k] = P(y_T <= G[k])                 (the forecast CDF, atoms included)
  S[u, k] = int_{G[k]}^1 (1 - F(v)) dv     (so EI at best = S(best), exact at grid points)
for each *unique* prefix u (identical prefixes share a forecast); ``index[i, t-1] = u``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

GRID = np.linspace(0.0, 1.0, 201)
CACHE_DIR = Path(__file__).resolve().parent / "cache"


def _exact_grid(probs: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F and S on GRID for pfn bucket probabilities (N, nb): atoms at the two edge buckets."""
    a0, inner, a1 = probs[:, 0], probs[:, 1:-1], probs[:, -1]
    tot = a0 + inner.sum(1) + a1
    a0, inner, a1 = a0 / tot, inner / tot[:, None], a1 / tot
    Fe = a0[:, None] + np.concatenate([np.zeros((len(a0), 1)), np.cumsum(inner, 1)], 1)  # at edges
    Fe = np.minimum(Fe, 1.0)
    # integral of (1 - F) over each bin (F linear within the bin)
    w = np.diff(edges)
    binint = w[None, :] * (1.0 - 0.5 * (Fe[:, 1:] + Fe[:, :-1]))
    Se = np.concatenate([np.cumsum(binint[:, ::-1], 1)[:, ::-1], np.zeros((len(a0), 1))], 1)
    j = np.clip(np.searchsorted(edges, GRID, side="right") - 1, 0, len(edges) - 2)
    frac = np.clip((GRID - edges[j]) / w[j], 0.0, 1.0)
    Fg = Fe[:, j] + frac[None, :] * (Fe[:, j + 1] - Fe[:, j])
    Fg[:, -1] = 1.0
    Sg = Se[:, j + 1] + (edges[j + 1] - GRID)[None, :] * (1.0 - 0.5 * (Fg + Fe[:, j + 1]))
    Sg[:, -1] = 0.0
    return Fg.astype(np.float32), Sg.astype(np.float32)


def cache_path(curves_file: str | os.PathLike[str]) -> Path:
    p = Path(curves_file).resolve()
    h = hashlib.sha1(p.read_bytes()).hexdigest()[:10]
    return CACHE_DIR / f"pfn_{p.stem}_{h}.npz"


def build(curves_file: str, out: Path | None = None, batch: int = 2048) -> Path:
    import torch

    torch.set_num_threads(1)
    from nas.curvefile import load_curves
    from nas.interfaces import Curve
    from predictors.pfn import PFNPredictor

    cs = load_curves(curves_file)
    C, T = cs.curves, cs.horizon
    out = out or cache_path(curves_file)
    keys: dict[bytes, int] = {}
    index = np.zeros((C.shape[0], T - 1), dtype=np.int32)
    todo: list[tuple[int, int]] = []
    index[:] = -1
    for i in range(C.shape[0]):
        if cs.lengths[i] != T:  # the replay protocol uses complete curves only
            continue
        for t in range(1, T):
            k = C[i, :t].tobytes()
            u = keys.get(k)
            if u is None:
                u = keys[k] = len(todo)
                todo.append((i, t))
            index[i, t - 1] = u
    pfn = PFNPredictor(threads=1)
    edges = np.concatenate([[0.0], pfn.borders[2:-2], [1.0]])
    F = np.zeros((len(todo), GRID.size), np.float32)
    S = np.zeros((len(todo), GRID.size), np.float32)
    mean = np.zeros(len(todo), np.float32)
    todo_sorted = sorted(range(len(todo)), key=lambda u: todo[u][1])  # similar lengths together
    t0 = time.time()
    mids = 0.5 * (edges[1:] + edges[:-1])
    for s in range(0, len(todo_sorted), batch):
        us = np.array(todo_sorted[s:s + batch])
        probs = pfn.predict_probs([Curve(C[todo[u][0], :todo[u][1]]) for u in us], T)
        F[us], S[us] = _exact_grid(probs, edges)
        tot = probs.sum(1)
        mean[us] = (probs[:, 1:-1] @ mids + probs[:, -1]) / tot
        print(f"{out.name}: {s + len(us)}/{len(todo)} prefixes, {time.time() - t0:.0f}s",
              file=sys.stderr, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, index=index, F=F, S=S, mean=mean, T=T, grid=GRID)
    return out


if __name__ == "__main__":
    for f in sys.argv[1:]:
        print(build(f))
