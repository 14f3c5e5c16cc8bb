"""The report of ``nas bench race``: per-study summary of the races, its tables and its plot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import ConfigError

__all__ = ["plot_races", "race_markdown", "race_overview_markdown", "race_tables",
           "resummarize", "summarize_by_direction"]


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


#: the budget fractions at which the best-so-far is reported (``best_at_25``, ``best_at_50``)
FRACTIONS = (25, 50)
#: "99% of none's best": within 1% of its magnitude (below it when maximising, above when
#: minimising)
NEAR = 0.01


def _reach_index(traj: Sequence[Sequence[float]], target: float, maximize: bool) -> int | None:
    """Index of the first trajectory point whose best-so-far reaches ``target``."""
    for i, (_ep, best) in enumerate(traj):
        if (best >= target - 1e-12) if maximize else (best <= target + 1e-12):
            return i
    return None


def _epochs_to_reach(traj: Sequence[Sequence[float]], target: float, maximize: bool
                     ) -> int | None:
    i = _reach_index(traj, target, maximize)
    return None if i is None else int(traj[i][0])


def _near(target: float, maximize: bool) -> float:
    """The value that counts as 99% of ``target`` (:data:`NEAR`)."""
    return target - NEAR * abs(target) if maximize else target + NEAR * abs(target)


def _best_at(race: Mapping[str, Any], frac: float, budget: Mapping[str, Any] | None
             ) -> float | None:
    """The race's best-so-far once ``frac`` of the budget was spent: epochs when the budget
    is in epochs, wall seconds when it is in seconds, else the race's own epochs."""
    epochs = (budget or {}).get("epochs")
    wall = (budget or {}).get("wall_s")
    if epochs is None and wall is not None:
        traj, limit = race.get("wall_trajectory") or [], frac * float(wall)
    else:
        traj = race["trajectory"]
        limit = frac * float(epochs if epochs is not None else race["epochs"])
    best = None
    for x, b in traj:
        if x > limit + 1e-9:
            break
        best = b
    return best


def _reached(prefix: str, reach: Mapping[int, float | None]) -> dict[str, Any]:
    """``{prefix}`` (the mean), ``_sd``, ``_min``, ``_max`` over the seeds that reached the
    target, with ``{prefix}_reached`` of ``{prefix}_of``."""
    got = [x for x in reach.values() if x is not None]
    m = _spread(prefix, got)
    return {prefix: m[f"{prefix}_mean"], **{k: v for k, v in m.items() if k != f"{prefix}_mean"},
            f"{prefix}_reached": len(got), f"{prefix}_of": len(reach)}


def summarize_by_direction(races: Sequence[Mapping[str, Any]], directions: Mapping[str, str],
                           budget: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per study (``directions``: study name -> ``maximize``/``minimize``) and entrant, over the
    race seeds: every measure as mean, sample sd, min and max (``best_*``, ``test_*``,
    ``epochs_*``, ``wall_*``, ``first_*``, ``best_at_25_*``, ``best_at_50_*``,
    ``epochs_to_none_best*``, ``wall_to_none_best*``, ``epochs_to_99*``), with the seeds behind
    it.  ``budget`` (the race's ``{"epochs", "wall_s"}``) places the 25% and 50% marks.

    ``seed_list``: the seeds raced.  Epochs (and wall seconds) to reach none's best are counted
    per seed against that seed's ``none``; the spread is over the seeds that reached it
    (``reached`` of ``of``, ``reached_seeds``), and ``unreached_seeds`` are the seeds with a
    target that never reached it within the budget.  ``epochs_to_99``: the same for 99% of
    none's best (:data:`NEAR`), with ``epochs_to_99_reached`` of ``epochs_to_99_of``.
    ``first``: seconds from the race's start to its first epoch (set-up: Ray actors, the
    database, the predictor); ``teardown``: seconds from the epoch that spent the budget to
    the race's end (stopping trials, closing the study).  ``per_seed``: each seed's best, test and epochs to none's
    best."""
    out = []
    for study, direction in directions.items():
        rs = [r for r in races if r["study"] == study]
        maximize = direction != "minimize"
        targets = {r["seed"]: r["best_value"] for r in rs
                   if r["entrant"] == "none" and r["best_value"] is not None}
        for entrant in dict.fromkeys(r["entrant"] for r in rs):
            er = sorted((r for r in rs if r["entrant"] == entrant), key=lambda r: r["seed"])
            hit = {r["seed"]: _reach_index(r["trajectory"], targets[r["seed"]], maximize)
                   for r in er if r["seed"] in targets}
            reach = {r["seed"]: (None if hit[r["seed"]] is None
                                 else int(r["trajectory"][hit[r["seed"]]][0]))
                     for r in er if r["seed"] in hit}
            walls: dict[int, float | None] = {}
            for r in er:
                if r["seed"] in hit:
                    i, wt = hit[r["seed"]], r.get("wall_trajectory") or []
                    walls[r["seed"]] = None if i is None or i >= len(wt) else float(wt[i][0])
            near = {r["seed"]: _epochs_to_reach(r["trajectory"],
                                                _near(targets[r["seed"]], maximize), maximize)
                    for r in er if r["seed"] in targets}
            row: dict[str, Any] = {"study": study, "entrant": entrant, "seeds": len(er),
                                   "seed_list": [r["seed"] for r in er]}
            row.update(_spread("best", [r["best_value"] for r in er
                                        if r["best_value"] is not None]))
            for pct in FRACTIONS:
                row.update(_spread(f"best_at_{pct}", [
                    v for v in (_best_at(r, pct / 100, budget) for r in er) if v is not None]))
            row.update(_spread("test", [r["test_value"] for r in er
                                        if r["test_value"] is not None]))
            m = _reached("epochs_to_none_best", reach)
            row.update({k: v for k, v in m.items() if not k.endswith(("_reached", "_of"))})
            row.update({"reached": m["epochs_to_none_best_reached"],
                        "of": m["epochs_to_none_best_of"],
                        "reached_seeds": [s for s, x in reach.items() if x is not None],
                        "unreached_seeds": [s for s, x in reach.items() if x is None]})
            row.update({k: v for k, v in _reached("wall_to_none_best", walls).items()
                        if not k.endswith(("_reached", "_of"))})
            row.update(_reached("epochs_to_99", near))
            row.update(_spread("epochs", [r["epochs"] for r in er]))
            row.update(_spread("wall", [r["wall_s"] for r in er]))
            row.update(_spread("first", [r["first_s"] for r in er
                                         if r.get("first_s") is not None]))
            row.update(_spread("teardown", [r["wall_s"] - r["spent_s"] for r in er
                                            if r.get("spent_s") is not None]))
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


def _reach_cell(s: Mapping[str, Any], key: str = "epochs_to_none_best", nd: int = 4,
                reached: str = "reached", of: str = "of", names: bool = True) -> str:
    """Epochs (or seconds) to a target: spread over the seeds that reached it, ``(k/n)``, and
    the seeds that never did (``never`` when none did)."""
    if not s.get(of):
        return "-"
    mean = None if s.get(key) is None else \
        (f"{s[key]:.1f}" if key.startswith("epochs") else _f(s[key], nd))
    head = "never" if mean is None else \
        f"{mean} ± {_f(s.get(f'{key}_sd'), 2)} " \
        f"[{_f(s.get(f'{key}_min'), nd)}–{_f(s.get(f'{key}_max'), nd)}]"
    miss = s.get("unreached_seeds") or [] if names else []
    tail = f"; not reached: seed {', '.join(str(x) for x in miss)}" if miss else ""
    return f"{head} ({s[reached]}/{s[of]}{tail})"


def race_tables(doc: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the table per study (strings, ready to print): every measure as
    ``mean ± sd [min–max]`` over the seeds in the ``seeds`` column; the targets' cells also
    say how many seeds reached them."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for s in doc["summary"]:
        seeds = s.get("seed_list")
        tables.setdefault(s["study"], []).append({
            "entrant": s["entrant"],
            "seeds": (f"{s['seeds']}" if seeds is None
                      else f"{s['seeds']} ({', '.join(str(x) for x in seeds)})"),
            "epochs to none's best": _reach_cell(s),
            "wall s to none's best": _reach_cell(s, "wall_to_none_best", 3, names=False),
            "epochs to 99%": _reach_cell(s, "epochs_to_99", reached="epochs_to_99_reached",
                                         of="epochs_to_99_of", names=False),
            "best @25%": _cell(s, "best_at_25"),
            "best @50%": _cell(s, "best_at_50"),
            "best @100%": _cell(s, "best"),
            "test": _cell(s, "test"),
            "wall s": _cell(s, "wall", 3),
            "s to 1st epoch": _cell(s, "first", 2)})
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
    :func:`summarize_by_direction` (so that an older file gets every measure)."""
    return {**doc, "summary": summarize_by_direction(doc["races"], directions,
                                                     doc.get("budget"))}


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
