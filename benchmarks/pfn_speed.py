"""Inference speed of the ``pfn`` predictor on one CPU thread.

    python benchmarks/pfn_speed.py [--weights DIR] [--n 1000] [--json]

Reports, at horizon T = 100:
* batched, without context: ms per curve for ``--n`` curves at prefixes 10..99;
* one curve per call, as the stopping hook asks (predict + cdf + two quantiles), median and p99;
* one query per call with a 50-curve study context (encoding cached under its version), and the
  call that encodes a new study state.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from nas.interfaces import Curve, StudyContext
from predictors.pfn import PFNPredictor


def _curves(n: int, c: int, rng: np.random.Generator) -> list[Curve]:
    t = np.arange(1, c + 1)
    k = rng.uniform(2, 30, n)[:, None]
    y = np.clip(0.8 * (1 - np.exp(-t[None, :] / k)) + rng.normal(0, 0.02, (n, c)), 0, 1)
    return [Curve(r, rng.uniform(size=4)) for r in y]


def _hook(p: PFNPredictor, q: list[Curve], ctx: StudyContext | None) -> None:
    fc = p.predict(q, 100, context=ctx)
    fc.cdf(np.array([0.7]))
    fc.quantile(0.05)
    fc.quantile(0.95)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    p = PFNPredictor(a.weights)
    out: dict[str, object] = {"threads": torch.get_num_threads()}
    batched = {}
    for c in (10, 30, 50, 70, 99):
        cs = _curves(a.n, c, rng)
        p.predict(cs[:8], 100)
        t0 = time.process_time()
        p.predict(cs, 100)
        batched[c] = 1e3 * (time.process_time() - t0) / a.n
    out["batched_ms_per_curve"] = batched
    for name, ctx in (("single_ms", None), ("single_ctx50_ms", "ctx")):
        study = None
        if ctx:
            pool = _curves(50, 100, rng)
            study = StudyContext(tuple(Curve(c.values[: rng.integers(5, 101)], c.features)
                                       for c in pool), tuple([False] * 50), 100, version=1)
        times = []
        for i in range(a.calls):
            q = _curves(1, int(rng.integers(2, 60)), rng)
            t0 = time.perf_counter()
            _hook(p, q, study)
            times.append(time.perf_counter() - t0)
        ts = np.array(times[10:]) * 1e3
        out[name] = {"median": float(np.median(ts)), "p99": float(np.quantile(ts, 0.99))}
        if study is not None:
            enc = []
            for v in range(2, 22):
                study = StudyContext(study.curves, study.complete, 100, version=v)
                t0 = time.perf_counter()
                _hook(p, q, study)
                enc.append(time.perf_counter() - t0)
            out["new_study_state_ms"] = {"median": float(np.median(enc) * 1e3)}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(k, v)


if __name__ == "__main__":
    main()
