"""``nas bench overhead --simulated-trials N``: the stopping session's throughput at cluster scale.

No Ray and no training: N trials are live at once and report in turn, round-robin, as results
would arrive at a driver that serves N workers; a trial that stops or reaches its horizon is
replaced by a new one at once.  Every result goes through the same
:class:`nas.policies.StoppingSession` that ``nas run`` drives, with the engine's settings (refits on
a background thread, the stop audit on), so what is timed is the driver's hot path:
normalisation, the policy, the forecast, the audit and the bookkeeping.

The curves are synthetic (saturating learners with noise, a quarter flat at chance) from a fixed
seed.  Reported per (policy, predictor): results handled, wall time, results per second, and
the latency of one ``report`` call (p50, p99, max, in ms).  Target: p99 <= 20 ms and >= 200
results/s at N = 256 with the pfn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["run_simulated"]

Progress = Callable[[str, int, int], None]


def _curves(n: int, horizon: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(1, horizon + 1)
    top = rng.uniform(0.55, 0.98, n)
    speed = rng.lognormal(-1.0, 0.8, n)
    y = 0.5 + (top[:, None] - 0.5) * (1 - np.exp(-speed[:, None] * t[None, :]))
    flat = rng.random(n) < 0.25
    y[flat] = 0.5
    y += 0.01 * rng.standard_normal(y.shape)
    return np.clip(y, 0.0, 1.0)


def simulate(n_live: int, policy: str, predictor: str | None, *, results: int,
             horizon: int = 20, seed: int = 0, audit: float = 0.05) -> dict[str, Any]:
    """Drive one session with ``n_live`` concurrent synthetic trials for ``results`` results."""
    from nas.policies import StopAudit, StoppingSession, ThreadRefits, make_policy
    from nas.registry import create

    options: dict[str, Any] = {}
    pol = make_policy(policy, options)
    pred = None if predictor is None else create("predictor", predictor)

    def fresh() -> Any:
        import copy

        return copy.deepcopy(pred)

    session = StoppingSession(pol, horizon=horizon,
                              new_predictor=None if pred is None else fresh,
                              audit=StopAudit(audit, seed=seed) if audit > 0 else None,
                              refits=ThreadRefits())
    session.wait_refit()
    pool = _curves(max(4 * n_live, 2048), horizon, seed)
    live: dict[int, int] = {}  # trial number -> epochs reported
    rows: dict[int, int] = {}
    next_number = 0
    stops = completes = 0
    lat = np.empty(results)
    done = 0
    t_start = time.perf_counter()
    while done < results:
        while len(live) < n_live:
            live[next_number], rows[next_number] = 0, next_number % pool.shape[0]
            next_number += 1
        for number in list(live):
            if done >= results:
                break
            e = live[number] + 1
            v = float(pool[rows[number], e - 1])
            t0 = time.perf_counter()
            d = session.report(number, e, v)
            if d.stop:
                session.stopped(number)
            elif e >= horizon:
                session.complete(number)
            lat[done] = time.perf_counter() - t0
            done += 1
            if d.stop:
                stops += 1
                del live[number]
            elif e >= horizon:
                completes += 1
                del live[number]
            else:
                live[number] = e
    wall = time.perf_counter() - t_start
    session.wait_refit()
    ms = lat * 1000.0
    return {"simulated_trials": n_live, "policy": policy, "predictor": predictor,
            "results": int(results), "wall_s": wall, "results_per_s": results / wall,
            "hook_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                        "max": float(ms.max())},
            "trials_started": next_number, "stopped": stops, "completed": completes,
            "refits": session.refit_count}


def run_simulated(sizes: Sequence[int], predictors: Sequence[str | None], *,
                  results: int | None = None, horizon: int = 20, seed: int = 0,
                  progress: Progress | None = None) -> dict[str, Any]:
    """:func:`simulate` for every size and predictor with the shipped rule ``regret`` (``None``:
    the asha peer, no predictor)."""
    import torch

    torch.set_num_threads(1)  # as on the driver (NAS_DRIVER_THREADS)
    rows = []
    jobs = [(n, p) for n in sizes for p in predictors]
    for k, (n, p) in enumerate(jobs):
        if progress is not None:
            progress(f"simulated N={n} {p or 'asha'}", k, len(jobs))
        rows.append(simulate(n, "regret" if p else "asha", p,
                             results=results or 3 * n * horizon, horizon=horizon, seed=seed))
    if progress is not None:
        progress("done", len(jobs), len(jobs))
    return {"mode": "simulated", "horizon": horizon, "torch_threads": 1, "runs": rows}
