"""``nas bench race``: nas against plain Optuna and plain Ray Tune, live, on one search and budget.

For every study file, race seed and entrant, :func:`run_race` runs the study's search (its space,
task, primary objective, ``max_epochs`` and sampler; the sampler and study seed are
``study.seed + race seed``) until the budget is spent, in epochs (``budget_epochs``) or in wall
seconds (``budget_s``); without either, until the study's trial budget is spent.

Entrants (:data:`ENTRANTS`):

* ``none``, ``optuna-median``, ``optuna-hyperband``: plain Optuna in this process, no Ray:
  ``optuna.create_study`` with the study's sampler and ``NopPruner`` / ``MedianPruner`` /
  ``HyperbandPruner``, trials one after the other, ``trial.report`` / ``should_prune`` after
  every epoch.
* ``tune-asha``: plain Ray Tune: ``Tuner`` + ``OptunaSearch`` (the same sampler, define-by-run
  through the space's own ``sample``) + ``ASHAScheduler`` (grace 1, eta 3, ``max_t`` =
  max_epochs), the study's concurrency.
* ``nas-asha``, ``nas-baker``, ``nas-pfn``: :func:`nas.runner.run_study` with a temporary SQLite
  database and the policy ``asha`` / ``predictive`` with the ``baker`` / ``pfn`` predictor.

Training is the same for all: the study's trainer (``nas.training.train`` unless the study
names another) called with the space and task objects, as the runner's worker calls it.

Budget.  Every epoch an entrant's trainer reports is counted on the driver in the order it
arrives; the epoch that makes the count reach N ends the search (running trials are stopped,
no new trial starts).  Reports past N (a concurrent trial's epoch that was already on its way)
are discarded: they are neither counted nor used, so no entrant is credited with more than N
epochs.  ``epochs`` in a race record is the count used, ``epochs_trained`` what the workers
reported in all.

Best value.  The best-so-far is over every epoch value reported within the budget (the
objective's direction); its configuration is retrained on train + validation for max_epochs
with :func:`nas.evaluate.test_metric` (the ``nas evaluate`` path, seed 0) and scored once on
the test split: ``test_value``.

The seven entrants share the recorder, the budget rule and the training call, and they sit
together so that one reading shows that every entrant gets the same budget.  The report (summary, tables, plot) is in
:mod:`nas.bench._race_report`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nas.bench._race_report import plot_races, race_tables, summarize_by_direction
from nas.config import Objective, StudyConfig, load_config
from nas.errors import ConfigError
from nas.runner import prepare_trial, static_payload
from nas.training import DEFAULT_TRAINER

__all__ = [
    "DEFAULT_ENTRANTS",
    "ENTRANTS",
    "Recorder",
    "check_race_options",
    "plot_races",
    "race_direction",
    "race_tables",
    "run_race",
    "summarize_by_direction",
]

ENTRANTS = ("none", "optuna-median", "optuna-hyperband", "tune-asha", "nas", "nas-asha",
            "nas-baker", "nas-pfn")
#: the entrants raced when none are named: the peers and nas with the study's own stopping
DEFAULT_ENTRANTS = ("none", "optuna-median", "optuna-hyperband", "tune-asha", "nas")
RAY_ENTRANTS = ("tune-asha", "nas", "nas-asha", "nas-baker", "nas-pfn")

Progress = Callable[[str, int, int], None]


class BudgetSpent(Exception):
    """Raised inside a report callback to end an in-process trial when the budget is spent."""


@dataclass
class Recorder:
    """The driver-side count of one race: epochs used, best-so-far, trajectories.

    Thread-safe (Tune calls stoppers and callbacks from its loop thread; the engine from the
    scheduler).  ``add`` returns False for a report past the budget (discarded)."""

    direction: str
    budget_epochs: int | None
    budget_s: float | None
    t0: float = field(default_factory=time.monotonic)
    epochs: int = 0
    trained: int = 0
    best: float | None = None
    best_config: dict[str, Any] | None = None
    #: seconds from the start to the first epoch counted (the entrant's set-up)
    first_s: float | None = None
    #: seconds from the start to the epoch that spent the budget (None: it was not spent)
    spent_s: float | None = None
    trajectory: list[list[float]] = field(default_factory=list)
    wall_trajectory: list[list[float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spent(self) -> bool:
        if self.budget_epochs is not None and self.epochs >= self.budget_epochs:
            return True
        return self.budget_s is not None and time.monotonic() - self.t0 >= self.budget_s

    def add(self, value: float, config: Mapping[str, Any]) -> bool:
        with self.lock:
            self.trained += 1
            if self.spent():
                return False
            self.epochs += 1
            if self.first_s is None:
                self.first_s = round(time.monotonic() - self.t0, 3)
            if self.budget_epochs is not None and self.epochs == self.budget_epochs:
                self.spent_s = round(time.monotonic() - self.t0, 3)
            if math.isfinite(value) and (
                    self.best is None or (value > self.best if self.direction == "maximize"
                                          else value < self.best)):
                self.best = float(value)
                self.best_config = dict(config)
                self.trajectory.append([self.epochs, self.best])
                self.wall_trajectory.append([round(time.monotonic() - self.t0, 3), self.best])
            return True


# ---------------------------------------------------------------------------------- options


def check_race_options(paths: Sequence[str | Path], *, seeds: int, budget_epochs: int | None,
                       budget_s: float | None, entrants: Sequence[str],
                       plot: str | Path | None = None) -> list[StudyConfig]:
    """Validate everything before anything starts (exit 2 on the CLI); returns the configs."""
    if not paths:
        raise ConfigError("give at least one STUDY_FILE")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds = {seeds!r}: must be an integer >= 1")
    if budget_epochs is not None and budget_s is not None:
        raise ConfigError("--budget-epochs and --budget-s exclude each other; give one")
    if budget_epochs is not None and budget_epochs < 1:
        raise ConfigError(f"--budget-epochs = {budget_epochs!r}: must be an integer >= 1")
    if budget_s is not None and not (math.isfinite(budget_s) and budget_s > 0):
        raise ConfigError(f"--budget-s = {budget_s!r}: must be a number of seconds > 0")
    if not entrants:
        raise ConfigError("--entrants is empty")
    bad = [e for e in entrants if e not in ENTRANTS]
    if bad:
        raise ConfigError(f"--entrants: unknown entrant(s) {', '.join(bad)}; known: "
                          f"{', '.join(ENTRANTS)}")
    if len(set(entrants)) != len(entrants):
        raise ConfigError("--entrants: an entrant is named twice")
    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise ConfigError(f"--plot {plot}: the plot is a PNG file; name it *.png")
    cfgs = [race_config(load_config(p)) for p in paths]
    names = [c.name for c in cfgs]
    if len(set(names)) != len(names):
        raise ConfigError(f"two study files have the same study name ({', '.join(names)})")
    from nas.plugins import build_plugins

    for c in cfgs:
        build_plugins(c)
    return cfgs


def race_config(cfg: StudyConfig) -> StudyConfig:
    """The study as raced: its primary objective only (every entrant optimises one value)."""
    if len(cfg.search.objectives) > 1:
        first: Objective = cfg.search.objectives[0]
        cfg = replace(cfg, search=replace(cfg.search, objectives=(first,)))
    return cfg


def race_direction(cfg: StudyConfig) -> str:
    """The raced objective's direction: the study's first objective's, else its task's."""
    if cfg.search.objectives:
        return cfg.search.objectives[0].direction
    from nas.plugins import build_plugins

    return build_plugins(cfg).spec.direction


def _with_seed(cfg: StudyConfig, seed: int) -> StudyConfig:
    return replace(cfg, study=replace(cfg.study, seed=cfg.study.seed + seed))


# ------------------------------------------------------------------------- training (shared)

def train_config(static: Mapping[str, Any], config: Mapping[str, Any], number: int,
                 report: Callable[[int, dict[str, float]], bool | None]) -> None:
    """Train one configuration with the study's trainer, as the runner's worker does
    (:func:`nas.runner._worker.run_trial`): seed ``study seed + trial number``, the splits of the
    study seed.  ``report(epoch, metrics)`` returning True ends the trial."""
    # the default trainer runs single-threaded here: entrants train side by side
    threads = {"threads": 1} if static["trainer"] == DEFAULT_TRAINER else {}
    setup = prepare_trial(static, number, **threads)
    setup.trainer(setup.space, dict(config), setup.task, setup.options, report, **setup.kwargs)


# ----------------------------------------------------------------------------- entrants


def _optuna_entrant(cfg: StudyConfig, entrant: str, rec: Recorder, objective: str) -> None:
    """none / optuna-median / optuna-hyperband: plain Optuna, one process, trials in turn."""
    import optuna

    from nas.plugins import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner: optuna.pruners.BasePruner
    if entrant == "optuna-median":
        pruner = optuna.pruners.MedianPruner()
    elif entrant == "optuna-hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=1,
                                                max_resource=cfg.training.max_epochs)
    else:
        pruner = optuna.pruners.NopPruner()
    sampler = make_sampler(cfg.search.sampler, cfg.study.seed, cfg.search.sampler_options)
    # named after the study and its race seed: HyperbandPruner picks each trial's bracket from
    # a hash of the study name, so an unnamed (random uuid) study would race differently each run
    study = optuna.create_study(direction=rec.direction,  # type: ignore[arg-type]
                                sampler=sampler, pruner=pruner,
                                study_name=f"{cfg.name}-seed{cfg.study.seed}")
    _built[entrant] = (type(study), type(sampler), type(pruner))
    static = static_payload(cfg)
    space = prepare_trial(static, 0).space
    for _ in range(cfg.search.trials):
        if rec.spent():
            break
        trial = study.ask()
        config = space.sample(trial)
        last: list[float] = []

        def report(epoch: int, metrics: dict[str, float], trial: Any = trial,
                   config: Any = config, last: list[float] = last) -> bool:
            value = float(metrics[objective])
            if not rec.add(value, config):
                raise BudgetSpent
            last.append(value)
            trial.report(value, epoch)
            if rec.spent():  # the budget's last epoch: train no further epoch
                raise BudgetSpent
            return bool(trial.should_prune())

        try:
            train_config(static, config, trial.number, report)
        except BudgetSpent:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        except Exception:  # noqa: BLE001  (the trial is at fault: the search goes on)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        if not last:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif len(last) < cfg.training.max_epochs:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, last[-1])


#: the library classes each in-process / Tune entrant was built from (asserted by the tests)
_built: dict[str, tuple[type, ...]] = {}
_RECORDERS: dict[str, Recorder] = {}


def _recorder(key: str) -> Recorder:
    return _RECORDERS[key]


def _tune_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    static = json.loads(config["race_static"])
    objective = config["race_objective"]

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        tune.report({objective: float(metrics[objective]), "epoch": int(epoch),
                     "race_config": config["race_config"]})
        return False

    try:
        train_config(static, json.loads(config["race_config"]), int(config["race_number"]),
                     report)
    except Exception as exc:  # noqa: BLE001  (the trial is at fault: the search goes on)
        tune.report({"epoch": 0, "race_error": f"{type(exc).__name__}: {exc}"})


class _DefineByRun:
    """OptunaSearch's define-by-run space: the study space's own ``sample`` (picklable: Tune
    saves its searcher with plain pickle)."""

    def __init__(self, static: dict[str, Any], objective: str) -> None:
        self.static, self.objective = static, objective

    def __call__(self, trial: Any) -> dict[str, Any]:
        space = prepare_trial(self.static, trial.number).space
        config = space.sample(trial)
        return {"race_config": json.dumps(config, default=str), "race_number": trial.number,
                "race_static": json.dumps(self.static), "race_objective": self.objective}


def _budget_stopper(key: str, objective: str) -> Any:
    """A Tune ``Stopper`` that counts every epoch on the driver (in the recorder ``key`` of
    :data:`_RECORDERS`: Tune pickles its stoppers, the recorder holds a lock) and ends the
    experiment when the budget is spent."""
    from ray.tune.stopper import Stopper

    class _Budget(Stopper):
        def __init__(self) -> None:
            self.key, self.objective = key, objective

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            r = _recorder(self.key)
            if "race_error" in result:
                return True
            value = result.get(self.objective)
            if isinstance(value, (int, float)):
                r.add(float(value), json.loads(result["race_config"]))
            return r.spent()

        def stop_all(self) -> bool:
            return _recorder(self.key).spent()

    return _Budget()


def _tune_entrant(cfg: StudyConfig, rec: Recorder, objective: str, ray_dir: str) -> None:
    """tune-asha: Ray Tune's Tuner + OptunaSearch + ASHAScheduler."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from nas.plugins import make_sampler

    define = _DefineByRun(static_payload(cfg), objective)

    sampler = make_sampler(cfg.search.sampler, cfg.study.seed, cfg.search.sampler_options)
    mode = "max" if rec.direction == "maximize" else "min"
    searcher = OptunaSearch(space=define, metric=objective, mode=mode, sampler=sampler)
    scheduler = ASHAScheduler(time_attr="epoch", metric=objective, mode=mode,
                              max_t=cfg.training.max_epochs, grace_period=1, reduction_factor=3)
    _built["tune-asha"] = (tune.Tuner, type(searcher), type(scheduler), type(sampler))
    key = f"{id(rec):x}"
    _RECORDERS[key] = rec

    tuner = tune.Tuner(
        tune.with_resources(_tune_trainable, {"cpu": cfg.training.cpu}),
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=cfg.search.trials,
            max_concurrent_trials=cfg.search.concurrency, reuse_actors=True,
            time_budget_s=rec.budget_s),
        run_config=tune.RunConfig(name=f"race-{cfg.name}-{int(time.time())}",
                                  storage_path=ray_dir, stop=_budget_stopper(key, objective),
                                  verbose=0,
                                  log_to_file=False,
                                  checkpoint_config=tune.CheckpointConfig(
                                      checkpoint_at_end=False)))
    try:
        tuner.fit()
    finally:
        _RECORDERS.pop(key, None)


def _nas_entrant(cfg: StudyConfig, entrant: str, rec: Recorder, objective: str,
                 tmp: str, ray_dir: str) -> None:
    """nas-asha / nas-baker / nas-pfn: nas's own run_study on a temporary SQLite database."""
    from nas.config import StoppingSection
    from nas.runner import run_study

    if entrant == "nas":  # the study's own [stopping] (the race studies ship nas's defaults)
        stopping = cfg.stopping
    elif entrant == "nas-asha":
        stopping = StoppingSection(policy="asha", options={"grace_period": 1,
                                                           "reduction_factor": 3})
    else:
        pred = entrant.removeprefix("nas-")
        base = cfg.stopping if cfg.stopping.policy == "predictive" else StoppingSection()
        stopping = replace(base, policy="predictive", predictor=pred)
    run_cfg = replace(cfg, stopping=stopping, study=replace(cfg.study, storage=None))
    url = f"sqlite:///{Path(tmp) / f'{entrant}.db'}"

    def on_start(engine: Any) -> None:
        def record(event: Any) -> None:
            rec.add(event.value, event.config)
            if rec.spent():  # the budget is spent: no new trial, and the live ones stop
                engine.stop_launching(stop_running=True)

        engine.listen(record)

    run_study(run_cfg, storage=url, on_start=on_start, ray_storage=ray_dir,
              timeout=(None if rec.budget_s is None
                       else max(0.1, rec.budget_s - (time.monotonic() - rec.t0))))


# ---------------------------------------------------------------------------------- races


def _race_one(cfg: StudyConfig, seed: int, entrant: str, budget_epochs: int | None,
              budget_s: float | None, tmp: str, test: bool) -> dict[str, Any]:
    from nas.plugins import build_plugins

    cfg = _with_seed(cfg, seed)
    spec = build_plugins(cfg).spec
    objective = spec.objective
    direction = race_direction(cfg)
    rec = Recorder(direction=direction, budget_epochs=budget_epochs, budget_s=budget_s)
    ray_dir = os.path.join(tmp, "ray_results")
    if entrant in ("none", "optuna-median", "optuna-hyperband"):
        _optuna_entrant(cfg, entrant, rec, objective)
    elif entrant == "tune-asha":
        _tune_entrant(cfg, rec, objective, ray_dir)
    else:
        _nas_entrant(cfg, entrant, rec, objective, tmp, ray_dir)
    wall = time.monotonic() - rec.t0
    test_value = None
    if test and rec.best_config is not None:
        from nas.evaluate import test_metric

        test_value = test_metric(cfg, rec.best_config, seed=0)
    return {"study": cfg.name, "seed": seed, "entrant": entrant, "epochs": rec.epochs,
            "epochs_trained": rec.trained, "wall_s": round(wall, 3), "first_s": rec.first_s,
            "spent_s": rec.spent_s,
            "best_value": rec.best,
            "test_value": test_value, "trajectory": rec.trajectory,
            "wall_trajectory": rec.wall_trajectory, "best_config": rec.best_config}


def _settle_ray(limit_s: float = 30.0) -> None:
    """Wait until the previous Ray entrant's actors have given their CPUs back (Ray releases
    them asynchronously after a run), so that the next race's clock and concurrency do not
    pay for the last one's teardown."""
    import ray

    if not ray.is_initialized():
        return
    total = ray.cluster_resources().get("CPU", 0.0)
    end = time.monotonic() + limit_s
    while ray.available_resources().get("CPU", 0.0) < total and time.monotonic() < end:
        time.sleep(0.05)


def run_race(cfgs: Sequence[StudyConfig], *, seeds: int = 3, budget_epochs: int | None = None,
             budget_s: float | None = None, entrants: Sequence[str] = DEFAULT_ENTRANTS,
             test: bool = True, progress: Progress | None = None) -> dict[str, Any]:
    """Run every (study, seed, entrant) race; return ``{"races", "summary", ...}``.

    Configs come from :func:`check_race_options`.  Ray is started (embedded, loopback) only
    when a Ray entrant runs and the process has no Ray yet; it is stopped at the end."""
    from nas.runner import quiet_ray_env, start_ray

    owns, made = False, None
    t_ray = time.monotonic()
    if any(e in RAY_ENTRANTS for e in entrants):
        quiet_ray_env(False)
        owns, made = start_ray(None, None, False, None)
    ray_start_s = round(time.monotonic() - t_ray, 3)
    total = len(cfgs) * seeds * len(entrants)
    races: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="nas-race-") as tmp:
            for cfg in cfgs:
                for seed in range(seeds):
                    for entrant in entrants:
                        if progress is not None:
                            progress(f"{cfg.name} seed {seed} {entrant}", len(races), total)
                        sub = os.path.join(tmp, f"{cfg.name}-{seed}-{entrant}")
                        os.makedirs(sub)
                        races.append(_race_one(cfg, seed, entrant, budget_epochs, budget_s,
                                               sub, test))
                        if entrant in RAY_ENTRANTS:
                            _settle_ray()
            if progress is not None:
                progress("done", len(races), total)
    finally:
        if owns:
            import ray

            ray.shutdown()
        if made:
            import shutil

            shutil.rmtree(made, ignore_errors=True)
    directions = {c.name: race_direction(c) for c in cfgs}
    budget = {"epochs": budget_epochs, "wall_s": budget_s}
    return {"budget": budget, "seeds": seeds, "ray_start_s": ray_start_s,
            "directions": directions, "entrants": list(entrants), "races": races,
            "summary": summarize_by_direction(races, directions, budget),
            "wall_s": round(time.monotonic() - t0, 3)}
