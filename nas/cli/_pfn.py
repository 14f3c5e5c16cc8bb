"""``nas pfn train|info|sample-prior``: train and inspect the PFN learning-curve predictor.

torch is imported inside the commands (the CLI package must load fast for query commands).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from nas.cli._app import pfn_app
from nas.cli._output import FORMAT_OPTION, JSON_OPTION, Format, emit, emit_json, resolve_format
from nas.errors import ConfigError

log = logging.getLogger(__name__)


@pfn_app.command("train")
def train_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for the checkpoint (weights + config)."),
    steps: int = typer.Option(20_000, "--steps", help="Total optimizer steps (also when resuming)."),
    batch: int = typer.Option(64, "--batch", help="Prior curves per step."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | cuda:N (bf16 autocast on CUDA)."),
    seed: int = typer.Option(0, "--seed", help="Seed: fixes the prior batches and the init."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --out."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (AdamW, cosine decay)."),
    d_model: int = typer.Option(128, "--d-model", help="Transformer width."),
    n_layers: int = typer.Option(4, "--layers", help="Transformer blocks."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0: torch's default)."),
    checkpoint_every: float = typer.Option(300.0, "--checkpoint-every", help="Seconds between checkpoints."),
    log_every: int = typer.Option(100, "--log-every", help="Steps between loss log lines (and a line at least every 10 s)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    study: bool = typer.Option(False, "--study", help="Train the study reader (context PFN) on "
                               "the study prior, on top of a frozen prefix PFN (--base)."),
    base: Path = typer.Option(None, "--base", help="--study: the prefix PFN to start from "
                              "(default: the shipped weights)."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Train the PFN on samples of its prior; checkpoints into --out and can --resume."""

    import torch

    from predictors.pfn.model import PFNConfig
    from predictors.pfn.train import CONFIG_FILE, TrainConfig, train

    f = resolve_format(fmt, as_json, allowed=("table", "json"))
    if threads < 0:
        raise ConfigError(f"--threads = {threads}: must be >= 0")
    if threads:
        torch.set_num_threads(threads)
    if resume and not (out / CONFIG_FILE).is_file():
        raise ConfigError(f"--resume: {out} holds no checkpoint ({CONFIG_FILE} missing)")
    if not resume and (out / CONFIG_FILE).is_file():
        raise ConfigError(f"{out} already holds a checkpoint; pass --resume or another --out")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if study:
        from predictors.pfn.study_train import StudyTrainConfig, train_study

        scfg = StudyTrainConfig(steps=steps, batch=batch, lr=lr, seed=seed,
                                checkpoint_every_s=checkpoint_every, log_every=log_every)
        command = "nas " + " ".join(sys.argv[1:])
        res = train_study(out, scfg, base=base, resume=resume, command=command)
        device = "cpu"
    else:
        cfg = TrainConfig(steps=steps, batch=batch, lr=lr, seed=seed, device=device,
                          checkpoint_every_s=checkpoint_every, log_every=log_every)
        model_cfg = PFNConfig(d_model=d_model, n_layers=n_layers)
        from nas.cli._progress import progress_every_s

        every = progress_every_s()
        with _stop_signals() as stopped:
            res = train(out, cfg, model_cfg, resume=resume, progress=progress and f == "table",
                        log_every_s=every, stop=lambda: bool(stopped))
        if stopped:  # SIGINT or SIGTERM: checkpointed at the last whole step, as nas run does
            again = _resume_line(out, steps=steps, batch=batch, device=device, seed=seed, lr=lr,
                                 threads=threads)
            print(f"nas: interrupted by {signal.Signals(stopped[0]).name}: checkpoint at step "
                  f"{res.step} in {out}; resume with: {again}", file=sys.stderr, flush=True)
            raise typer.Exit(128 + stopped[0])
    doc = {"out": str(out), "step": res.step, "curves_seen": res.curves_seen,
           "wall_s": round(res.wall_s, 1), "curves_per_s": round(res.curves_per_s, 1),
           "last_loss": res.last_loss, "device": device, "threads": torch.get_num_threads()}
    if f == "json":
        emit_json(doc)
    else:
        emit([{"key": k, "value": v} for k, v in doc.items()], "table", title="PFN training")


@contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """SIGINT and SIGTERM (also in the background, where SIGINT is otherwise ignored) end
    training after the step in progress: the list receives the signal.  A second one aborts
    at once (exit 130, no checkpoint)."""
    import signal
    import threading

    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum: int, frame: Any) -> None:
        if got:
            raise KeyboardInterrupt
        got.append(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for sig, h in old.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)


def _resume_line(out: Path, **flags: Any) -> str:
    """``nas pfn train --out DIR --steps N ... --resume``: the flags that differ from the
    defaults (the model's sizes come from the checkpoint)."""
    import shlex

    defaults = {"batch": 64, "device": "cpu", "seed": 0, "lr": 1e-3, "threads": 0}
    parts = ["nas pfn train --out", shlex.quote(str(out)), "--steps", str(flags.pop("steps"))]
    for k, v in flags.items():
        if v != defaults[k]:
            parts += [f"--{k}", shlex.quote(str(v))]
    return " ".join(parts + ["--resume"])


@pfn_app.command("info")
def info_cmd(
    weights: Path = typer.Option(None, "--weights", help="Checkpoint directory (default: shipped)."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show what a PFN checkpoint is: sizes, training steps, curves seen, wall time."""
    from predictors.pfn import default_weights_dir
    from predictors.pfn.train import CONFIG_FILE, load_model

    f = resolve_format(fmt, as_json, allowed=("table", "json"))
    d = weights or default_weights_dir()
    if not (d / CONFIG_FILE).is_file():
        raise ConfigError(f"{d} holds no PFN checkpoint ({CONFIG_FILE} missing)")
    _, doc = load_model(d)  # the weights must load: a corrupt checkpoint is an error here
    row = {"weights": str(d), **{k: doc["model"][k] for k in ("d_model", "n_layers", "n_buckets",
                                                              "max_horizon")},
           "n_params": doc.get("n_params"), "step": doc.get("step"),
           "curves_seen": doc.get("curves_seen"), "wall_s": doc.get("wall_s"),
           "device": doc.get("device"), "threads": doc.get("threads")}
    if f == "json":
        emit_json({**row, "config": doc})
    else:
        emit([{"key": k, "value": v} for k, v in row.items()], "table", title="PFN checkpoint")


@pfn_app.command("export")
def export_cmd(
    src: Path = typer.Option(..., "--from", help="A training checkpoint directory."),
    dst: Path = typer.Option(..., "--to", help="Where to put the weights (e.g. predictors/pfn/weights)."),
    base_run: Path = typer.Option(None, "--base-run", help="config.json of the prefix PFN's own "
                                  "training run, recorded as base_run (study checkpoints)."),
) -> None:
    """Copy a checkpoint's weights and config (not its optimizer state) for shipping."""
    import json
    import shutil

    from nas.errors import PredictorError
    from predictors.pfn import PFNPredictor
    from predictors.pfn.train import CONFIG_FILE, WEIGHTS_FILE, read_config

    try:
        doc = read_config(src)
        size = (src / WEIGHTS_FILE).stat().st_size
    except (PredictorError, OSError) as exc:
        raise ConfigError(f"--from {src}: {exc}") from None
    if size > 20 * 2**20:
        raise ConfigError(f"{src / WEIGHTS_FILE} is {size / 2**20:.1f} MiB; shipped weights must "
                          "stay under 20 MiB")
    if base_run is not None:
        doc["base_run"] = json.loads(base_run.read_text())
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / WEIGHTS_FILE, dst / WEIGHTS_FILE)
    (dst / CONFIG_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    PFNPredictor(dst)  # must load
    emit_json({"to": str(dst), "bytes": size, "step": doc.get("step"),
               "study": "study" in doc})


@pfn_app.command("sample-prior")
def sample_prior_cmd(
    plot: Path = typer.Option(..., "--plot", help="PNG file: 20 curves per family."),
    per_family: int = typer.Option(20, "--per-family", help="Curves drawn per family."),
    horizon: int = typer.Option(50, "--horizon", help="Curve length."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    studies: bool = typer.Option(False, "--studies", help="Plot 3 sampled studies of the study "
                                 "prior next to 3 real groups of --real, with their statistics."),
    real: Path = typer.Option(Path("benchmarks/data/nas_corpus.npz"), "--real",
                              help="--studies: the curve file whose first 3 groups are shown."),
    runs: int = typer.Option(60, "--runs", help="--studies: runs per sampled study."),
) -> None:
    """Draw curves of every family of the prior into a picture (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("sample-prior --plot needs matplotlib (pip install matplotlib)") from None
    if studies:
        _plot_studies(plt, plot, real, runs, seed)
        return
    from predictors.pfn.prior import FAMILIES, sample_prior

    if per_family < 1 or horizon < 2:
        raise ConfigError("--per-family must be >= 1 and --horizon >= 2")
    names = list(FAMILIES) + ["flat at chance"]
    idx = list(range(len(FAMILIES))) + [-1]
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), sharex=True, sharey=True)
    for ax, name, fam in zip(axes.flat, names, idx):
        b = sample_prior(per_family, horizon, seed=seed + 101 * (fam + 1), family=fam)
        t = range(1, horizon + 1)
        for row in b.y.numpy():
            ax.plot(t, row, lw=0.8, alpha=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_ylim(-0.03, 1.03)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"PFN prior: {per_family} curves per family (effects mixed in), T = {horizon}")
    fig.tight_layout()
    fig.savefig(plot, dpi=90)
    typer.echo(str(plot), err=True)


def _plot_studies(plt: Any, plot: Path, real: Path, runs: int, seed: int) -> None:
    """3 sampled studies (top) next to 3 real groups (bottom), with :func:`curve_stats`."""
    import numpy as np

    from nas.curvefile import load_curves
    from predictors.pfn.study_prior import curve_stats, sample_studies

    if runs < 2:
        raise ConfigError(f"--runs = {runs}: must be >= 2")
    cs = load_curves(real)
    cs.require_unit_range()
    T = cs.horizon
    groups = cs.groups()
    names = list(dict.fromkeys(groups.tolist()))[:3]
    sb = sample_studies(3, runs, T, seed=seed)
    big = sample_studies(40, 100, T, seed=seed + 1)
    prior_stats = curve_stats(big.y.reshape(-1, T).numpy(), np.repeat(np.arange(40), 100))
    real_stats = curve_stats(cs.curves[cs.lengths == T], groups[cs.lengths == T])
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), sharex=True, sharey=True)
    t = np.arange(1, T + 1)
    for j in range(3):
        ax = axes[0, j]
        for row in sb.y[j].numpy():
            ax.plot(t, row, lw=0.7, alpha=0.7)
        ax.set_title(f"prior study {j + 1} ({runs} runs)", fontsize=10)
        if j < len(names):
            ax = axes[1, j]
            rows = np.flatnonzero(groups == names[j])[:runs]
            for i in rows:
                ax.plot(t[: cs.lengths[i]], cs.curves[i, : cs.lengths[i]], lw=0.7, alpha=0.7)
            ax.set_title(f"{real.name}: {str(names[j])[:40]} ({rows.size} runs)", fontsize=9)
    fmt = ", ".join
    fig.suptitle(
        f"study prior (top) vs real groups (bottom), T = {T}\n"
        f"prior: {fmt(f'{k} {v:.3f}' for k, v in prior_stats.items())}\n"
        f"real:  {fmt(f'{k} {v:.3f}' for k, v in real_stats.items())}", fontsize=9)
    fig.tight_layout()
    fig.savefig(plot, dpi=90)
    emit_json({"plot": str(plot), "prior": prior_stats, "real": real_stats})
