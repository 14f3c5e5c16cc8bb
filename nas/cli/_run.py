"""``nas run``, ``nas validate``, ``nas evaluate`` and ``nas bench overhead``.

Registered on import.  No ray or torch at module level: the runner, evaluation and benchmark
modules are imported inside the commands.  JSON output is one document on stdout; the live view,
leaderboard and logs go to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from nas.cli._app import app, bench_app
from nas.cli._output import (
    FORMAT_OPTION,
    JSON_OPTION,
    Format,
    check_count,
    emit,
    emit_json,
    resolve_format,
)
from nas.errors import ConfigError

__all__: list[str] = []


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout, by Python (``print``) or below it (Ray's raylet and
    worker lines, C++ logs: file descriptor 1), to stderr while the block runs: ``--json``
    keeps stdout for its one document."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 (closed): nothing below Python to redirect
        saved = -1
    if saved >= 0:
        os.dup2(2, 1)
    previous = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = previous
        if saved >= 0:
            os.dup2(saved, 1)
            os.close(saved)


def _logging(verbose: bool, quiet: bool) -> None:
    level = logging.INFO if verbose else (logging.ERROR if quiet else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("nas").setLevel(level)


@app.command("run")
def run_cmd(
    file: Path = typer.Argument(..., help="Study file (.toml, or .py defining `study`)."),
    storage: str | None = typer.Option(None, "--storage", help="Database URL (wins over "
                                          "NAS_STORAGE and the file's `storage`)."),
    address: str | None = typer.Option(None, "--address", help="Join a running Ray cluster: "
                                          "auto or HOST:PORT (default: an embedded local Ray)."),
    trials: int | None = typer.Option(None, "--trials", help="Override search.trials."),
    timeout: float | None = typer.Option(None, "--timeout", help="Stop after S seconds; "
                                            "running trials become INTERRUPTED."),
    cpus: int | None = typer.Option(None, "--cpus", help="CPUs of the embedded Ray "
                                       "(default: all)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the study of this name."),
    ray_results: Path | None = typer.Option(None, "--ray-results", help="Where Ray Tune keeps "
                                            "its own per-trial files (default ~/ray_results)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary at the end."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live view, no leaderboard."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Ray's and Optuna's logs."),
) -> None:
    """Run a study: search, stop unpromising trials early, record everything."""
    from nas.cli._progress import ProgressView, render_leaderboard
    from nas.config import MAX_TRIALS, load_config
    from nas.runner import run_study

    check_count(trials, "--trials", MAX_TRIALS)
    _logging(verbose, quiet)
    view = None if (quiet or as_json) else ProgressView()
    with _stdout_to_stderr() if as_json else contextlib.nullcontext():
        cfg = load_config(file)
        try:
            summary = run_study(cfg, storage=storage, address=address, trials=trials,
                                timeout=timeout, cpus=cpus, resume=resume, verbose=verbose,
                                ray_storage=str(ray_results) if ray_results else None,
                                on_start=view.attach if view else None)
        except KeyboardInterrupt as exc:  # SIGINT or SIGTERM: the runner marked live trials
            if view is not None:
                view.stop()
                view = None
            import signal

            from nas.runner import Terminated, received_stop_signal

            signum = (exc.signum if isinstance(exc, Terminated)
                      else received_stop_signal() or int(signal.SIGINT))
            again = f"nas run {file} --resume" + (" --storage URL" if storage else "")
            print(f"nas: interrupted by {signal.Signals(signum).name}: running trials are "
                  f"marked INTERRUPTED; resume with: {again}", file=sys.stderr, flush=True)
            raise typer.Exit(128 + signum) from None
        finally:
            if view is not None:
                view.stop()
    if as_json:
        emit_json(summary.to_json())
    elif not quiet:
        render_leaderboard(summary)


@app.command("validate")
def validate_cmd(
    file: Path = typer.Argument(..., help="Study file to check."),
    as_json: bool = typer.Option(False, "--json", help="Print the validated study as JSON."),
) -> None:
    """Check a study file: every key and value, and the plug-ins' own options (nothing runs)."""
    from nas.config import load_config
    from nas.plugins import build_plugins

    cfg = load_config(file)
    build_plugins(cfg)
    if as_json:
        from nas.storage import mask_url

        doc = cfg.to_dict()
        if "storage" in doc["study"]:  # never print a password
            doc["study"]["storage"] = mask_url(doc["study"]["storage"])
        emit_json(doc)
    else:
        typer.echo(f"{file}: ok (study {cfg.name!r}, space {cfg.search.space}, task "
                   f"{cfg.task.name}, {cfg.search.trials} trials, policy "
                   f"{cfg.stopping.policy})")


@app.command("evaluate")
def evaluate_cmd(
    study: str = typer.Argument(..., help="Study name."),
    storage: str | None = typer.Option(None, "--storage", help="Database URL."),
    top: int = typer.Option(3, "--top", help="How many of the best configurations."),
    seeds: int = typer.Option(3, "--seeds", help="Retraining seeds per configuration."),
    out: Path = typer.Option(Path("nas-models"), "--out", help="Where weights are saved."),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the study's "
                                         "max_epochs for retraining."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Retrain the top-K configurations on train+validation with S seeds; report test metrics."""
    from nas.cli._progress import task_progress
    from nas.config import MAX_EPOCHS, MAX_SEEDS
    from nas.evaluate import MAX_TOP, check_out_dir, evaluate_study

    kind = resolve_format(fmt, as_json)
    check_count(top, "--top", MAX_TOP)
    check_count(seeds, "--seeds", MAX_SEEDS)
    check_count(epochs, "--epochs", MAX_EPOCHS)
    check_out_dir(Path(out))  # before any progress line: a bad --out is one line
    with task_progress(f"nas evaluate {study}") as progress:
        result = evaluate_study(study, storage=storage, top=top, seeds=seeds, out_dir=out,
                                max_epochs=epochs, progress=progress)
    if kind == "json":
        emit_json(result)
        return
    rows = [{"rank": r["rank"], "number": r["number"], "val": r["val_value"],
             "metric": r["metric"], "mean": r["mean"], "std": r["std"], "seeds": len(r["runs"]),
             "weights": r["dir"]} for r in result["results"]]
    if kind == "csv":
        emit(rows, kind)
        return
    # a table: the metric in the title, each trial's folder under the one named below it
    # (a path has no space to wrap at: in full, it would not fit 80 columns)
    base = Path(out) / study
    for row in rows:
        row["weights"] = Path(row["weights"]).name if Path(row["weights"]).parent == base \
            else row["weights"]
    metric = result["metric"]
    emit(rows, kind, columns=["rank", "number", "val", "mean", "std", "seeds", "weights"],
         title=f"study {study}: {metric} on the test split over {seeds} seed(s)")
    typer.echo(f"weights: {base}{os.sep}<weights>{os.sep}seed-<s>.safetensors, with config.json")


@bench_app.command("overhead")
def overhead_cmd(
    trials: int = typer.Option(20, "--trials", help="Trivial trials per engine."),
    epochs: int = typer.Option(20, "--epochs", help="Epochs each trial reports."),
    cpus: int = typer.Option(2, "--cpus", help="CPUs of the embedded Ray."),
    concurrency: int = typer.Option(1, "--concurrency",
                                    help="Trials at once on both sides (see docs/runner.md)."),
    reps: int = typer.Option(5, "--reps", help="Alternating repetitions (medians compared)."),
    simulated: list[int] | None = typer.Option(
        None, "--simulated-trials",
        help="No Ray, no training: N concurrent synthetic trials report through the stopping "
             "session; results/s and report latency per predictor (repeat for several N)."),
    results: int | None = typer.Option(
        None, "--results", help="Results per simulated run (default 3 x N x 20: every live "
                                "trial slot turns over about three times)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Engine vs plain Ray Tune on trivial trials; scheduler-hook latency (predictive policy)."""
    from nas.bench.overhead import run_overhead
    from nas.cli._progress import task_progress
    from nas.config import MAX_EPOCHS, MAX_TRIALS

    check_count(trials, "--trials", MAX_TRIALS)
    check_count(epochs, "--epochs", MAX_EPOCHS)
    check_count(reps, "--reps", 1000)

    _logging(False, True)
    if simulated:
        from nas.bench import run_simulated

        bad = [n for n in simulated if not 1 <= n <= 100_000]
        if bad or (results is not None and not 100 <= results <= 10_000_000):
            raise ConfigError(f"--simulated-trials {bad or simulated} / --results {results}: "
                              "N must be in [1, 100000] and results in [100, 10000000]")
        with task_progress("nas bench overhead", auto_refresh=False) as prog:
            sim = run_simulated(simulated, ["pfn", "baker", None], results=results,
                                progress=prog)
        if as_json:
            emit_json(sim)
            return
        emit([{"N": r["simulated_trials"], "pred": r["predictor"] or "-",
               "policy": r["policy"], "res/s": round(r["results_per_s"]),
               "p50 ms": round(r["hook_ms"]["p50"], 3), "p99 ms": round(r["hook_ms"]["p99"], 2),
               "max ms": round(r["hook_ms"]["max"], 1), "results": r["results"],
               "stopped": r["stopped"], "refits": r["refits"]} for r in sim["runs"]], "table",
             title="the stopping session under N simulated concurrent trials")
        return
    with task_progress("nas bench overhead", auto_refresh=False) as prog:
        res = run_overhead(trials=trials, epochs=epochs, cpus=cpus, concurrency=concurrency,
                           reps=reps, progress=prog)
    if as_json:
        emit_json(res)
        return
    flat = {k: v for k, v in res.items() if not isinstance(v, dict)}
    for name, pred in res["predictive"].items():
        flat.update({f"{name}.{k}": v for k, v in pred.items() if not isinstance(v, dict)})
        for key in ("hook_ms", "hook_ms_during_refit"):
            flat.update({f"{name}.{key}.{k}": v for k, v in pred[key].items()})
    emit([{"measure": k, "value": v} for k, v in flat.items()], "table",
         title="nas bench overhead")
