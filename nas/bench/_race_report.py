"""The report of ``nas bench race``: per-study summary of the races, its tables and its plot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.config import StudyConfig
from nas.errors import ConfigError

__all__ = ["plot_races", "race_tables", "summarize_races"]


def _mean_sd(vals: Sequence[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, sd


def _epochs_to_reach(traj: Sequence[Sequence[float]], target: float, maximize: bool
                     ) -> int | None:
    for ep, best in traj:
        if (best >= target - 1e-12) if maximize else (best <= target + 1e-12):
            return int(ep)
    return None


def summarize_races(races: Sequence[Mapping[str, Any]], cfgs: Sequence[StudyConfig]
                    ) -> list[dict[str, Any]]:
    """Per study and entrant: best val mean ± sd over seeds, test mean, epochs to reach the best
    value of ``none`` (per seed, against that seed's ``none``; mean over the seeds that
    reached it, with how many did), wall mean."""
    out = []
    for cfg in cfgs:
        rs = [r for r in races if r["study"] == cfg.name]
        direction = (cfg.search.objectives[0].direction if cfg.search.objectives else None)
        maximize = direction != "minimize"
        targets = {r["seed"]: r["best_value"] for r in rs
                   if r["entrant"] == "none" and r["best_value"] is not None}
        for entrant in dict.fromkeys(r["entrant"] for r in rs):
            er = [r for r in rs if r["entrant"] == entrant]
            bm, bsd = _mean_sd([r["best_value"] for r in er if r["best_value"] is not None])
            tm, tsd = _mean_sd([r["test_value"] for r in er if r["test_value"] is not None])
            reach = [_epochs_to_reach(r["trajectory"], targets[r["seed"]], maximize)
                     for r in er if r["seed"] in targets]
            got = [x for x in reach if x is not None]
            out.append({"study": cfg.name, "entrant": entrant, "seeds": len(er),
                        "best_mean": bm, "best_sd": bsd, "test_mean": tm, "test_sd": tsd,
                        "epochs_to_none_best": (sum(got) / len(got)) if got else None,
                        "reached": len(got), "of": len(reach),
                        "epochs_mean": _mean_sd([r["epochs"] for r in er])[0],
                        "wall_mean": _mean_sd([r["wall_s"] for r in er])[0]})
    return out


def race_tables(doc: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the table per study (strings, ready to print)."""

    def f(v: Any, nd: int = 4) -> str:
        return "-" if v is None else f"{v:.{nd}g}"

    tables: dict[str, list[dict[str, Any]]] = {}
    for s in doc["summary"]:
        reach = "-" if s["epochs_to_none_best"] is None else \
            f"{s['epochs_to_none_best']:.1f} ({s['reached']}/{s['of']})"
        tables.setdefault(s["study"], []).append({
            "entrant": s["entrant"],
            "best val": f"{f(s['best_mean'])} ± {f(s['best_sd'], 2)}",
            "test": f(s["test_mean"]),
            "epochs to none's best": reach,
            "epochs": f(s["epochs_mean"]),
            "wall s": f(s["wall_mean"], 3)})
    return tables


def plot_races(doc: Mapping[str, Any], path: str | Path) -> None:
    """PNG: best-so-far against epochs, one panel per study, one line per entrant (mean over
    seeds, band = min..max over seeds)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib (pip install matplotlib)") from None
    import numpy as np

    studies = list(dict.fromkeys(r["study"] for r in doc["races"]))
    fig, axes = plt.subplots(1, max(1, len(studies)), figsize=(5 * max(1, len(studies)), 3.6),
                             squeeze=False)
    for ax, study in zip(axes[0], studies):
        rs = [r for r in doc["races"] if r["study"] == study]
        horizon = max([int(r["epochs"]) for r in rs] + [1])
        grid = np.arange(1, horizon + 1)
        for entrant in dict.fromkeys(r["entrant"] for r in rs):
            rows = []
            for r in (r for r in rs if r["entrant"] == entrant):
                y = np.full(grid.shape, np.nan)
                for ep, best in r["trajectory"]:
                    y[int(ep) - 1:] = best
                y[int(r["epochs"]):] = np.nan  # not past what it consumed
                rows.append(y)
            arr = np.asarray(rows)
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(arr, axis=0)
                    lo, hi = np.nanmin(arr, axis=0), np.nanmax(arr, axis=0)
            (line,) = ax.plot(grid, mean, label=entrant, lw=1.4)
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_title(study)
        ax.set_xlabel("epochs consumed")
        ax.set_ylabel("best validation value so far")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
