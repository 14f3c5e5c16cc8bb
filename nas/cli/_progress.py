"""The live terminal view of ``nas run`` and its final leaderboard (rich, on stderr).

:class:`ProgressView` is started by the CLI around :func:`nas.runner.run_study`: ``attach`` is
the runner's ``on_start`` (it receives the engine), rich refreshes the view from its own thread
a few times a second, each time from one :class:`~nas.runner._stats.RunStats` snapshot
(``engine.stats()``); the view reads nothing else of the engine.
Everything goes to stderr so that ``--json`` keeps stdout for the one JSON document.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nas._format import short_config

if TYPE_CHECKING:
    from nas.runner import RunStats

__all__ = ["ProgressView", "progress_every_s", "render_leaderboard", "task_progress"]


def _fmt_s(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _flow(items: list[Text], width: int, gap: int = 2) -> Text:
    """The items on as few lines as ``width`` allows, each kept whole on its line (a grid of
    columns would wrap inside an item: ``epochs 130 (saved`` / ``14)``)."""
    out = Text()
    used = 0
    for item in items:
        n = item.cell_len
        if used and used + gap + n > width:
            out.append("\n")
            used = 0
        elif used:
            out.append(" " * gap)
            used += gap
        out.append_text(item)
        used += n
    return out


class ProgressView:
    """Trials done / running / stopped / failed, best value, epochs saved, elapsed and ETA."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._stats: Callable[[], RunStats] | None = None
        self.t0 = time.monotonic()
        self.done0 = 0
        self._live: Live | None = None

    def attach(self, engine: Any) -> None:
        """Start the view over ``engine`` (anything with a ``stats()`` returning RunStats)."""
        self._stats = engine.stats
        self.done0 = engine.stats().done
        self.t0 = time.monotonic()
        self._live = Live(get_renderable=self.render, console=self.console,
                          refresh_per_second=4, transient=False)
        self._live.start()

    def render(self) -> Any:
        if self._stats is None:
            return Text("starting ...")
        s = self._stats()
        c = s.counts
        done = s.done
        elapsed = time.monotonic() - self.t0
        new = done - self.done0
        left = max(0, s.budget - new)
        eta = elapsed / new * left if new else None
        budget_epochs = done * s.horizon
        saved = max(0, budget_epochs - s.epochs_run) if done else 0
        items = [
            Text(f"study {s.study}", style="bold"),
            Text(f"done {done}/{done - new + s.budget}"),
            Text(f"running {s.running}"),
            Text(f"complete {c.get('COMPLETE', 0)}"),
            Text(f"stopped {c.get('STOPPED', 0)}"),
            Text(f"failed {c.get('FAILED', 0)}"),
            Text(f"best {s.best_value:.4g} (#{s.best_number})" if s.best_value is not None
                 else "best -"),
            Text(f"epochs {s.epochs_run} (saved {saved})"),
            Text(f"elapsed {_fmt_s(elapsed)}"),
            Text(f"ETA {_fmt_s(eta) if left else '0m00s'}"),
        ]
        return _flow(items, self.console.width)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if not self.console.is_terminal:  # rich leaves the last frame without a newline
                self.console.line()


def render_leaderboard(summary: Any, console: Console | None = None) -> None:
    """The top trials of a :class:`~nas.runner.RunSummary`, and where the database is."""
    console = console or Console(stderr=True)
    table = Table(title=f"study {summary.study}: best {len(summary.leaderboard)} "
                        f"({summary.direction})")
    for col in ("#", "trial", "value", "epochs", "config"):
        table.add_column(col, no_wrap=(col != "config"))
    for i, row in enumerate(summary.leaderboard, 1):
        table.add_row(str(i), str(row["number"]), f"{row['value']:.6g}", str(row["epochs"]),
                      Text(short_config(row["config"])))  # Text: brackets are not markup
    console.print(table)
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary.trials.items()))
    saved = summary.epochs_budget - summary.epochs_run
    console.print(f"trials: {counts}; epochs run {summary.epochs_run} of {summary.epochs_budget}"
                  f" without stopping (saved {max(0, saved)}); wall {summary.wall_s:.1f} s")
    fs = getattr(summary, "false_stops", None)
    if fs and (fs["audited"] or fs["pending"]):
        from nas.policies import false_stop_text

        console.print(false_stop_text(fs), markup=False, highlight=False)
    if summary.nodes and len(summary.nodes) > 1:
        console.print(f"trials per Ray node: {summary.nodes}")
    if summary.interrupted:
        console.print("[yellow]interrupted[/]: continue with `nas run FILE --resume`")
    console.print(f"results in {summary.storage}", markup=False, highlight=False)


def progress_every_s() -> float:
    """Seconds between progress lines off a terminal: 10, or ``NAS_PROGRESS_EVERY_S``."""
    import os

    from nas.errors import ConfigError

    raw = os.environ.get("NAS_PROGRESS_EVERY_S")
    if raw is None:
        return 10.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"NAS_PROGRESS_EVERY_S is {raw!r}; it must be a number of seconds > 0")
    return value


@contextmanager
def task_progress(label: str, *, every_s: float | None = None, console: Console | None = None,
                  auto_refresh: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """Progress of a long command on stderr: ``update(what, done, total)``.

    On a terminal, a rich progress bar with the elapsed time and an ETA (``auto_refresh=False``:
    redrawn only on updates, no refresh thread: for timing benchmarks).  Otherwise (a log
    file, CI), one line ``label: done/total (what), elapsed 1m05s, ETA 2m10s`` at the first
    update and then at least every ``every_s`` seconds (default :func:`progress_every_s`) from
    a background thread, however long one step takes, and a last line when it ends well (a
    command that fails before any update prints only its error line)."""
    console = console or Console(stderr=True)
    every = progress_every_s() if every_s is None else every_s
    if console.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn(f"{label}: {{task.description}}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                      TimeRemainingColumn(), console=console, transient=True,
                      auto_refresh=auto_refresh) as prog:
            task = prog.add_task("starting", total=None)

            def bar(what: str, done: int, total: int) -> None:
                prog.update(task, description=what, completed=done, total=total,
                            refresh=not auto_refresh)

            yield bar
        return
    t0 = time.monotonic()
    state: dict[str, Any] = {"what": "starting", "done": 0, "total": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def line() -> None:
        with lock:
            what, done, total = state["what"], state["done"], state["total"]
        elapsed = time.monotonic() - t0
        eta = elapsed / done * (total - done) if done and total else None
        of = f"{done}/{total}" if total else f"{done}"
        console.print(f"{label}: {of} ({what}), elapsed {_fmt_s(elapsed)}, ETA "
                      f"{_fmt_s(eta) if total else '?'}", markup=False, highlight=False,
                      soft_wrap=True)

    started = threading.Event()  # a line was printed: the end gets one too

    def tick() -> None:
        while not stop.wait(every):
            started.set()
            line()

    def update(what: str, done: int, total: int) -> None:
        with lock:
            state.update(what=what, done=done, total=total)
        if not started.is_set():  # the first line when the work starts, not before: a command
            started.set()         # that fails first prints its one error line and nothing else
            line()

    thread = threading.Thread(target=tick, name="nas-progress", daemon=True)
    thread.start()
    ok = False
    try:
        yield update
        ok = True
    finally:
        stop.set()
        thread.join()
        with lock:
            state["what"] = "done" if state["done"] >= state["total"] else "stopped"
        if ok and started.is_set():
            line()
