"""Refit time of the Baker predictor's selected model: 1,000 curves x 50 steps.

    .venv/bin/python benchmarks/baker_refit.py [--curves FILE] [--threads 1]

Uses the first 1,000 complete curves of ``--curves`` (truncated to 50 steps) when given, else
1,000 synthetic curves (``nas.testing.predictors.synthetic_curve_set``).  Prints the CV MSE of
each model (the selection), then the median of 5 timed ``refit`` calls (the selected model,
no selection; wall and CPU seconds, with the load average: on a shared machine wall time
overstates the cost) and one prediction timing, as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from nas.bench._predict import set_threads
from nas.curvefile import load_curves
from nas.interfaces import Curve
from nas.testing.predictors import synthetic_curve_set
from predictors.regression import BakerPredictor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    set_threads(args.threads)
    if args.curves:
        cs = load_curves(args.curves)
        keep = np.flatnonzero(cs.lengths >= args.steps)[: args.n]
        feats = cs.config_features
        curves = [Curve(cs.curves[i, : args.steps], None if feats is None else feats[i])
                  for i in keep]
    else:
        cs = synthetic_curve_set(args.n, args.steps, 1, seed=0)
        assert cs.config_features is not None
        curves = [Curve(cs.curves[i], cs.config_features[i]) for i in range(args.n)]
    p = BakerPredictor()
    t0 = time.perf_counter()
    p.fit(curves)
    select_s = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        p.refit(curves)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    prefixes = [Curve(c.values[:10], c.features) for c in curves]
    t0 = time.perf_counter()
    p.predict(prefixes, args.steps)
    pred_s = time.perf_counter() - t0
    print(json.dumps({
        "curves": len(curves), "steps": args.steps, "threads": args.threads,
        "source": args.curves or "synthetic", "cv_mse": p.cv_scores_,
        "selected": p.model_name_, "selection_fit_s": round(select_s, 3),
        "refit_s_median": round(statistics.median(times), 3),
        "refit_s_all": [round(t, 3) for t in times],
        "refit_cpu_s_median": round(statistics.median(cpu), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "predict_us_per_curve": round(1e6 * pred_s / len(curves), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
