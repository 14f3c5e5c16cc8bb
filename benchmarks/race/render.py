"""Re-render the race tables of docs/race.md and README.md from a ``nas bench race --json`` file.

    python benchmarks/race/render.py benchmarks/race/result-seeds3.json benchmarks/race/*.toml
    python benchmarks/race/render.py --overview benchmarks/race/result-seeds3.json \\
        benchmarks/race/*.toml

The study files give each study's direction (needed to count epochs to none's best); the
summary is recomputed from the races, so files written before the spreads were added render in
the same format.  Default: the per-study tables (docs/race.md); ``--overview``: the README's
one table of epochs to none's best."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nas.bench._race_report import race_markdown, race_overview_markdown, resummarize
from nas.config import load_config


def render(json_path: str | Path, study_files: Sequence[str | Path],
           overview: bool = False) -> str:
    directions = {}
    for p in study_files:
        cfg = load_config(p)
        directions[cfg.name] = (cfg.search.objectives[0].direction if cfg.search.objectives
                                else "maximize")
    doc = json.loads(Path(json_path).read_text())
    studies = list(dict.fromkeys(r["study"] for r in doc["races"]))
    missing = [s for s in studies if s not in directions]
    if missing:
        raise SystemExit(f"no study file for {', '.join(missing)}")
    doc = resummarize(doc, {s: directions[s] for s in studies})
    return race_overview_markdown(doc) if overview else race_markdown(doc)


if __name__ == "__main__":
    args = sys.argv[1:]
    ov = "--overview" in args
    args = [a for a in args if a != "--overview"]
    if len(args) < 2:
        raise SystemExit(__doc__)
    sys.stdout.write(render(args[0], args[1:], overview=ov))
