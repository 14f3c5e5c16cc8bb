"""Time of the engine's refit with calibration (``CalibratedPredictor.fit_study``) on N
completed curves of a curve file, as the engine does it: a fresh predictor each time, fitted
and cross-fitted (learning predictors) or scored directly (pfn), then the PIT maps.

    .venv/bin/python benchmarks/calibration_refit.py --curves benchmarks/data/taskset_learning.npz \
        --predictor baker --n 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> int:
    from nas import registry
    from nas.calibration import CalibratedPredictor
    from nas.curvefile import load_curves
    from nas.interfaces import Curve

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--curves", required=True)
    ap.add_argument("--predictor", default="baker")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    cs = load_curves(args.curves)
    T = cs.horizon
    full = np.flatnonzero(cs.lengths == T)
    times, plain, warm = [], [], []
    for r in range(args.repeats):
        idx = np.random.default_rng(r).choice(full, size=min(args.n, full.size), replace=False)
        curves = [Curve(cs.curves[i], None if cs.config_features is None
                        else cs.config_features[i]) for i in idx]
        t0 = time.perf_counter()
        registry.create("predictor", args.predictor).fit(curves)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        CalibratedPredictor(registry.create("predictor", args.predictor)).fit_study(curves)
        times.append(time.perf_counter() - t0)
        # as in the engine: the previous refit (at 5 * 2^k completed trials) left its trials'
        # PITs in the study's cache (a fixed predictor only; a learning one rescoring all)
        cache: dict = {}
        prev = 5 * 2 ** int(np.floor(np.log2(max(len(curves) / 5, 1))))
        prev = prev if prev < len(curves) else prev // 2
        CalibratedPredictor(registry.create("predictor", args.predictor),
                            pit_cache=cache).fit_study(curves[:prev])
        t0 = time.perf_counter()
        CalibratedPredictor(registry.create("predictor", args.predictor),
                            pit_cache=cache).fit_study(curves)
        warm.append(time.perf_counter() - t0)
    print(json.dumps({"predictor": args.predictor, "n": len(curves), "horizon": T,
                      "calibrated_refit_s": times, "warm_calibrated_refit_s": warm,
                      "plain_refit_s": plain,
                      "median_calibrated_s": float(np.median(times)),
                      "median_warm_calibrated_s": float(np.median(warm))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
