"""The curve plot of ``nas curve --plot`` and the demo: matplotlib (Agg), loaded on demand."""

from __future__ import annotations

import os
from collections.abc import Sequence

from nas.errors import ConfigError
from nas.interfaces import Action, Direction
from nas.storage import DecisionRecord, ForecastRecord

__all__ = ["plot_curve"]


def plot_curve(
    path: str | os.PathLike[str],
    points: Sequence[tuple[int, float | None, float | None]],
    forecasts: Sequence[ForecastRecord] = (),
    decisions: Sequence[DecisionRecord] = (),
    *,
    title: str = "",
    direction: str = Direction.MAXIMIZE,
    best: Sequence[tuple[int, float | None]] = (),
) -> None:
    """Write a PNG: the curve (value per step) and, where forecasts are stored, the forecast of
    the value at the horizon made after each step (mean and the q05-q95 interval, drawn at the
    step where it was made; a band between steps, an error bar at each, so that one forecast
    shows too), ``best``: the study's best value at each decision (the line the forecast had
    to clear), and a dotted line where the policy said STOP with its reason in the legend.
    Steps are whole epochs on the axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        steps = [s for s, v, _ in points if v is not None]
        values = [v for _, v, _ in points if v is not None]
        ax.plot(steps, values, marker="o", ms=3, lw=1.5, label="observed")
        fs = sorted(forecasts, key=lambda f: f.step)
        if fs:
            xs = [f.step for f in fs]
            nan = float("nan")
            lo = [f.summary.q05 if f.summary.q05 is not None else nan for f in fs]
            hi = [f.summary.q95 if f.summary.q95 is not None else nan for f in fs]
            mean = [f.summary.mean if f.summary.mean is not None else nan for f in fs]
            label = f"forecast of step {fs[-1].summary.horizon}: 5-95%"
            if len(fs) > 1:
                ax.fill_between(xs, lo, hi, alpha=0.2, color="C1")
            ax.errorbar(xs, mean, yerr=[[m - a for m, a in zip(mean, lo)],
                                        [b - m for m, b in zip(mean, hi)]],
                        fmt="s", ms=4, color="C1", capsize=4, lw=1, label=label)
            if len(fs) > 1:
                ax.plot(xs, mean, ls="--", lw=1, color="C1")
        bs = [(s, v) for s, v in sorted(best) if v is not None]
        if bs:
            ax.plot([s for s, _ in bs], [v for _, v in bs], color="C2", marker="_", ms=14,
                    mew=2, lw=1, drawstyle="steps-post", label="study best at the decision")
        for d in decisions:
            if d.action == Action.STOP:
                reason = d.reason if len(d.reason) <= 70 else d.reason[:67] + "..."
                ax.axvline(d.step, color="red", ls=":", lw=1,
                           label=f"STOP after step {d.step} ({d.policy}): {reason}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("step (epoch)")
        ax.set_ylabel(f"value ({direction})")
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        try:
            fig.savefig(os.fspath(path), format="png")
        except OSError as exc:
            raise ConfigError(f"cannot write the plot {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
