"""The worker side of a trial, without Ray: build the plug-ins (cached per worker process, so a
reused actor does not regenerate the data), train with the study's training function, and emit
a result after every epoch.

A trial at fault (an exception, NaN, time limit) is emitted as a result carrying ``nas_error``
and :func:`run_trial` returns normally, so that Tune's retries (``max_failures``) are spent only
on worker deaths.  :mod:`nas.runner._tune` binds :func:`run_trial` to ``tune.report``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from nas.config import StudyConfig
from nas.training import DEFAULT_TRAINER, TrainingOptions

__all__ = ["TrialSetup", "prepare_trial", "run_trial", "static_payload", "trial_config",
           "where_trained"]

_CACHE: dict[str, Any] = {}


def static_payload(cfg: StudyConfig) -> dict[str, Any]:
    """What every worker needs besides the trial's own config (plain JSON, no credentials)."""
    return {
        "space": cfg.search.space, "space_options": dict(cfg.search.space_options),
        "task": cfg.task.name, "task_options": dict(cfg.task.options),
        "trainer": cfg.training.trainer or DEFAULT_TRAINER,
        "seed": cfg.study.seed,
        # plug-ins next to the study file import on the workers too (nas.registry)
        "import_path": [str(Path(cfg.source).resolve().parent)] if Path(cfg.source).is_file()
        else [],
        # the [training] keys every trainer gets (nas.interfaces.TrainingKeys)
        "training": cfg.training.trainer_keys(),
    }


def _cached(kind: str, name: str, options: dict[str, Any]) -> Any:
    key = json.dumps([kind, name, options], sort_keys=True, default=str)
    if key not in _CACHE:
        from nas.registry import check_trainer, create

        _CACHE[key] = check_trainer(name) if kind == "trainer" else create(kind, name, options)
    return _CACHE[key]


def trial_config(number: int, config: Mapping[str, Any]) -> dict[str, Any]:
    """What Tune carries for a trial: one JSON string.  Tune copies, flattens and keeps
    running statistics of every numeric leaf of a trial's config with every result; the
    configuration is in the study database, so Tune gets it opaque."""
    return {"nas_trial": json.dumps({"number": int(number), "config": dict(config)},
                                    default=str)}


class TrialSetup(NamedTuple):
    """What training one trial needs: the plug-ins, the options and the trainer's extra
    keyword arguments (the task's splits, for the default trainer)."""

    space: Any
    task: Any
    trainer: Any
    options: TrainingOptions
    kwargs: dict[str, Any]


def prepare_trial(static: Mapping[str, Any], number: int, **options: Any) -> TrialSetup:
    """Set up trial ``number`` (plug-ins and the task's splits cached per process): seed
    ``study seed + number``; ``options`` override the study's training options."""
    if static.get("import_path"):
        from nas.registry import add_import_path

        add_import_path(*static["import_path"])
    space = _cached("space", static["space"], dict(static["space_options"]))
    task = _cached("task", static["task"], dict(static["task_options"]))
    trainer = _cached("trainer", static["trainer"], {})
    seed = int(static["seed"]) + int(number)
    # every trainer gets the same options (the nas.interfaces.Trainer protocol)
    opts = TrainingOptions(seed=seed, **{**static["training"], **options})
    kwargs: dict[str, Any] = {}
    if static["trainer"] == DEFAULT_TRAINER:
        # the task's splits depend on the study seed only: generate them once per process
        data_key = json.dumps(["data", static["task"], static["task_options"],
                               static["seed"]], sort_keys=True, default=str)
        if data_key not in _CACHE:
            _CACHE[data_key] = task.data(int(static["seed"]))
        kwargs["data"] = _CACHE[data_key]
    return TrialSetup(space, task, trainer, opts, kwargs)


def where_trained(options: TrainingOptions) -> tuple[str, int]:
    """The device a trial trains on as stored in ``trials.device`` -- ``cpu``, or ``cuda:0
    <GPU name>`` -- and the torch threads of this worker (as the trainer has set them by its
    first report; a trainer that never loaded torch: its device setting and one thread)."""
    torch = sys.modules.get("torch")
    if torch is None:  # the trainer never loaded torch: importing it here would cost seconds
        return ("cpu" if options.device in ("auto", "cpu") else str(options.device)), 1
    threads = int(torch.get_num_threads())
    want = options.device
    if want == "cpu" or not torch.cuda.is_available():
        return "cpu", threads
    index = torch.cuda.current_device()
    return f"cuda:{index} {torch.cuda.get_device_name(index)}", threads


def run_trial(static: dict[str, Any], trial: dict[str, Any],
              emit: Callable[[dict[str, Any]], None], node: str) -> None:
    """One trial in a Ray worker: set up (cached per worker), train, ``emit`` a result after
    every epoch (``tune.report`` there); ``node`` names the worker's node in the first one."""
    try:
        setup = prepare_trial(static, int(trial["number"]))
    except Exception as exc:  # noqa: BLE001  (a plug-in's fault: the trial FAILS, not the study)
        emit({"epoch": 0, "nas_error": f"setting up the trial failed: "
                                              f"{type(exc).__name__}: {exc}"})
        return
    limit = static["training"].get("time_limit_s")
    t0 = time.monotonic()

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        if limit is not None and time.monotonic() - t0 > float(limit):
            raise TimeoutError(f"time limit of {float(limit):g} s exceeded at epoch {epoch}")
        out: dict[str, Any] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        out["epoch"] = int(epoch)
        if limit is not None:  # for the driver's watchdog (Tune keeps statistics of every
            out["nas_elapsed_s"] = time.monotonic() - t0  # numeric key: only when needed)
        if epoch == 1:  # the driver records the node, device and threads once per trial
            out["nas_node"] = node
            out["nas_device"], out["nas_threads"] = where_trained(setup.options)
        emit(out)
        return False

    try:
        setup.trainer(setup.space, trial["config"], setup.task, setup.options, report,
                      **setup.kwargs)
    except Exception as exc:  # noqa: BLE001  (the trial is at fault: FAILED, the study goes on)
        emit({"epoch": 0, "nas_error": f"{type(exc).__name__}: {exc}"})
