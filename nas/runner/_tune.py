"""The Ray Tune adapters of the runner: trainable, searcher, scheduler, callback.

This module and :mod:`nas.runner` are where the runner touches Ray's developer APIs (hooks whose
signatures change between releases): keep them here.  The driver-side logic lives in
:class:`nas.runner._engine.Engine`; these classes only forward to it.

* :func:`make_trainable` gives the trainable (the study's static payload bound), whose
  :func:`run_trial` runs in a Ray worker: builds the space and task (cached per worker
  process, so a reused actor does not regenerate the data), trains with the study's training
  function and reports after every epoch.  A trial at fault (an exception, NaN, time limit) is
  reported as a result carrying ``nas_error`` and the function returns normally, so that Tune's
  retries (``max_failures``) are spent only on worker deaths.
* :class:`NasSearcher` -- ``suggest`` asks the engine (Optuna define-by-run); Tune gets the
  trial as one JSON string (:func:`trial_config`).  :class:`NasSearchGenerator` wraps it and
  limits concurrency.
* :class:`NasScheduler` -- ``on_trial_result`` calls the stopping policy after every epoch
  (``_supports_buffered_results = False`` so that it sees each one).
* :class:`NasCallback` -- trial end and errors go to the engine, which writes the database.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from ray import tune
from ray.tune.callback import Callback
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher, SearchGenerator

from nas.config import StudyConfig
from nas.errors import ConfigError
from nas.runner._cluster import LOOPBACK, loopback_only, short_tmp
from nas.runner._engine import Engine
from nas.runner._worker import run_trial, static_payload, trial_config

logger = logging.getLogger(__name__)

__all__ = [
    "NasCallback",
    "NasScheduler",
    "NasSearchGenerator",
    "NasSearcher",
    "fit",
    "make_trainable",
    "release",
    "start_ray",
]

# Tune pickles its searcher, scheduler and callbacks (for its own restore); the engine holds a
# database connection and threads, so the adapters hold only a key into this table.
_ENGINES: dict[str, Engine] = {}


class _EngineRef:
    """Mixin: ``self.engine`` resolved through :data:`_ENGINES` (pickles as a key)."""

    _engine_key: str

    def _bind(self, engine: Engine) -> None:
        self._engine_key = f"{id(engine):x}"
        _ENGINES[self._engine_key] = engine

    @property
    def engine(self) -> Engine:
        return _ENGINES[self._engine_key]


def release(engine: Engine) -> None:
    """Forget ``engine`` (after the run)."""
    _ENGINES.pop(f"{id(engine):x}", None)


_NODE: str | None = None


def _node_name() -> str:
    """``host:node-id`` of this worker (cached: it does not change within a process)."""
    global _NODE
    if _NODE is None:
        try:
            import ray

            _NODE = f"{os.uname().nodename}:{ray.get_runtime_context().get_node_id()[:8]}"
        except Exception:  # noqa: BLE001 # pragma: no cover - outside a Ray worker
            _NODE = os.uname().nodename
    return _NODE


def make_trainable(static: dict[str, Any]) -> Any:
    """The Tune function trainable of a study's trials, with the study's ``static`` payload
    bound (pickled once with the function, not carried in every trial's config)."""

    def nas_trainable(config: dict[str, Any]) -> None:
        run_trial(static, json.loads(config["nas_trial"]), tune.report, _node_name())

    return nas_trainable


class NasSearcher(_EngineRef, Searcher):
    """Tune searcher that asks the engine's Optuna study; returns FINISHED at the budget."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()  # no metric: results may carry an error instead of the objective
        self._bind(engine)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        t = self.engine.next_trial(trial_id)
        if t is None:
            return Searcher.FINISHED  # type: ignore[return-value]
        return trial_config(int(t["number"]), t["config"])

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        pass  # the callback tells the engine (it also sees stops and worker errors)


class NasSearchGenerator(SearchGenerator):
    """Tune's search generator over :class:`NasSearcher`, limiting concurrency itself.

    Tune asks its search algorithm for a trial at every step of its loop (about once per
    result); through a ``ConcurrencyLimiter`` each ask costs a trial id (uuid4) and two calls
    even when the limit is reached.  Here a full house is one comparison.
    """

    def __init__(self, searcher: NasSearcher, max_concurrent: int) -> None:
        super().__init__(searcher)
        self._nas = searcher
        self.max_concurrent = int(max_concurrent)

    def next_trial(self) -> Any:
        if len(self._nas.engine.live) >= self.max_concurrent:
            return None
        return super().next_trial()


class NasScheduler(_EngineRef, FIFOScheduler):
    """A thin adapter: after every epoch, the engine asks the stopping policy."""

    _supports_buffered_results = False

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._bind(engine)
        self._seen: dict[str, int] = {}

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.engine.controller = tune_controller  # for the time-limit watchdog (callback)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        epoch = result.get("epoch")
        # A duplicate of the last result (the function returned) has the same epoch: skip it.
        if "nas_error" not in result and (not isinstance(epoch, int)
                                          or epoch == self._seen.get(trial.trial_id)):
            return TrialScheduler.CONTINUE
        self._seen[trial.trial_id] = epoch if isinstance(epoch, int) else -1
        stop = self.engine.on_result(trial.trial_id, result)
        return TrialScheduler.STOP if stop else TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"nas stopping policy {self.engine.policy_name!r}"


class NasCallback(_EngineRef, Callback):
    """Driver callback: trial ends and errors go to the engine (which writes the database)."""

    def __init__(self, engine: Engine, on_change: Any = None) -> None:
        self._bind(engine)
        self.on_change = on_change

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        if self.on_change is not None:
            self.on_change()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        """Watchdog: stop trials that overran their time limit without reporting (hung)."""
        overdue = self.engine.overdue()
        controller = getattr(self.engine, "controller", None)
        if not overdue or controller is None:
            return
        for trial in trials:
            if trial.trial_id in overdue and trial.status == "RUNNING":
                logger.warning("trial %s overran its time limit; stopping it", trial.trial_id)
                controller.stop_trial(trial)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self.engine.on_complete(trial.trial_id)
        if self.on_change is not None:
            self.on_change()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        err = trial.get_error() if hasattr(trial, "get_error") else None
        text = (str(err).strip().splitlines() or ["worker failed"])[-1] if err else \
            "worker failed"
        self.engine.on_error(trial.trial_id,
                             f"worker died {trial.num_failures} time(s); last error: {text}")
        if self.on_change is not None:
            self.on_change()

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any,
                         **info: Any) -> None:
        logger.warning("trial %s: worker died; retrying (%d failure(s) so far)", trial.trial_id,
                       trial.num_failures)


# ----------------------------------------------------------------- Ray start-up and the Tuner


def start_ray(address: str | None, cpus: int | None, verbose: bool,
               temp_dir: str | None) -> tuple[bool, str | None]:
    """Start (or join) Ray.  Returns (whether we started it, the temp dir we created for it);
    (False, None) when the caller's process already had Ray running."""
    import ray

    if ray.is_initialized():
        return False, None
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose,
                              "logging_level": logging.INFO if verbose else logging.ERROR}
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"--address {address}: cannot join a Ray cluster: {first}") from None
        return True, None
    made = None if temp_dir else short_tmp()
    with loopback_only():  # every socket of the embedded Ray on 127.0.0.1 (docs/runner.md)
        ray.init(num_cpus=cpus or os.cpu_count() or 1, object_store_memory=200 * 1024 * 1024,
                 _temp_dir=temp_dir or made, _node_ip_address=LOOPBACK, **kwargs)
    return True, made


def stop_ray() -> None:
    """Shut down the Ray runtime that :func:`start_ray` started."""
    import ray

    ray.shutdown()


def check_resources(cfg: StudyConfig) -> None:
    """A trial must fit on one node of the cluster: otherwise Tune would wait forever.
    ``NAS_SKIP_RESOURCE_CHECK=1`` skips this (autoscaling clusters that add nodes on demand)."""
    if os.environ.get("NAS_SKIP_RESOURCE_CHECK", "") not in ("", "0"):
        return
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    need = {"CPU": float(cfg.training.cpu), "GPU": float(cfg.training.gpu)}
    if any(all(r.get(k, 0.0) >= v for k, v in need.items()) for r in nodes):
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPU + {r.get('GPU', 0):g} GPU" for r in nodes) or "none"
    raise ConfigError(
        f"{cfg.source}: training.resources asks for {need['CPU']:g} CPU + {need['GPU']:g} GPU per "
        f"trial, but no node of the Ray cluster has that (nodes: {have}); lower "
        "training.resources (or --cpus), or set NAS_SKIP_RESOURCE_CHECK=1 on an autoscaling "
        "cluster that adds such nodes"
    )


def fit(engine: Engine, cfg: StudyConfig, timeout: float | None, verbose: bool,
        ray_storage: str | None, on_change: Callable[[], None] | None,
        callbacks: Sequence[Any] = ()) -> None:
    """Run the study's trials with a Tune ``Tuner`` over ``engine`` (to its budget, or until
    ``timeout`` seconds)."""
    callback = NasCallback(engine, on_change)
    trainable = tune.with_resources(make_trainable(static_payload(cfg)),
                                    {"cpu": cfg.training.cpu, "gpu": cfg.training.gpu})
    storage_path = os.path.abspath(os.path.expanduser(ray_storage or "~/ray_results"))
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=NasSearchGenerator(NasSearcher(engine), cfg.search.concurrency),
            scheduler=NasScheduler(engine), num_samples=engine.budget,
            reuse_actors=True, time_budget_s=timeout),
        run_config=tune.RunConfig(
            name=f"nas-{cfg.name}-{int(time.time())}", storage_path=storage_path,
            callbacks=[callback, *callbacks], verbose=1 if verbose else 0,
            failure_config=tune.FailureConfig(max_failures=cfg.training.max_failures),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
            log_to_file=False),
    )
    try:
        tuner.fit()
    finally:
        release(engine)
