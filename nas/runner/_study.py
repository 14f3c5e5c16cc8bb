"""Run a study: a study file in, a finished (or resumable) search out, everything recorded.

:func:`run_study` is what ``nas run`` and :func:`nas.run` call, on the driver.  It opens the
storage, creates (or, with ``resume``, reopens) the study, starts Ray (embedded, or joins the
cluster at ``address``) and a Tune ``Tuner`` with ``reuse_actors=True`` whose searcher,
scheduler and callback are the adapters of :mod:`nas.runner._tune` over one
:class:`~nas.runner._engine.Engine`.  Only the driver writes the database; workers get plain JSON.

Interruption: Ctrl-C (KeyboardInterrupt) marks the trials that were running INTERRUPTED and
re-raises; so does SIGTERM (what a cluster scheduler sends), as :class:`Terminated`, a
KeyboardInterrupt whose ``signum`` says which signal it was.  Both handlers are installed
explicitly (a driver started in the background by a script would otherwise ignore SIGINT) and
again after Ray starts (whose own SIGTERM handler would abort the driver).  After a SIGKILL of the driver they are still RUNNING in the database and the next
``resume`` marks them INTERRUPTED.  Either way ``resume`` re-runs them (as new trials) and counts
only COMPLETE, STOPPED and FAILED trials against the budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.config import StudyConfig, load_config
from nas.errors import ConfigError, NasError, StorageError
from nas.interfaces import COUNTED_STATES, Direction, StudyStatus, TrialState
from nas.runner._cluster import (
    check_address,
    check_results_dir,
    drop_ray_exit_noise,
    quiet_ray_env,
    results_failure,
)
from nas.runner._lease import LeaseKeeper
from nas.runner._resume import prepare_study
from nas.runner._signals import Terminated, install_stop_handlers, restore_handlers
from nas.runner._stats import RunStats

logger = logging.getLogger(__name__)

__all__ = ["RunSummary", "Terminated", "open_run_storage", "quiet_ray_env", "run_study"]


def _drop_tmp(made_tmp: str | None, keep: bool) -> None:
    """Remove the embedded Ray's temp dir (``keep``: Ray's logs, with --verbose; its owner
    file goes, so that it is no orphan for the next run to remove) and drop its lock."""
    if not made_tmp:
        return
    from nas.runner._orphans import OWNER_FILE, release_owner

    if keep:
        Path(made_tmp, OWNER_FILE).unlink(missing_ok=True)
    else:
        import shutil

        shutil.rmtree(made_tmp, ignore_errors=True)
    release_owner(made_tmp)


@dataclass(frozen=True)
class RunSummary:
    """The outcome of :func:`run_study`; :meth:`to_json` is what ``nas run --json`` prints.

    ``trials`` counts every trial of the study by state (also those of earlier runs);
    ``epochs_run`` is the epochs trained over all trials; ``epochs_budget`` is what the finished
    trials (COMPLETE, STOPPED, FAILED) would have cost without early stopping.
    """

    study: str
    storage: str
    wall_s: float
    trials: dict[str, int]
    epochs_run: int
    epochs_budget: int
    best: dict[str, Any] | None
    direction: str = Direction.MAXIMIZE
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    hook_ms_p50: float | None = None
    hook_ms_p99: float | None = None
    nodes: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    #: the stop audit's measured false-stop rate (``Storage.false_stops``)
    false_stops: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "storage": self.storage, "wall_s": round(self.wall_s, 3),
                "trials": dict(self.trials), "epochs_run": self.epochs_run,
                "epochs_budget": self.epochs_budget, "best": self.best,
                "false_stops": self.false_stops}


def open_run_storage(cfg: StudyConfig, storage: str | None) -> Any:
    """The study's :class:`~nas.storage.Storage` (``--storage`` > NAS_STORAGE > file > default)."""
    from nas.storage import Storage

    return Storage.open(storage, file_url=cfg.study.storage, create=True)


def _opened(cfg: StudyConfig, storage: str | None,
            on_open: Callable[[Any], None] | None) -> Any:
    st = open_run_storage(cfg, storage)
    if on_open is not None:
        on_open(st)
    return st


def summarize(cfg: StudyConfig, st: Any, study_id: int, wall_s: float, *, top: int = 10,
              stats: RunStats | None = None, interrupted: bool = False) -> RunSummary:
    """The study's summary from the database (counts cover every run of the study)."""
    rec = st.get_study_by_id(study_id)
    trials = st.trials(study_id)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    done = [t for t in trials if t.state in COUNTED_STATES]
    from nas.storage import ranked

    complete = ranked(trials, rec.direction)
    best = None
    if complete:
        b = complete[0]
        best = {"number": b.number, "value": b.value, "params": b.config}
    board = [{"number": t.number, "value": t.value, "values": t.values, "epochs": t.epochs,
              "config": t.config} for t in complete[:top]]
    return RunSummary(
        study=cfg.name, storage=st.masked_url, wall_s=wall_s, trials=counts,
        epochs_run=int(sum(t.epochs or 0 for t in trials)),
        epochs_budget=len(done) * cfg.training.max_epochs, best=best,
        direction=rec.direction, leaderboard=board,
        hook_ms_p50=stats.hook_ms_p50 if stats else None,
        hook_ms_p99=stats.hook_ms_p99 if stats else None,
        nodes=dict(stats.nodes) if stats else {}, interrupted=interrupted,
        false_stops=st.false_stops(rec.id) if cfg.stopping.policy != "none" else None)


def finished_summary(cfg: StudyConfig, st: Any) -> RunSummary | None:
    """The summary of the study of ``cfg`` when resuming it has nothing to run: it exists with
    the same settings, no trial is RUNNING and its COMPLETE, STOPPED and FAILED trials fill
    the budget.  Read from the database only (no plug-ins, no Ray, nothing written); None
    when there is something to run (or to refuse: :func:`prepare_study` says why)."""
    from nas.runner._resume import resume_differences

    if cfg.name not in st.study_names():
        return None
    rec = st.get_study(cfg.name)
    objectives = [{"name": o.name, "direction": o.direction} for o in cfg.search.objectives] \
        or list(rec.objectives)
    if resume_differences(rec.config, rec.objectives, cfg, objectives):
        return None
    states = [t.state for t in st.trials(rec.id)]
    done = sum(s in COUNTED_STATES for s in states)
    if TrialState.RUNNING in states or done < cfg.search.trials:
        return None
    logger.info("study %s is finished (%d of %d trials): nothing to run", cfg.name, done,
                cfg.search.trials)
    return summarize(cfg, st, rec.id, 0.0)


def run_study(
    config: StudyConfig | str | Path | Mapping[str, Any],
    *,
    storage: str | None = None,
    address: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    cpus: int | None = None,
    resume: bool = False,
    verbose: bool = False,
    ray_storage: str | None = None,
    ray_temp_dir: str | None = None,
    on_start: Callable[[Any], None] | None = None,
    on_change: Callable[[], None] | None = None,
    callbacks: Sequence[Any] = (),
    on_open: Callable[[Any], None] | None = None,
) -> RunSummary:
    """Run (or resume) the study of ``config`` to its trial budget; return its summary.

    ``storage`` overrides the database URL, ``address`` joins a Ray cluster (``auto`` or
    ``HOST:PORT``; default: an embedded Ray with ``cpus`` CPUs), ``trials`` overrides the
    budget, ``timeout`` (seconds) ends the run early (trials then running become INTERRUPTED),
    ``ray_storage`` is where Tune keeps its own trial artifacts (default ``~/ray_results``).
    ``on_start(engine)`` / ``on_change()`` drive a progress view (``engine.stats()`` is its
    :class:`~nas.runner._stats.RunStats` snapshot); ``callbacks`` are more Ray
    Tune callbacks (``ray.tune.Callback``) for the run, e.g. a logger of the user's choice.  A Ray runtime already
    initialised by the caller is used as is and left running.  ``on_open(storage)`` is called
    with the run's one :class:`~nas.storage.Storage` once it is open (:func:`nas.run` returns
    a study on it).
    """
    cfg = load_config(config).with_overrides(trials=trials)
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout = {timeout!r}: must be a number of seconds > 0")
    if cpus is not None and cpus < 1:
        raise ConfigError(f"--cpus = {cpus!r}: must be an integer >= 1")
    st = None
    if resume:  # a finished study: its summary, without plug-ins, Ray or a change
        st = _opened(cfg, storage, on_open)
        finished = finished_summary(cfg, st)
        if finished is not None:
            return finished
    if address:
        check_address(address)  # seconds, not Ray's minutes of retries
    quiet_ray_env(verbose)
    if not verbose:
        drop_ray_exit_noise()
    t0 = time.monotonic()
    from nas.plugins import build_plugins

    plugins = build_plugins(cfg)
    if st is None:  # (opened after the plug-ins: a bad study file creates no database)
        st = _opened(cfg, storage, on_open)
    results_dir = check_results_dir(ray_storage)
    from nas.storage import LeaseHolder

    holder = LeaseHolder.this_process()
    study_id, status_before = prepare_study(cfg, st, resume, plugins.spec, holder)
    lease = LeaseKeeper(st, study_id, holder)
    from nas.runner._engine import Engine
    from nas.runner._tune import check_resources, fit, start_ray, stop_ray

    owns_ray, made_tmp = False, None
    old_handlers = install_stop_handlers()
    try:
        engine = Engine(cfg, st, study_id, plugins)
        if engine.budget > 0:
            owns_ray, made_tmp = start_ray(address, cpus, verbose, ray_temp_dir)
            install_stop_handlers()  # ray.init installs its own SIGTERM handler: ours wins
            check_resources(cfg)  # a trial that fits no node would wait forever
    except BaseException:  # no trial ran: leave the database as it was
        restore_handlers(old_handlers)
        if owns_ray:
            stop_ray()
        _drop_tmp(made_tmp, keep=False)
        lease.release()
        if status_before is None:
            st.delete_study(cfg.name)
        else:
            st.set_study_status(study_id, status_before)
        raise
    if on_start is not None:
        on_start(engine)
    interrupted = False
    failure: BaseException | None = None
    try:
        if engine.budget > 0:
            fit(engine, cfg, timeout, verbose, results_dir, on_change, callbacks)
    except KeyboardInterrupt:
        if engine.writer.fatal is None:
            interrupted = True
            raise
        failure = StorageError(engine.writer.fatal)
    except Exception as exc:  # noqa: BLE001  (the study must not be left COMPLETE; re-raised below)
        failure = results_failure(exc, results_dir) or exc
    finally:
        # a refit thread still inside torch when the interpreter exits aborts the process
        # ("terminate called without an active exception"): let it finish first
        try:
            engine.wait_refit()
        except KeyboardInterrupt:  # a second signal: go on marking and flushing
            pass
        try:
            live = engine.close()
        except KeyboardInterrupt:  # the writer gave up while draining (its fatal says why)
            if engine.writer.fatal is None:
                raise
            live, failure = 0, failure or StorageError(engine.writer.fatal)
        interrupted = interrupted or live > 0
        if engine.writer.errors:
            logger.error("%d database write(s) failed; first: %s", len(engine.writer.errors),
                         engine.writer.errors[0])
        status = StudyStatus.FAILED if failure is not None else \
            StudyStatus.INTERRUPTED if interrupted else StudyStatus.COMPLETE
        if not lease.lost and engine.writer.fatal is None:
            st.set_study_status(study_id, status)
        lease.release()
        if owns_ray:
            stop_ray()
        _drop_tmp(made_tmp, keep=verbose)
        restore_handlers(old_handlers)
    if failure is not None:
        if isinstance(failure, NasError):
            raise failure from None
        raise failure
    return summarize(cfg, st, study_id, time.monotonic() - t0, stats=engine.stats(),
                     interrupted=interrupted)


