"""``nas bench predict`` and ``nas bench replay`` (protocols in :mod:`nas.bench`).

JSON goes to stdout (one document); progress goes to stderr.  Heavy imports (the benchmark
modules, scikit-learn, torch via a predictor) happen inside the commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from nas.cli._app import bench_app
from nas.cli._output import FORMAT_OPTION, JSON_OPTION, Format, emit, emit_json, resolve_format
from nas.errors import ConfigError

__all__: list[str] = []

_OPTION_HELP = "Predictor option KEY=VALUE (VALUE parsed as JSON if it can be); repeatable."


def _parse_options(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--predictor-option {item!r} must look like KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _parse_cutoffs(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--cutoffs {text!r} must be comma-separated numbers in (0, 1)") from None
    if not vals:
        raise ConfigError("--cutoffs is empty")
    return vals


@contextmanager
def _progress(auto_refresh: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr (only on a terminal); ``auto_refresh=False`` redraws only on
    updates (no refresh thread: for timing benchmarks)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  auto_refresh=auto_refresh, disable=not console.is_terminal) as prog:
        task = prog.add_task("starting", total=None)

        def update(desc: str, done: int, total: int) -> None:
            prog.update(task, description=desc, completed=done, total=total,
                        refresh=not auto_refresh)

        yield update


def _load(path: Path) -> Any:
    from nas.curvefile import load_curves

    cs = load_curves(path)
    cs.require_unit_range()
    return cs


@bench_app.command("predict")
def predict_cmd(
    curves: Path = typer.Option(..., "--curves", help="Curve file (.npz, values in [0, 1])."),
    predictor: str = typer.Option(..., "--predictor", help="Predictor name or module:attr."),
    cutoffs: str = typer.Option("0.1,0.2,0.4", "--cutoffs", help="Observed fractions f."),
    folds: int = typer.Option(5, "--folds", help="Folds per task group."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fold permutation."),
    threads: int = typer.Option(1, "--threads", help="Threads for prediction (timed)."),
    option: list[str] | None = typer.Option(None, "--predictor-option", help=_OPTION_HELP),
    calibrate: bool = typer.Option(
        True, "--calibrate/--no-calibrate",
        help="Recalibrate the forecasts on the training folds' curves (as nas run does)."),
    context: bool = typer.Option(
        True, "--context/--no-context",
        help="Give a study-reading predictor each curve's earlier group curves as context."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Forecast final values from prefixes (per-group K-fold) and score them."""
    from nas.bench import run_predict

    out_fmt = resolve_format(fmt, as_json, allowed=("table", "json"))
    if threads < 1:
        raise ConfigError(f"--threads is {threads}, but must be >= 1")
    cs = _load(curves)
    with _progress() as prog:
        doc = run_predict(cs, predictor, options=_parse_options(option),
                          cutoffs=_parse_cutoffs(cutoffs), folds=folds, seed=seed,
                          threads=threads, calibrate=calibrate, progress=prog, context=context)
    if out_fmt == "json":
        emit_json(doc)
        return
    rows = [{"cutoff": k, **v, "mse_active": doc["active"][k]["mse"]}
            for k, v in doc["cutoffs"].items()]
    emit(rows, "table", title=f"{predictor}{' (calibrated)' if doc['calibrated'] else ''} on {doc['file']} (n={doc['n']}, {threads} thread(s))")


@bench_app.command("replay")
def replay_cmd(
    curves: Path = typer.Option(..., "--curves", help="Curve file (.npz, values in [0, 1])."),
    policy: str = typer.Option(..., "--policy", help="none | median | asha | predictive | m:a"),
    predictor: str | None = typer.Option(None, "--predictor", help="For predictive."),
    delta: float | None = typer.Option(None, "--delta", help="predictive: P threshold."),
    epsilon: float | None = typer.Option(
        None, "--epsilon", help="predictive: regret tolerance (stop when P(final > best + "
                                "epsilon) < delta; default 0.01)."),
    audit: float | None = typer.Option(
        None, "--audit", help="Stop audit rate: share of would-be stops that run on to the "
                              "horizon to measure the false-stop rate (default 0.05; 0 = off)."),
    calibrate: bool = typer.Option(
        False, "--calibrate/--no-calibrate",
        help="Recalibrate the predictor's forecasts on the replayed study's own trials before "
             "the stop rule reads them (as stopping.calibrate = true in a study file)."),
    min_epochs: int | None = typer.Option(None, "--min-epochs", help="predictive (1)."),
    grace: int | None = typer.Option(None, "--grace", help="asha: grace period (1)."),
    eta: float | None = typer.Option(None, "--eta", help="asha: reduction factor (3)."),
    startup: int | None = typer.Option(None, "--startup", help="median: startup trials (5)."),
    seeds: int = typer.Option(5, "--seeds", help="Seeds (orders) per task group."),
    option: list[str] | None = typer.Option(None, "--predictor-option", help=_OPTION_HELP),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay the file as a sequential random search under a stopping policy."""
    from nas.bench import run_replay

    out_fmt = resolve_format(fmt, as_json, allowed=("table", "json"))
    given = {"delta": delta, "epsilon": epsilon, "min_epochs": min_epochs, "grace_period": grace,
             "reduction_factor": eta, "n_startup_trials": startup}
    flags = {"delta": "--delta", "epsilon": "--epsilon", "min_epochs": "--min-epochs", "grace_period": "--grace",
             "reduction_factor": "--eta", "n_startup_trials": "--startup"}
    accepts = {"predictive": {"delta", "epsilon", "min_epochs"}, "asha": {"grace_period", "reduction_factor"},
               "median": {"n_startup_trials"}, "none": set()}
    opts = {k: v for k, v in given.items() if v is not None}
    if policy in accepts:
        bad = sorted(flags[k] for k in opts if k not in accepts[policy])
        if bad:
            raise ConfigError(f"{', '.join(bad)} do(es) not apply to policy {policy!r}")
        if predictor is not None and policy != "predictive":
            raise ConfigError(f"--predictor does not apply to policy {policy!r}")
    cs = _load(curves)
    with _progress() as prog:
        doc = run_replay(cs, policy, policy_options=opts, predictor=predictor,
                         predictor_options=_parse_options(option), seeds=seeds,
                         audit=audit, calibrate=calibrate, progress=prog)
    if out_fmt == "json":
        emit_json(doc)
        return
    rows = [{"group": g, **v} for g, v in doc["groups"].items()]
    rows.append({"group": "mean", "speedup": doc["speedup"], "regret": doc["regret"]})
    from nas.policies._audit import false_stop_text

    fs = doc["false_stops"]
    audit_note = f", {false_stop_text(fs)}" if fs["audited"] else ""
    emit(rows, "table", title=f"replay {policy} ({predictor or '-'}"
                              f"{', calibrated' if doc['calibrated'] else ''}), worst regret "
                              f"{doc['worst_regret']:.4g}{audit_note}")


@bench_app.command("race")
def race_cmd(
    study_files: list[Path] = typer.Argument(..., help="Study files (.toml or .py)."),
    seeds: int = typer.Option(3, "--seeds", help="Race seeds (added to each study's seed)."),
    budget_epochs: int | None = typer.Option(
        None, "--budget-epochs", help="Epochs each entrant may consume (counted exactly)."),
    budget_s: float | None = typer.Option(
        None, "--budget-s", help="Wall seconds each entrant may use."),
    entrants: str | None = typer.Option(
        None, "--entrants", help="Comma-separated subset of: none, optuna-median, "
        "optuna-hyperband, tune-asha, nas-asha, nas-baker, nas-pfn (default: all)."),
    test: bool = typer.Option(True, "--test/--no-test",
                              help="Retrain each entrant's best configuration and score it "
                                   "on the test split (the nas evaluate path)."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write a PNG of best-so-far "
                                                          "against epochs."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Race nas against plain Optuna and plain Ray Tune on the same search and budget."""
    from nas.bench._race import ENTRANTS, check_race_options, plot_races, race_tables, run_race

    out_fmt = resolve_format(fmt, as_json, allowed=("table", "json"))
    names = list(ENTRANTS) if entrants is None else \
        [e.strip() for e in entrants.split(",") if e.strip()]
    cfgs = check_race_options([str(p) for p in study_files], seeds=seeds,
                              budget_epochs=budget_epochs, budget_s=budget_s, entrants=names,
                              plot=plot)
    with _progress() as prog:
        doc = run_race(cfgs, seeds=seeds, budget_epochs=budget_epochs, budget_s=budget_s,
                       entrants=names, test=test, progress=prog)
    if plot is not None:
        plot_races(doc, plot)
        typer.echo(f"wrote {plot}", err=True)
    if out_fmt == "json":
        emit_json(doc)
        return
    budget = (f"{budget_epochs} epochs" if budget_epochs is not None else
              f"{budget_s:g} s" if budget_s is not None else "the studies' trial budgets")
    for study, rows in race_tables(doc).items():
        emit(rows, "table", title=f"race {study}: {seeds} seed(s), budget {budget}")
