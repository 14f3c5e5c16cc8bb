"""The report of ``nas bench race``: per-study summary of the races, its tables and its plot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.config import StudyConfig
from nas.errors import ConfigError

__all__ = ["plot_races", "race_markdown", "race_overview_markdown", "race_tables",
           "resummarize", "summarize_by_direction", "summarize_races"]


def _mean_sd(vals: Sequence[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, sd


def _spread(prefix: str, vals: Sequence[float]) -> dict[str, float | None]:
    """``{prefix}_mean``, ``_sd`` (sample standard deviation; 0 for one value), ``_min``,
    ``_max`` over ``vals`` (all None when empty)."""
    m, sd = _mean_sd(vals)
    return {f"{prefix}_mean": m, f"{prefix}_sd": sd,
            f"{prefix}_min": min(vals) if vals else None,
            f"{prefix}_max": max(vals) if vals else None}


def _epochs_to_reach(traj: Sequence[Sequence[float]], target: float, maximize: bool
                     ) -> int | None:
    for ep, best in traj:
        if (best >= target - 1e-12) if maximize else (best <= target + 1e-12):
            return int(ep)
    return None


def summarize_races(races: Sequence[Mapping[str, Any]], cfgs: Sequence[StudyConfig]
                    ) -> list[dict[str, Any]]:
    """Per study and entrant, over the race seeds: see :func:`summarize_by_direction`."""
    return summarize_by_direction(
        races, {c.name: (c.search.objectives[0].direction if c.search.objectives
                         else "maximize") for c in cfgs})


def summarize_by_direction(races: Sequence[Mapping[str, Any]], directions: Mapping[str, str]
                           ) -> list[dict[str, Any]]:
    """Per study (``directions``: study name -> ``maximize``/``minimize``) and entrant, over the
    race seeds: every measure as mean, sample sd, min and max (``best_*``, ``test_*``,
    ``epochs_*``, ``wall_*``, ``epochs_to_none_best*``), with the seeds behind it.

    ``seed_list``: the seeds raced.  Epochs to reach none's best are counted per seed against
    that seed's ``none``; the spread is over the seeds that reached it (``reached`` of ``of``,
    ``reached_seeds``), and ``unreached_seeds`` are the seeds with a target that never reached
    it within the budget.  ``per_seed``: each seed's best, test and epochs to none's best."""
    out = []
    for study, direction in directions.items():
        rs = [r for r in races if r["study"] == study]
        maximize = direction != "minimize"
        targets = {r["seed"]: r["best_value"] for r in rs
                   if r["entrant"] == "none" and r["best_value"] is not None}
        for entrant in dict.fromkeys(r["entrant"] for r in rs):
            er = sorted((r for r in rs if r["entrant"] == entrant), key=lambda r: r["seed"])
            reach = {r["seed"]: _epochs_to_reach(r["trajectory"], targets[r["seed"]], maximize)
                     for r in er if r["seed"] in targets}
            got = [x for x in reach.values() if x is not None]
            row: dict[str, Any] = {"study": study, "entrant": entrant, "seeds": len(er),
                                   "seed_list": [r["seed"] for r in er]}
            row.update(_spread("best", [r["best_value"] for r in er
                                        if r["best_value"] is not None]))
            row.update(_spread("test", [r["test_value"] for r in er
                                        if r["test_value"] is not None]))
            m = _spread("epochs_to_none_best", got)
            row.update({"epochs_to_none_best": m["epochs_to_none_best_mean"],
                        **{k: v for k, v in m.items() if k != "epochs_to_none_best_mean"}})
            row.update({"reached": len(got), "of": len(reach),
                        "reached_seeds": [s for s, x in reach.items() if x is not None],
                        "unreached_seeds": [s for s, x in reach.items() if x is None]})
            row.update(_spread("epochs", [r["epochs"] for r in er]))
            row.update(_spread("wall", [r["wall_s"] for r in er]))
            row["per_seed"] = [{"seed": r["seed"], "best": r["best_value"],
                                "test": r["test_value"], "epochs_to_none_best":
                                reach.get(r["seed"])} for r in er]
            out.append(row)
    return out


def _f(v: Any, nd: int = 4) -> str:
    return "-" if v is None else f"{v:.{nd}g}"


def _cell(s: Mapping[str, Any], key: str, nd: int = 4, mean_key: str | None = None) -> str:
    """``mean ± sd [min–max]`` of one measure (``-`` when no seed has a value)."""
    m = s.get(mean_key or f"{key}_mean")
    if m is None:
        return "-"
    lo, hi = s.get(f"{key}_min"), s.get(f"{key}_max")
    rng = "" if lo is None or hi is None else f" [{_f(lo, nd)}–{_f(hi, nd)}]"
    return f"{_f(m, nd)} ± {_f(s.get(f'{key}_sd'), 2)}{rng}"


def _reach_cell(s: Mapping[str, Any]) -> str:
    """Epochs to none's best: spread over the seeds that reached it, ``(k/n)``, and the seeds
    that never did (``-`` for the spread when none did)."""
    if not s.get("of"):
        return "-"
    head = "never" if s["epochs_to_none_best"] is None else \
        f"{s['epochs_to_none_best']:.1f} ± {_f(s.get('epochs_to_none_best_sd'), 2)} " \
        f"[{_f(s.get('epochs_to_none_best_min'))}–{_f(s.get('epochs_to_none_best_max'))}]"
    miss = s.get("unreached_seeds") or []
    tail = f"; not reached: seed {', '.join(str(x) for x in miss)}" if miss else ""
    return f"{head} ({s['reached']}/{s['of']}{tail})"


def race_tables(doc: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the table per study (strings, ready to print): every measure as
    ``mean ± sd [min–max]`` over the seeds in the ``seeds`` column."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for s in doc["summary"]:
        seeds = s.get("seed_list")
        tables.setdefault(s["study"], []).append({
            "entrant": s["entrant"],
            "seeds": (f"{s['seeds']}" if seeds is None
                      else f"{s['seeds']} ({', '.join(str(x) for x in seeds)})"),
            "best val": _cell(s, "best"),
            "test": _cell(s, "test"),
            "epochs to none's best": _reach_cell(s),
            "epochs": _cell(s, "epochs"),
            "wall s": _cell(s, "wall", 3)})
    return tables


def _markdown(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols = list(rows[0]) if rows else []
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols),
            *("| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows)]


def race_markdown(doc: Mapping[str, Any]) -> str:
    """The tables of :func:`race_tables` as Markdown, one ``**study**`` block per study (the
    tables of docs/race.md)."""
    out: list[str] = []
    for study, rows in race_tables(doc).items():
        out += [f"**{study}**", "", *_markdown(rows), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def race_overview_markdown(doc: Mapping[str, Any]) -> str:
    """One row per entrant, one column per study: epochs to none's best as in
    :func:`race_tables`, and the mean wall seconds per study (the README's table)."""
    summary = doc["summary"]
    studies = list(dict.fromkeys(s["study"] for s in summary))
    rows: list[dict[str, Any]] = []
    for entrant in dict.fromkeys(s["entrant"] for s in summary):
        by = {s["study"]: s for s in summary if s["entrant"] == entrant}
        row: dict[str, Any] = {"entrant": entrant}
        for st in studies:
            row[st] = _reach_cell(by[st]) if st in by else "-"
        row[f"wall s ({' / '.join(studies)})"] = " / ".join(
            "-" if st not in by or by[st].get("wall_mean") is None else f"{by[st]['wall_mean']:.1f}"
            for st in studies)
        rows.append(row)
    return "\n".join(_markdown(rows)) + "\n"


def resummarize(doc: Mapping[str, Any], directions: Mapping[str, str]) -> dict[str, Any]:
    """``doc`` (a ``nas bench race --json`` file) with its summary recomputed from its races by
    :func:`summarize_by_direction` (so that an older file gets the spreads and seeds)."""
    return {**doc, "summary": summarize_by_direction(doc["races"], directions)}


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
