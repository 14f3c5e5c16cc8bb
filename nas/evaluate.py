"""Final evaluation: retrain a study's best configurations and report the honest test metric.

``nas evaluate STUDY [--top K] [--seeds S]`` calls :func:`evaluate_study` in the user's process
(no Ray): for each of the K best COMPLETE trials (by the primary objective and its direction)
and each seed 0..S-1 it retrains the configuration on train + validation with
:func:`nas.training.train_final` and scores the test split once.  A search's best *validation*
score is biased upward (it is the maximum of many noisy estimates); this is the number to quote.

Outputs: per configuration, the test metric's mean and sample standard deviation over seeds;
the weights of every retrained model as ``<out>/<study>/trial-<n>/seed-<s>.safetensors`` next
to ``config.json`` (the configuration, the task spec and the metrics).  The result is stored in
the database's ``evaluations`` table (``Storage.study_evaluation`` reads it back; evaluating
again replaces it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nas.config import MAX_EPOCHS, MAX_SEEDS, config_from_dict
from nas.errors import ConfigError
from nas.interfaces import Direction, TrialState

logger = logging.getLogger(__name__)

__all__ = ["check_out_dir", "evaluate_study", "test_metric"]


#: The most configurations ``--top`` may ask for.
MAX_TOP = 1000


def check_out_dir(out: Path) -> None:
    """``--out`` is (or can become) a writable folder, else :class:`ConfigError`."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; give a folder for the weights")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the folder: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise ConfigError(f"--out {out}: cannot write there (permission denied)")


def evaluate_study(study: str, *, storage: str | None = None, top: int = 3, seeds: int = 3,
                   out_dir: str | Path = "nas-models", max_epochs: int | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Retrain the ``top`` best configurations of ``study`` with ``seeds`` seeds; return (and
    store) ``{"study", "metric", "results": [{rank, number, val_value, metric, mean, std,
    runs: [{seed, <metrics>}], dir}], "wall_s"}``.  ``progress(what, done, total)`` is
    called before each retraining and after the last."""
    for name, v, hi in (("--top", top, MAX_TOP), ("--seeds", seeds, MAX_SEEDS),
                        ("--epochs", 1 if max_epochs is None else max_epochs, MAX_EPOCHS)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ConfigError(f"{name} = {v!r}: must be an integer in [1, {hi}]")
    from nas.registry import create
    from nas.storage import Storage

    t0 = time.monotonic()
    st = Storage.open(storage, write=True)
    rec = st.get_study(study)
    try:
        cfg = config_from_dict(dict(rec.config), source=f"study {study!r}")
    except ConfigError as exc:
        raise ConfigError(f"study {study!r} has no usable run configuration ({exc}); was it "
                          "created by `nas run`?") from exc
    sign = -1.0 if rec.direction == Direction.MINIMIZE else 1.0
    done = [t for t in st.trials(rec.id, states=[TrialState.COMPLETE]) if t.value is not None]
    if not done:
        raise ConfigError(f"study {study!r} has no COMPLETE trial to evaluate")
    check_out_dir(Path(out_dir))  # before any training: a bad --out loses no work
    done.sort(key=lambda t: -sign * float(t.value or 0.0))

    import torch
    from safetensors.torch import save_model

    from nas.training import TrainingOptions, train_final

    space = create("space", cfg.search.space, dict(cfg.search.space_options))
    task = create("task", cfg.task.name, dict(cfg.task.options))
    spec = task.spec()
    torch.set_num_threads(max(1, int(cfg.training.cpu)))
    results = []
    metric_name = ""
    n_runs = len(done[:top]) * seeds
    for rank, t in enumerate(done[:top], 1):
        tdir = Path(out_dir) / study / f"trial-{t.number}"
        tdir.mkdir(parents=True, exist_ok=True)
        runs = []
        for seed in range(seeds):
            if progress is not None:
                progress(f"trial {t.number} seed {seed}", (rank - 1) * seeds + seed, n_runs)
            options = TrainingOptions(**{  # the study's training keys, no time limit
                **cfg.training.trainer_keys(), "time_limit_s": None,
                "max_epochs": max_epochs or cfg.training.max_epochs}, seed=seed)
            res = train_final(space, t.config, task, options)
            metric_name = next((k for k in res.metrics if k.startswith("test_")
                                and k != "test_loss"), "test_loss")
            save_model(res.model, str(tdir / f"seed-{seed}.safetensors"))
            runs.append({"seed": seed, **{k: float(v) for k, v in res.metrics.items()}})
            logger.info("study %s trial %d seed %d: %s", study, t.number, seed, res.metrics)
        vals = [r[metric_name] for r in runs]
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) \
            if len(vals) > 1 else 0.0
        (tdir / "config.json").write_text(json.dumps(
            {"study": study, "trial": t.number, "config": t.config,
             "task": {"name": cfg.task.name, "options": dict(cfg.task.options),
                      "spec": {k: v for k, v in asdict(spec).items() if k != "extra"}},
             "space": {"name": cfg.search.space, "options": dict(cfg.search.space_options)},
             "runs": runs, "metric": metric_name, "mean": mean, "std": std}, indent=2,
            default=str))
        results.append({"rank": rank, "number": t.number, "val_value": t.value,
                        "metric": metric_name, "mean": mean, "std": std, "runs": runs,
                        "dir": str(tdir)})
    if progress is not None:
        progress("done", n_runs, n_runs)
    wall_s = round(time.monotonic() - t0, 3)
    st.set_study_evaluation(rec.id, metric=metric_name, seeds=seeds, top=top, results=results,
                            wall_s=wall_s)
    return {"study": study, "metric": metric_name, "seeds": seeds, "top": top,
            "results": results, "wall_s": wall_s}


def test_metric(cfg: Any, config: dict[str, Any], *, seed: int = 0) -> float:
    """The test metric of one configuration of study ``cfg`` (a :class:`StudyConfig`) as
    :func:`evaluate_study` computes it for one seed: retrained on train + validation for
    max_epochs with :func:`nas.training.train_final`, scored once on the test split.  Used by
    ``nas bench race``."""
    from nas.registry import create
    from nas.training import TrainingOptions, train_final

    space = create("space", cfg.search.space, dict(cfg.search.space_options))
    task = create("task", cfg.task.name, dict(cfg.task.options))
    options = TrainingOptions(**{**cfg.training.trainer_keys(), "time_limit_s": None},
                              seed=seed, threads=1)
    res = train_final(space, config, task, options)
    name = next((k for k in res.metrics if k.startswith("test_") and k != "test_loss"),
                "test_loss")
    return float(res.metrics[name])
