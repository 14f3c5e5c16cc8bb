"""The early-stopping table of docs/predictors.md for one dev family (benchmarks/dev_families.py).

Rows: none, asha, median, and predictive with baker and pfn, raw and calibrated, stop audit off
and on (the shipped defaults otherwise: delta, epsilon, audit rate of nas.policies).  Columns:
speedup, regret, worst regret (``nas bench replay``, 5 seeds), the audited false-stop rate, and
coverage90 (``nas bench predict``, mean over the cutoffs 0.1/0.2/0.4; all curves and curves
> 0.1).  Writes one JSON document per row under benchmarks/results/ (a finished row is not
rerun) and prints the markdown table.

    .venv/bin/python benchmarks/early_stopping.py --family b [--seeds 5] [--rows pfn]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from dev_families import FAMILIES  # noqa: E402

from nas.policies._audit import false_stop_text  # noqa: E402

ROWS = [("none", None, False, 0.0), ("asha", None, False, 0.0), ("median", None, False, 0.0)]
for _p in ("baker", "pfn"):
    for _cal in (False, True):
        for _audit in (0.0, 0.05):
            ROWS.append(("predictive", _p, _cal, _audit))


def row_name(policy: str, predictor: str | None, cal: bool, audit: float) -> str:
    if predictor is None:
        return policy
    return f"{policy}-{predictor}-{'cal' if cal else 'raw'}-audit{audit:g}"


def main() -> int:
    from nas.bench import run_predict, run_replay
    from nas.curvefile import load_curves

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=sorted(FAMILIES), required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rows", default="", help="only rows whose name contains this")
    ap.add_argument("--no-coverage", action="store_true")
    args = ap.parse_args()
    cs = load_curves(FAMILIES[args.family])
    out_dir = ROOT / "results" / args.family
    out_dir.mkdir(parents=True, exist_ok=True)
    for policy, pred, cal, audit in ROWS:
        name = row_name(policy, pred, cal, audit)
        path = out_dir / f"replay-{name}.json"
        if args.rows not in name or path.exists():
            continue
        t0 = time.time()
        opts = {"grace_period": 1, "reduction_factor": 3} if policy == "asha" else {}
        doc = run_replay(cs, policy, policy_options=opts, predictor=pred, seeds=args.seeds,
                         audit=audit, calibrate=cal)
        doc["seconds"] = time.time() - t0
        doc.pop("groups", None)
        path.write_text(json.dumps(doc, indent=1))
        print(f"{name}: {doc['speedup']:.2f}x regret {doc['regret']:.4f} ({doc['seconds']:.0f} s)",
              file=sys.stderr, flush=True)
    if not args.no_coverage:
        for pred in ("baker", "pfn"):
            for cal in (False, True):
                name = f"{pred}-{'cal' if cal else 'raw'}"
                path = out_dir / f"predict-{name}.json"
                if args.rows not in name or path.exists():
                    continue
                doc = run_predict(cs, pred, calibrate=cal)
                path.write_text(json.dumps(doc, indent=1))
                print(f"predict {name} done", file=sys.stderr, flush=True)
    print(table(out_dir))
    return 0


def _cov(out_dir: Path, pred: str | None, cal: bool) -> str:
    path = out_dir / f"predict-{pred}-{'cal' if cal else 'raw'}.json"
    if pred is None or not path.exists():
        return "–"
    doc = json.loads(path.read_text())
    allc = [v["coverage90"] for v in doc["cutoffs"].values()]
    act = [v["coverage90"] for v in doc["active"].values() if v["coverage90"] is not None]
    return f"{sum(allc) / len(allc):.3f} / {sum(act) / len(act):.3f}" if act else "–"


def table(out_dir: Path) -> str:
    lines = ["| policy | speedup | regret | worst regret | audited false stops | "
             "coverage90 (all / > 0.1) |", "|---|---|---|---|---|---|"]
    for policy, pred, cal, audit in ROWS:
        name = row_name(policy, pred, cal, audit)
        path = out_dir / f"replay-{name}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        fs = d["false_stops"]
        fs_txt = "–"
        if fs["audited"]:  # the study's view, and what only a replay knows
            fs_txt = f"{false_stop_text(fs, short=True)} (true {100 * fs['true_rate']:.1f}%)"
        label = policy if pred is None else (
            f"predictive + {pred}, {'calibrated' if cal else 'raw'}, audit {audit:g}")
        lines.append(f"| {label} | {d['speedup']:.2f}x | {d['regret']:.4f} | "
                     f"{d['worst_regret']:.4f} | {fs_txt} | {_cov(out_dir, pred, cal)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
