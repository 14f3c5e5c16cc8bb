"""The four dev families of curves of the early-stopping benchmarks (docs/predictors.md).

* (a) ``../shared/data/taskset_dev.npz``: 8000 TaskSet curves, most flat at chance.
* (b) its learning subset: the curves whose maximum exceeds 0.1 (615 curves), written to
  ``benchmarks/data/taskset_learning.npz`` by this script.
* (c) nas's own curves: ``benchmarks/data/nas_corpus.npz``, recorded by
  ``benchmarks/record_corpus.py`` (policy "none", 4 tasks x 150 trials x 15 epochs).
* (d) nas's own curves on tasks (c) lacks: ``benchmarks/data/nas_corpus_d.npz``, recorded by
  ``benchmarks/record_corpus.py --family d`` (policy "none", lorenz96 (its MSE, minimised,
  mapped to [0, 1] per group), regular_language and hmm, 150 trials x 30 epochs each).

    .venv/bin/python benchmarks/dev_families.py          # (re)build (b), list all four
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "data" / "taskset_dev.npz"
FAMILIES = {
    "a": SHARED,
    "b": ROOT / "data" / "taskset_learning.npz",
    "c": ROOT / "data" / "nas_corpus.npz",
    "d": ROOT / "data" / "nas_corpus_d.npz",
}


def learning_subset(src: Path, out: Path, threshold: float = 0.1) -> int:
    """Write the curves of ``src`` whose maximum exceeds ``threshold`` (every per-curve array
    subset alike, file-level entries kept); return how many."""
    z = np.load(src, allow_pickle=False)
    curves = z["curves"]
    keep = np.nanmax(curves, axis=1) > threshold
    n = curves.shape[0]
    data = {k: (z[k][keep] if z[k].ndim >= 1 and z[k].shape[0] == n else z[k]) for k in z.files}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **data)
    return int(keep.sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=SHARED)
    args = ap.parse_args()
    n = learning_subset(args.shared, FAMILIES["b"])
    print(f"(b) {FAMILIES['b']}: {n} curves with max > 0.1")
    for name, path in FAMILIES.items():
        if path.exists():
            z = np.load(path, allow_pickle=False)
            print(f"({name}) {path}: {z['curves'].shape[0]} curves x {z['curves'].shape[1]} steps")
        else:
            print(f"({name}) {path}: missing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
