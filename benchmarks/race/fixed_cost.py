"""The race's fixed cost: what a Ray entrant pays per race before and after its epochs.

Races every entrant named on one race study with a budget of ``--epochs`` (default 2, so that
training is negligible) for ``--seeds`` seeds in one process (one warm Ray, as ``nas bench race``
runs), and reports per entrant the mean wall seconds of a race, the seconds to its first epoch
(set-up: the study database, the predictor, Ray actors starting and importing torch) and the
seconds after the budget was spent (teardown).  ``--preload`` starts Ray with
``RAY_preload_python_modules`` (Ray's worker start-up imports) set to torch, ray.tune and the
nas trainer module, to measure whether warm imports in Ray's prestarted workers cut it.

    unshare -n bash .ci/in-netns.sh .venv/bin/python benchmarks/race/fixed_cost.py \\
        benchmarks/race/digits.toml [--preload] [--json]

Run it on an otherwise idle machine: every number is wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study")
    ap.add_argument("--entrants", default="none,tune-asha,nas")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--preload", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.preload:  # read by the raylet when Ray starts: before nas imports ray
        os.environ["RAY_preload_python_modules"] = "torch,ray.tune,nas.runner._tune"
    t0 = time.monotonic()
    from nas.bench import check_race_options, run_race

    names = a.entrants.split(",")
    cfgs = check_race_options([a.study], seeds=a.seeds, budget_epochs=a.epochs, budget_s=None,
                              entrants=names)
    t_imports = time.monotonic() - t0
    doc = run_race(cfgs, seeds=a.seeds, budget_epochs=a.epochs, entrants=names, test=False)
    out = {"study": cfgs[0].name, "preload": a.preload, "seeds": a.seeds, "epochs": a.epochs,
           "imports_s": round(t_imports, 2), "ray_start_s": doc["ray_start_s"],
           "total_s": round(time.monotonic() - t0, 2), "entrants": {}}
    for e in names:
        rs = [r for r in doc["races"] if r["entrant"] == e]
        mean = (lambda k, rs=rs: round(sum(r[k] for r in rs) / len(rs), 2))
        out["entrants"][e] = {
            "wall_s": mean("wall_s"), "first_s": mean("first_s"),
            "teardown_s": round(sum(r["wall_s"] - r["spent_s"] for r in rs) / len(rs), 2),
            "wall_by_seed": [r["wall_s"] for r in rs]}
    if a.json:
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        print(f"{out['study']}: preload {a.preload}, imports {out['imports_s']} s, Ray start "
              f"{out['ray_start_s']} s, total {out['total_s']} s")
        for e, v in out["entrants"].items():
            print(f"  {e:10s} race {v['wall_s']:6.2f} s  to 1st epoch {v['first_s']:6.2f} s  "
                  f"teardown {v['teardown_s']:5.2f} s  by seed {v['wall_by_seed']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
