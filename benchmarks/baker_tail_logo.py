"""Leave-one-task-group-out reliability of the Baker forecast's tail P(y_T > y_ref).

    .venv/bin/python benchmarks/baker_tail_logo.py --curves FILE [--no-features] [--train 1000]

For each task group g of ``--curves``: fit ``baker`` on ``--train`` random complete curves of the
OTHER groups, then for every curve of g and prefix lengths 1, 3 and round(0.2 T) forecast y_T and
compare P(y_T > y_ref) with the outcome, y_ref being the best final of a random subset (size
log-uniform in [5, 200]) of g's other curves: what a study on an unseen task would hold as its
y_best.  Prints one JSON object: per prefix length, :func:`nas.bench._predict.tail_calibration`
over all groups (bins of the forecast probability with the observed frequency; the share stopped
and the share of exceedances lost at delta 0.05 / 0.01).  ``--no-features`` drops the config
features (sets without them must still be handled soundly).  Numbers, not a test.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from nas.bench._predict import _reference_best, set_threads, tail_calibration
from nas.curvefile import load_curves
from nas.interfaces import Curve
from predictors.regression import BakerPredictor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", required=True)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--no-features", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    set_threads(1)
    cs = load_curves(args.curves)
    T = cs.horizon
    groups = cs.groups()
    feats = None if args.no_features else cs.config_features
    names = list(dict.fromkeys(groups.tolist()))
    prefixes = sorted({1, 3, max(1, round(0.2 * T))})
    acc: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {c: ([], []) for c in prefixes}
    rng = np.random.default_rng(args.seed)
    for g in names:
        held = np.flatnonzero((groups == g) & (cs.lengths == T))
        other = np.flatnonzero((groups != g) & (cs.lengths == T))
        train = rng.choice(other, min(args.train, other.shape[0]), replace=False)
        model = BakerPredictor(seed=args.seed).fit(
            [Curve(cs.curves[i], None if feats is None else feats[i]) for i in train])
        finals = cs.curves[held, T - 1]
        y = finals
        for c in prefixes:
            fc = model.predict([Curve(cs.curves[i, :c], None if feats is None else feats[i])
                                for i in held], T)
            # each curve's reference comes from the group's OTHER curves
            ref = np.array([_reference_best(np.delete(finals, j), 1, rng)[0]
                            for j in range(held.shape[0])])
            acc[c][0].append(1.0 - np.asarray(fc.cdf(ref)))
            acc[c][1].append((y > ref).astype(np.float64))
    out = {"file": args.curves, "features": not args.no_features, "train": args.train,
           "prefix": {str(c): tail_calibration(np.concatenate(p), np.concatenate(h))
                      for c, (p, h) in acc.items()}}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
