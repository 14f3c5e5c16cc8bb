"""Table of ``nas bench predict`` JSON documents: loglik / coverage90 / MSE per cutoff.

    python benchmarks/pfn_context_table.py LABEL=FILE.json [LABEL=FILE.json ...]

Prints one markdown table per curve file (rows: the labels; the last-value MSE as its own row).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main() -> None:
    by_file: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for arg in sys.argv[1:]:
        label, path = arg.split("=", 1)
        with open(path) as fh:
            doc = json.load(fh)
        by_file[doc["file"]].append((label, doc))
    for f, rows in by_file.items():
        cut = list(rows[0][1]["cutoffs"])
        print(f"\n**{f}** (n = {rows[0][1]['n']})\n")
        print("| predictor | " + " | ".join(f"loglik {c}" for c in cut) + " | "
              + " | ".join(f"cov90 {c}" for c in cut) + " | " + " | ".join(f"MSE {c}" for c in cut)
              + " | µs/curve |")
        print("|---" * (3 * len(cut) + 2) + "|")
        for label, d in rows:
            cs = d["cutoffs"]
            us = sum(cs[c]["us_per_curve"] for c in cut) / len(cut)
            print(f"| {label} | " + " | ".join(f"{cs[c]['loglik']:.3f}" for c in cut) + " | "
                  + " | ".join(f"{cs[c]['coverage90']:.3f}" for c in cut) + " | "
                  + " | ".join(f"{cs[c]['mse']:.4f}" for c in cut) + f" | {us:.0f} |")
        d = rows[0][1]["cutoffs"]
        print("| last value | " + " | ".join("–" for _ in cut) + " | " + " | ".join("–" for _ in cut)
              + " | " + " | ".join(f"{d[c]['mse_last_value']:.4f}" for c in cut) + " | – |")


if __name__ == "__main__":
    main()
