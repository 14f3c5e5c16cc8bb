"""Shape statistics of a dev family's curves (what makes early stopping hard on it).

Per task group and overall, on the complete curves (full length, as ``nas bench replay`` uses):

* ``flat``: share of curves whose range (max - min) is below ``--tol`` (0.02): they never move;
* ``no_gain``: share whose final is within ``--tol`` of their first value (ended where they
  started, e.g. at chance);
* ``takeoff``: the first epoch t with y_t >= y_1 + ``--rise`` (0.05), for the curves that rise
  at all: median, and the share of those that take off at epoch >= 8;
* ``crossing@f``: over pairs of curves of a group whose finals differ by more than 0.01, the
  share whose order at epoch round(f * T) is the reverse of their final order (f = 0.1, 0.25,
  0.5);
* ``late_bloomers``: curves flat over their first ``--flat`` (8) epochs (range below
  ``--flat-tol``, 0.07: TaskSet row 1884 moves 0.06 and corpus row 259 0.034 over theirs),
  then end at least ``--bloom`` (0.1) above that flat start's maximum, among their group's top
  ``--top`` (5) finals; ``late_best``: whether the group's best final is one.

    .venv/bin/python benchmarks/family_stats.py benchmarks/data/nas_corpus_d.npz [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def group_stats(c: np.ndarray, *, tol: float, rise: float, flat: int, top: int,
                flat_tol: float, bloom: float) -> dict:
    n, T = c.shape
    first, final = c[:, 0], c[:, -1]
    rng = c.max(1) - c.min(1)
    up = c >= first[:, None] + rise
    rises = up.any(1)
    takeoff = np.where(rises, up.argmax(1) + 1, 0)
    out: dict = {
        "curves": int(n), "horizon": int(T),
        "flat": float(np.mean(rng < tol)),
        "no_gain": float(np.mean(np.abs(final - first) < tol)),
        "rising": float(rises.mean()),
        "takeoff_median": float(np.median(takeoff[rises])) if rises.any() else None,
        "takeoff_ge8": float(np.mean(takeoff[rises] >= 8)) if rises.any() else None,
        "final_median": float(np.median(final)), "final_best": float(final.max()),
    }
    i, j = np.triu_indices(n, 1)
    d = final[i] - final[j]
    keep = np.abs(d) > 0.01
    for f in (0.1, 0.25, 0.5):
        t = max(1, round(f * T)) - 1
        e = c[i, t] - c[j, t]
        out[f"crossing@{f}"] = float(np.mean((np.sign(e) * np.sign(d) < 0)[keep])) \
            if keep.any() else None
    order = np.argsort(-final, kind="stable")
    top_k = set(order[:top].tolist())
    early_flat = ((c[:, :flat].max(1) - c[:, :flat].min(1)) < flat_tol) \
        & (final >= c[:, :flat].max(1) + bloom)
    late = [int(r) for r in np.flatnonzero(early_flat) if r in top_k]
    out["late_bloomers"] = len(late)
    out["late_best"] = bool(early_flat[order[0]])
    out["late_rows"] = late
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("curves", type=Path)
    ap.add_argument("--tol", type=float, default=0.02)
    ap.add_argument("--rise", type=float, default=0.05)
    ap.add_argument("--flat", type=int, default=8)
    ap.add_argument("--flat-tol", type=float, default=0.07)
    ap.add_argument("--bloom", type=float, default=0.1)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    z = np.load(args.curves, allow_pickle=False)
    curves = z["curves"].astype(np.float64)
    T = curves.shape[1]
    lengths = z["lengths"] if "lengths" in z.files else np.full(len(curves), T)
    groups = z["task"] if "task" in z.files else np.full(len(curves), "all")
    complete = (lengths == T) & np.isfinite(curves).all(1)
    doc: dict = {"file": str(args.curves), "curves": len(curves),
                 "complete": int(complete.sum()), "groups": {}}
    for g in dict.fromkeys(groups.tolist()):
        rows = np.flatnonzero((groups == g) & complete)
        s = group_stats(curves[rows], tol=args.tol, rise=args.rise, flat=args.flat, top=args.top,
                        flat_tol=args.flat_tol, bloom=args.bloom)
        s["late_rows"] = [int(rows[r]) for r in s["late_rows"]]  # rows of the file
        s["incomplete"] = int(((groups == g) & ~complete).sum())
        doc["groups"][g] = s
    allc = curves[complete]
    doc["all"] = {k: v for k, v in group_stats(allc, tol=args.tol, rise=args.rise,
                                                flat=args.flat, top=args.top,
                        flat_tol=args.flat_tol, bloom=args.bloom).items()
                  if not k.startswith(("late", "crossing"))}
    doc["all"]["late_bloomers"] = sum(s["late_bloomers"] for s in doc["groups"].values())
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    cols = ["curves", "incomplete", "flat", "no_gain", "rising", "takeoff_median",
            "takeoff_ge8", "crossing@0.1", "crossing@0.25", "crossing@0.5", "final_median",
            "final_best", "late_bloomers", "late_best"]
    print("| group | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for g, s in doc["groups"].items():
        cells = [("–" if s[k] is None else f"{s[k]:.3g}" if isinstance(s[k], float) else str(s[k]))
                 for k in cols]
        print(f"| {g} | " + " | ".join(cells) + " |")
    a = doc["all"]
    print(f"all: {a['curves']} complete curves, flat {a['flat']:.3f}, no_gain {a['no_gain']:.3f}, "
          f"takeoff median {a['takeoff_median']}, share of risers taking off >= 8: "
          f"{a['takeoff_ge8']:.3f}, late bloomers {a['late_bloomers']}")
    for g, s in doc["groups"].items():
        if s["late_rows"]:
            print(f"{g}: late bloomers (file rows) {s['late_rows']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
