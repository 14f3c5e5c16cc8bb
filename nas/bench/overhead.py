"""``nas bench overhead``: what the engine costs on top of plain Ray Tune, and the hook latency.

Protocol (issue 4, section 9).  In one process and one Ray runtime (``cpus`` CPUs, started
here):

1. *plain Tune*: N trivial trials, each reporting ``epochs`` results at once (no work between
   reports), through a ``Tuner`` with the FIFO scheduler, Tune's own random search,
   ``reuse_actors=True`` and ``max_concurrent_trials = cpus``;
2. *engine*: the same N x ``epochs`` trivial reports through :func:`nas.runner.run_study` (the
   synthetic space and trainer of :mod:`nas.runner_toy`, an SQLite study database in a temp dir,
   TPE, the same concurrency, policy ``none``).
   Steps 1 and 2 alternate ``reps`` times; the best time of each is compared (the CI machine
   is shared, so single timings are noisy; all are reported).
3. *hook latency*: one more engine run (at least 30 trials) per predictor (``pfn`` when a checkpoint is installed,
   and ``baker``, whose refits on the ``should_refit`` schedule take real time in the
   background) with the *predictive* policy and ``delta`` = 1e-9, so that every hook computes
   the full forecast but no trial is stopped.

Reported: wall times (Tuner construction to ``fit`` return; the engine's also covers opening
the database, the study's creation and its summary), the overhead per trial and as a ratio,
and the scheduler hook's latency (``Engine.on_result``: mirror update, policy with forecast,
queueing the writes) p50/p99/max over all results, and separately over the results handled
while a predictor refit was running.  Targets: ratio <= 1.10, hook p99 <= 20 ms.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

__all__ = ["run_overhead"]


def _plain_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    for epoch in range(1, int(config["epochs"]) + 1):
        tune.report({"val_accuracy": float(config["x"]) * epoch / config["epochs"],
                     "epoch": epoch})


def _predictors() -> list[str]:
    """``pfn`` when its checkpoint loads, and ``baker`` (whose refits take real time)."""
    from nas.registry import create

    try:
        create("predictor", "pfn")
        return ["pfn", "baker"]
    except Exception:
        return ["baker"]


def _stats(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    a = np.asarray(ms)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}


def run_overhead(*, trials: int = 20, epochs: int = 20, cpus: int = 2,
                 reps: int = 2) -> dict[str, Any]:
    """Run both engines on ``trials`` trivial trials; return the JSON document (a dict)."""
    from nas.errors import ConfigError

    for name, v in (("--trials", trials), ("--epochs", epochs), ("--cpus", cpus),
                    ("--reps", reps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} = {v!r}: must be an integer >= 1")
    import ray
    from ray import tune

    from nas.runner import quiet_ray_env, run_study

    quiet_ray_env(False)
    tmp = tempfile.mkdtemp(prefix="nas-oh-", dir="/tmp" if os.path.isdir("/tmp") else None)
    started = False
    try:
        if not ray.is_initialized():
            ray.init(num_cpus=cpus, object_store_memory=100 * 1024 * 1024,
                     _temp_dir=os.path.join(tmp, "r"), include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR)
            started = True
        def plain() -> tuple[float, int]:
            t0 = time.perf_counter()
            res = tune.Tuner(
                _plain_trainable,
                param_space={"x": tune.uniform(0.0, 1.0), "epochs": epochs},
                tune_config=tune.TuneConfig(num_samples=trials, reuse_actors=True,
                                            max_concurrent_trials=cpus),
                run_config=tune.RunConfig(storage_path=os.path.join(tmp, "plain"),
                                          verbose=0)).fit()
            return (time.perf_counter() - t0,
                    int(sum(int((res[i].metrics or {}).get("training_iteration", 0))
                            for i in range(len(res)))))

        runs = 0

        def engine(policy: dict[str, Any], n: int) -> tuple[float, Any, Any]:
            nonlocal runs
            runs += 1
            study = {
                "study": {"name": f"overhead-{runs}", "seed": 0},
                # random sampling on both sides: the plain run samples at random too, and
                # TPE's own cost (which plain Optuna users pay as well) is not engine overhead
                "search": {"space": "nas.runner_toy:ToySpace", "sampler": "random",
                           "trials": n, "concurrency": cpus},
                "task": {"name": "nas.runner_toy:ToyTask"},
                "training": {"max_epochs": epochs, "trainer": "nas.runner_toy:toy_train"},
                "stopping": policy,
            }
            engines: list[Any] = []
            t0 = time.perf_counter()
            summary = run_study(study, storage=f"sqlite:///{os.path.join(tmp, 'nas.db')}",
                                ray_storage=os.path.join(tmp, "engine"),
                                on_start=engines.append)
            return time.perf_counter() - t0, summary, engines[0]

        plain_s, engine_s = [], []
        plain_epochs = engine_epochs = 0
        for _ in range(reps):  # alternate, keep the best of each (the machine is shared)
            s, plain_epochs = plain()
            plain_s.append(s)
            s, summary, _ = engine({"policy": "none"}, trials)
            engine_s.append(s)
            engine_epochs = summary.epochs_run
        predictive = {}
        for predictor in _predictors():
            # >= 30 trials: the refit after the 20th completion (Baker's first real fit) then
            # runs while later trials report, so hooks during a refit are measured
            pred_s, pred_summary, eng = engine({"policy": "predictive", "predictor": predictor,
                                                "delta": 1e-9, "min_epochs": 1},
                                               max(trials, 30))
            predictive[predictor] = {
                # False when the predictor could not be created or fitted (the hook then
                # measures a policy without forecasts)
                "predictor_loaded": eng.refits > 0,
                "delta": 1e-9, "wall_s": round(pred_s, 3), "epochs": pred_summary.epochs_run,
                "trials": pred_summary.trials, "refits": eng.refits,
                "hook_ms": _stats(eng.hook_ms),
                "hook_ms_during_refit": _stats(eng.hook_ms_refit),
            }
    finally:
        if started:
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    best_plain, best_engine = min(plain_s), min(engine_s)
    return {
        "trials": trials, "epochs": epochs, "cpus": cpus, "reps": reps,
        "plain_tune_s": round(best_plain, 3), "plain_tune_runs_s": [round(x, 3) for x in plain_s],
        "plain_tune_epochs": plain_epochs,
        "engine_s": round(best_engine, 3), "engine_runs_s": [round(x, 3) for x in engine_s],
        "engine_epochs": engine_epochs, "engine_policy": "none",
        "overhead_per_trial_s": round((best_engine - best_plain) / trials, 4),
        "overhead_ratio": round(best_engine / best_plain, 3),
        "predictive": predictive,
        "targets": {"overhead_ratio_max": 1.10, "hook_p99_ms_max": 20.0},
    }
