"""``nas bench overhead``: what the engine costs on top of plain Ray Tune, and the hook latency.

Protocol.  In one process and one Ray runtime (``cpus`` CPUs, started
here):

1. *plain Tune*: N trivial trials, each reporting ``epochs`` results at once (no work between
   reports), through a ``Tuner`` with the FIFO scheduler, Tune's own random search over the same
   parameters, ``reuse_actors=True`` and ``max_concurrent_trials = concurrency``.  Its
   trainable calls the same training function as the engine's trials
   (:func:`nas.testing.toy.toy_train`) and ``tune.report`` after every epoch;
2. *engine*: the same N x ``epochs`` reports through :func:`nas.runner.run_study` (the
   synthetic space and trainer of :mod:`nas.testing.toy`, an SQLite study database in a temp dir,
   Optuna's random sampler, the same concurrency, policy ``none``).
   One untimed warm-up run of each comes first (first-run imports, code upload to the workers);
   then steps 1 and 2 alternate ``reps`` times, swapping which goes first (ABBA), with a pause
   of ``settle_s`` after every run (the actors of a run exit in the background; that exit
   must not land in the next run's time).  The medians are compared (the CI machine is shared,
   so single timings are noisy); the best times and every run are reported too.
3. *hook latency*: one more engine run (at least 30 trials) per predictor (``pfn`` when a
   checkpoint is installed, and ``baker``, whose refits on the ``should_refit`` schedule take
   real time in the background) with the *predictive* policy and ``delta`` = 1e-9, so that
   every hook computes the full forecast but no trial is stopped.

Why ``concurrency`` defaults to 1: with trials this short (~30 ms), Tune's actor reuse hands
each new trial to the actor that just finished one, so whether a second actor ever gets a trial
is a race between its start-up (~1.5 s) and the trial turnover; runs that lose the race also
wait for the idle actor at the end.  That lottery (0-1.4 s per run, on both sides alike)
swamps what is being measured; with one actor it is gone.  ``--concurrency 2`` measures it
anyway.

Reported: wall times (Tuner construction to ``fit`` return; the engine's also covers opening
the database, the study's creation and its summary), the overhead per trial and as a ratio,
the engine's own driver time (suggest, every result, every trial's end; measured directly),
the database writer thread's CPU time, and the scheduler hook's latency
(``Engine.on_result``: mirror update, policy with forecast, queueing the writes) p50/p99/max
over all results, and separately over the results handled while a predictor refit was running.
Targets: ratio <= 1.10, hook p99 <= 20 ms.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["run_overhead"]


def _plain_trainable(config: dict[str, Any]) -> None:
    """What a plain-Tune user writes around the same training function as the engine's."""
    from types import SimpleNamespace

    from ray import tune

    from nas.testing.toy import toy_train

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        tune.report({**metrics, "epoch": epoch})
        return False

    toy_train(None, config, None, SimpleNamespace(max_epochs=int(config["epochs"]), seed=0),
              report)


def _phase_timer() -> Any:
    """A Tune callback that notes when the first trial started and the last one ended."""
    from ray.tune.callback import Callback

    class PhaseTimer(Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.first_start: float | None = None
            self.last_end: float | None = None

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any,
                           **info: Any) -> None:
            if self.first_start is None:
                self.first_start = time.perf_counter()

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                              **info: Any) -> None:
            self.last_end = time.perf_counter()

    return PhaseTimer()


def _phases(t0: float, t1: float, timer: Any) -> dict[str, float]:
    """start-up (to the first trial's start: actor start), trials, finish (after the last)."""
    a = timer.first_start if timer.first_start is not None else t1
    b = timer.last_end if timer.last_end is not None else t1
    return {"startup": a - t0, "trials": max(0.0, b - a), "finish": max(0.0, t1 - b)}


def _predictors() -> list[str]:
    """``pfn`` when its checkpoint loads, and ``baker`` (whose refits take real time)."""
    from nas.registry import create

    try:
        create("predictor", "pfn")
        return ["pfn", "baker"]
    except Exception:  # noqa: BLE001 - whatever stops the checkpoint loading: measure baker
        return ["baker"]


def _stats(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    a = np.asarray(ms)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}


def run_overhead(*, trials: int = 20, epochs: int = 20, cpus: int = 2, concurrency: int = 1,
                 reps: int = 5, settle_s: float = 1.0,
                 progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Run both engines on ``trials`` trivial trials; return the JSON document (a dict).
    ``progress(description, runs_done, runs_total)`` is called between runs (never inside a
    timed one)."""
    from nas.errors import ConfigError

    for name, v in (("--trials", trials), ("--epochs", epochs), ("--cpus", cpus),
                    ("--concurrency", concurrency), ("--reps", reps)):
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
        phases: dict[str, list[dict[str, float]]] = {"plain": [], "engine": []}

        def plain() -> tuple[float, int]:
            timer = _phase_timer()
            t0 = time.perf_counter()
            res = tune.Tuner(
                _plain_trainable,
                param_space={"ceiling": tune.uniform(0.2, 1.0),
                             "rate": tune.loguniform(0.05, 2.0), "mode": "ok",
                             "epoch_s": 0.0, "epochs": epochs},
                tune_config=tune.TuneConfig(num_samples=trials, reuse_actors=True,
                                            max_concurrent_trials=concurrency),
                run_config=tune.RunConfig(storage_path=os.path.join(tmp, "plain"),
                                          callbacks=[timer], verbose=0)).fit()
            t1 = time.perf_counter()
            phases["plain"].append(_phases(t0, t1, timer))
            return (t1 - t0, int(sum(int((res[i].metrics or {}).get("training_iteration", 0))
                                     for i in range(len(res)))))

        runs = 0

        def engine(policy: dict[str, Any], n: int) -> tuple[float, Any, Any]:
            nonlocal runs
            runs += 1
            study = {
                "study": {"name": f"overhead-{runs}", "seed": 0},
                # random sampling on both sides: the plain run samples at random too, and
                # TPE's own cost (which plain Optuna users pay as well) is not engine overhead
                "search": {"space": "nas.testing.toy:ToySpace", "sampler": "random",
                           "trials": n, "concurrency": concurrency},
                "task": {"name": "nas.testing.toy:ToyTask"},
                "training": {"max_epochs": epochs, "trainer": "nas.testing.toy:toy_train"},
                "stopping": policy,
            }
            engines: list[Any] = []
            timer = _phase_timer()
            t0 = time.perf_counter()
            summary = run_study(study, storage=f"sqlite:///{os.path.join(tmp, 'nas.db')}",
                                ray_storage=os.path.join(tmp, "engine"),
                                on_start=engines.append, callbacks=[timer])
            t1 = time.perf_counter()
            if policy["policy"] == "none":
                phases["engine"].append(_phases(t0, t1, timer))
            return t1 - t0, summary, engines[0]

        predictors = _predictors()
        total, done = 2 + 2 * reps + len(predictors), 0

        def tick(what: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(f"overhead: {what}", done, total)

        def settle(what: str) -> None:
            tick(what)
            # let the previous run's actors finish exiting before the next clock starts (their
            # teardown otherwise lands in whichever run comes next)
            time.sleep(settle_s)

        plain()  # warm-up of each side, not timed (first-run imports, actor code upload)
        settle("warm-up, plain Tune")
        engine({"policy": "none"}, trials)
        settle("warm-up, engine")
        phases = {"plain": [], "engine": []}
        plain_s, engine_s, busy_s, writer_s = [], [], [], []
        plain_epochs = engine_epochs = 0
        for rep in range(reps):  # alternate, swapping who goes first (ABBA)
            for side in (("plain", "engine") if rep % 2 == 0 else ("engine", "plain")):
                if side == "plain":
                    s, plain_epochs = plain()
                    plain_s.append(s)
                else:
                    s, summary, eng = engine({"policy": "none"}, trials)
                    engine_s.append(s)
                    stats = eng.stats()
                    busy_s.append(stats.busy_s)
                    writer_s.append(stats.writer_cpu_s)
                    engine_epochs = summary.epochs_run
                settle(f"rep {rep + 1}/{reps}, {side}")
        predictive = {}
        for predictor in predictors:
            # >= 30 trials: the refit after the 20th completion (Baker's first real fit) then
            # runs while later trials report, so hooks during a refit are measured
            pred_s, pred_summary, eng = engine({"policy": "predictive", "predictor": predictor,
                                                "delta": 1e-9, "min_epochs": 1},
                                               max(trials, 30))
            stats = eng.stats()
            predictive[predictor] = {
                # False when the predictor could not be created or fitted (the hook then
                # measures a policy without forecasts)
                "predictor_loaded": stats.refits > 0,
                "delta": 1e-9, "wall_s": round(pred_s, 3), "epochs": pred_summary.epochs_run,
                "trials": pred_summary.trials, "refits": stats.refits,
                "hook_ms": _stats(list(stats.hook_ms)),
                "hook_ms_during_refit": _stats(list(stats.hook_ms_refit)),
            }
            tick(f"hook latency, {predictor}")
    finally:
        if started:
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    best_plain, best_engine = min(plain_s), min(engine_s)

    def med(side: str, key: str) -> float:
        return float(np.median([ph[key] for ph in phases[side]]))

    phase_doc = {side: {key: round(med(side, key), 3) for key in ("startup", "trials", "finish")}
                 for side in ("plain", "engine")}
    trials_ratio = med("engine", "trials") / max(med("plain", "trials"), 1e-9)
    med_plain, med_engine = float(np.median(plain_s)), float(np.median(engine_s))
    return {
        "trials": trials, "epochs": epochs, "cpus": cpus, "concurrency": concurrency,
        "reps": reps,
        "plain_tune_s": round(best_plain, 3), "plain_tune_runs_s": [round(x, 3) for x in plain_s],
        "plain_tune_epochs": plain_epochs,
        "engine_s": round(best_engine, 3), "engine_runs_s": [round(x, 3) for x in engine_s],
        "engine_epochs": engine_epochs, "engine_policy": "none",
        "plain_tune_median_s": round(med_plain, 3), "engine_median_s": round(med_engine, 3),
        # the headline numbers compare medians (robust to a run that caught a stray delay);
        # best-of ratios are reported too
        "overhead_per_trial_s": round((med_engine - med_plain) / trials, 4),
        "overhead_ratio": round(med_engine / med_plain, 3),
        "overhead_ratio_best": round(best_engine / best_plain, 3),
        # measured directly: the driver's time inside the engine (suggest, every result, every
        # trial's end), which plain Tune does not spend
        "engine_driver_ms_per_trial": round(1000.0 * float(np.median(busy_s)) / trials, 3),
        "engine_driver_share": round(float(np.median(busy_s)) / med_engine, 4),
        # the study database's writer thread (it shares the driver's GIL with Tune's loop)
        # medians of each phase: start-up (Tuner.fit to the first trial's start: Ray starting
        # the actor), trials (first start to last end), finish (last end to fit's return)
        "phases_median_s": phase_doc,
        "trials_phase_ratio": round(trials_ratio, 3),
        "engine_writer_cpu_ms_per_trial": round(1000.0 * float(np.median(writer_s)) / trials,
                                                3),
        "predictive": predictive,
        "targets": {"overhead_ratio_max": 1.10, "hook_p99_ms_max": 20.0},
    }
