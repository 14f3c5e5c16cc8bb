"""``nas bench predict`` and ``nas bench replay`` (protocols in :mod:`nas.bench`).

JSON goes to stdout (one document); progress goes to stderr.  Heavy imports (the benchmark
modules, scikit-learn, torch via a predictor) happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from nas.cli._app import bench_app
from nas.cli._output import (
    FORMAT_OPTION,
    JSON_OPTION,
    Format,
    check_count,
    check_output_file,
    emit,
    emit_json,
    resolve_format,
)
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
    from nas.cli._progress import task_progress

    out_fmt = resolve_format(fmt, as_json, allowed=("table", "json"))
    if threads < 1:
        raise ConfigError(f"--threads = {threads}: must be >= 1")
    cs = _load(curves)
    with task_progress("nas bench predict") as prog:
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
    policy: str | None = typer.Option(
        None, "--policy", help="none | median | asha | predictive | regret | m:a (default: the "
                               "file's, as nas export writes it from the study)."),
    predictor: str | None = typer.Option(None, "--predictor", help="For predictive, regret."),
    delta: float | None = typer.Option(None, "--delta", help="predictive: P threshold."),
    epsilon: float | None = typer.Option(
        None, "--epsilon", help="predictive: regret tolerance (stop when P(final > best + "
                                "epsilon) < delta; default 0.01)."),
    audit: float | None = typer.Option(
        None, "--audit", help="Stop audit rate: share of would-be stops that run on to the "
                              "horizon to measure the false-stop rate (default 0.05; 0 = off)."),
    calibrate: bool | None = typer.Option(
        None, "--calibrate/--no-calibrate",
        help="Recalibrate the predictor's forecasts on the replayed study's own trials before "
             "the stop rule reads them (as stopping.calibrate = true in a study file; default "
             "off)."),
    min_epochs: int | None = typer.Option(None, "--min-epochs", help="predictive, regret (1)."),
    grace: int | None = typer.Option(None, "--grace", help="asha: grace period (1)."),
    eta: float | None = typer.Option(None, "--eta", help="asha: reduction factor (3)."),
    startup: int | None = typer.Option(None, "--startup", help="median: startup trials (5)."),
    seeds: int = typer.Option(5, "--seeds", help="Seeds (orders) per task group."),
    option: list[str] | None = typer.Option(None, "--predictor-option", help=_OPTION_HELP),
    explain: bool = typer.Option(
        False, "--explain", help="List, per group and seed with regret, the stopped trial that "
                                 "decided it: its number, stop step, forecast and final."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay the file as a sequential random search under a stopping policy.

    Without --policy, the stopping settings the file carries (a study's, written by nas
    export) are used; flags override them.  Only complete curves are replayed: the output
    says how many were used and dropped."""
    from nas.bench import run_replay
    from nas.cli._progress import task_progress

    out_fmt = resolve_format(fmt, as_json, allowed=("table", "json"))
    from nas.config import MAX_SEEDS

    check_count(seeds, "--seeds", MAX_SEEDS)
    from nas.bench import file_stopping
    from nas.policies import make_policy, policy_caps

    cs = _load(curves)
    name = policy if policy is not None else file_stopping(cs)["policy"]
    given = {"delta": delta, "epsilon": epsilon, "min_epochs": min_epochs, "grace_period": grace,
             "reduction_factor": eta, "n_startup_trials": startup}
    flags = {"delta": "--delta", "epsilon": "--epsilon", "min_epochs": "--min-epochs",
             "grace_period": "--grace", "reduction_factor": "--eta",
             "n_startup_trials": "--startup"}
    opts = {k: v for k, v in given.items() if v is not None}
    caps = policy_caps(make_policy(name))  # what the policy declares it takes
    bad = sorted(flags[k] for k in opts if k not in caps["options"])
    whose = "" if policy is not None else f" (the policy of {curves})"
    if bad:
        raise ConfigError(f"{', '.join(bad)} do(es) not apply to policy {name!r}{whose}")
    if predictor is not None and not caps["needs_predictor"]:
        raise ConfigError(f"--predictor does not apply to policy {name!r}{whose}")
    flagged = ([] if policy is None else ["policy"]) + \
        ([] if predictor is None else ["predictor"]) + list(opts) + \
        ([] if audit is None else ["audit"]) + ([] if calibrate is None else ["calibrate"])
    with task_progress("nas bench replay") as prog:
        doc = run_replay(cs, policy, policy_options=opts, predictor=predictor,
                         predictor_options=_parse_options(option), seeds=seeds,
                         audit=audit, calibrate=calibrate, progress=prog, explain=explain)
    if out_fmt == "json":
        emit_json(doc)
        return
    if explain:
        lost = [{"group": e["group"], "seed": e["seed"], "regret": e["regret"],
                 "trial": e["trial"], "row": e["row"], "stop_step": e["stop_step"],
                 "forecast": e["forecast_mean"], "threshold": e["threshold"],
                 "final": e["final"]} for e in doc["explain"]]
        emit(lost, "table", title="the trial that decided each regret (none: no regret)")
    rows = [{"group": g, "speedup": v["speedup"], "regret": v["regret"],
             "used": v["curves_used"], "dropped": v["curves_dropped"]}
            for g, v in doc["groups"].items()]
    rows += [{"group": g, "speedup": None, "regret": None, "used": 0,
              "dropped": v["curves_dropped"]} for g, v in doc["groups_dropped"].items()]
    rows.append({"group": "mean", "speedup": doc["speedup"], "regret": doc["regret"],
                 "used": doc["curves_used"], "dropped": doc["curves_dropped"]})
    from nas.policies import false_stop_text

    fs = doc["false_stops"]
    audit_note = f", {false_stop_text(fs)}" if fs["audited"] else ""
    emit(rows, "table", title=f"replay {doc['policy']} ({doc['predictor'] or '-'}"
                              f"{', calibrated' if doc['calibrated'] else ''}), worst regret "
                              f"{doc['worst_regret']:.4g}{audit_note}")
    typer.echo(f"curves: {doc['dropped_text']}")
    typer.echo(_settings_text(doc, curves, flagged))


def _settings_text(doc: dict[str, Any], curves: Path, flagged: list[str]) -> str:
    """Which settings the replay took from the file, and which from flags (the rest are the
    defaults)."""
    def show(k: str) -> str:
        v = doc["calibrated"] if k == "calibrate" else doc["options"].get(k, doc.get(k))
        return f"{k} {'on' if v is True else 'off' if v is False else v}"

    parts = []
    if doc["from_file"]:
        taken = [show(k) for k in doc["from_file"]]
        parts.append(f"settings from {curves} (the study's): {', '.join(taken)}")
    elif doc["file_stopping"] is not None:
        parts.append(f"settings: not the study's in {curves} (policy "
                     f"{doc['file_stopping'].get('policy')}): --policy was given")
    if flagged:
        parts.append(f"from flags: {', '.join(show(k) for k in flagged)}")
    return "; ".join(parts) or "settings: from flags and defaults"


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
        "optuna-hyperband, tune-asha, nas (the study's own stopping), nas-asha, nas-baker, "
        "nas-pfn (default: none, optuna-median, optuna-hyperband, tune-asha, nas)."),
    test: bool = typer.Option(True, "--test/--no-test",
                              help="Retrain each entrant's best configuration and score it "
                                   "on the test split (the nas evaluate path)."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write a PNG of best-so-far "
                                                          "against epochs."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Race nas against plain Optuna and plain Ray Tune on the same search and budget."""
    from nas.bench import (
        DEFAULT_ENTRANTS,
        check_race_options,
        plot_races,
        race_tables,
        run_race,
    )

    out_fmt = resolve_format(fmt, as_json, allowed=("table", "json"))
    from nas.config import MAX_EPOCHS, MAX_SEEDS, MAX_TRIALS

    check_count(seeds, "--seeds", MAX_SEEDS)
    check_count(budget_epochs, "--budget-epochs", MAX_TRIALS * MAX_EPOCHS)
    if plot is not None:  # before the race: a plot it cannot write must not lose the results
        check_output_file(plot, "--plot")
    names = list(DEFAULT_ENTRANTS) if entrants is None else \
        [e.strip() for e in entrants.split(",") if e.strip()]
    cfgs = check_race_options([str(p) for p in study_files], seeds=seeds,
                              budget_epochs=budget_epochs, budget_s=budget_s, entrants=names,
                              plot=plot)
    from nas.cli._progress import task_progress

    with task_progress("nas bench race") as prog:
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
