"""Run a study: a study file in, a finished (or resumable) search out, everything recorded.

:func:`run_study` is what ``nas run`` and :func:`nas.run` call, on the driver.  It opens the
storage, creates (or, with ``resume``, reopens) the study, starts Ray (embedded, or joins the
cluster at ``address``) and a Tune ``Tuner`` with ``reuse_actors=True`` whose searcher,
scheduler and callback are the adapters of :mod:`nas.runner_tune` over one
:class:`~nas.runner_engine.Engine`.  Only the driver writes the database; workers get plain JSON.

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
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.config import StudyConfig, load_config
from nas.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["RunSummary", "Terminated", "open_run_storage", "quiet_ray_env", "run_study"]


class Terminated(KeyboardInterrupt):
    """The run was stopped by a signal (``signum``: SIGINT or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: The last stop signal this process received during a run (None: none).  Kept apart from
#: the exception because Tune or Ray may re-raise a plain KeyboardInterrupt on its way out.
last_stop_signal: int | None = None


def _raise_terminated(signum: int, frame: Any) -> None:
    global last_stop_signal
    last_stop_signal = signum
    raise Terminated(signum)


def _install_stop_handlers() -> dict[int, Any]:
    """SIGINT and SIGTERM raise :class:`Terminated` in the main thread (where Tune's loop and
    the engine run; the runner then marks live trials INTERRUPTED).  Returns the previous
    handlers; nothing is done outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    old: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, _raise_terminated)
    return old


def _restore_handlers(old: Mapping[int, Any]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


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
    direction: str = "maximize"
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


def drop_ray_exit_noise() -> None:
    """Ray Tune's placement-group manager runs its cleanup in ``__del__`` and, when that is
    left to interpreter exit, prints an ignored TypeError: drop that one message (installed
    once per process, by every run that is not ``verbose``: the CLI and the Python API)."""
    previous = sys.unraisablehook
    if getattr(previous, "_nas_drops_ray_noise", False):
        return

    def hook(u: Any) -> None:
        if "PlacementGroupResourceManager.__del__" in repr(getattr(u, "object", None)):
            return
        previous(u)

    hook._nas_drops_ray_noise = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def quiet_ray_env(verbose: bool = False) -> None:
    """Environment for Ray/Tune before Ray starts: no usage stats, no Tune console tables, no
    per-trial result files, our own Ctrl-C handling.  Existing settings win."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1e9")
    if not verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        for name in ("ray", "ray.tune", "ray.train", "ray.air", "optuna"):
            logging.getLogger(name).setLevel(logging.ERROR)


def open_run_storage(cfg: StudyConfig, storage: str | None) -> Any:
    """The study's :class:`~nas.storage.Storage` (``--storage`` > NAS_STORAGE > file > default)."""
    from nas.storage import Storage, resolve_url

    return Storage(resolve_url(storage, cfg.study.storage))


def _tmp_base() -> str | None:
    # Ray's unix sockets live under its temp dir: the path must stay short (~107 bytes).
    # $TMPDIR when set (and short), else /tmp.
    base = os.environ.get("TMPDIR")
    if not base or len(base) > 40 or not os.path.isdir(base):
        base = "/tmp" if os.path.isdir("/tmp") else None
    return base


def _short_tmp() -> str:
    """A new temp dir for the embedded Ray, after stopping what killed drivers left behind."""
    from nas.runner_orphans import PREFIX, reap_orphans, record_owner

    base = _tmp_base()
    reap_orphans(base or tempfile.gettempdir())
    made = tempfile.mkdtemp(prefix=PREFIX, dir=base)
    record_owner(made)
    return made


def _start_ray(address: str | None, cpus: int | None, verbose: bool,
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
    made = None if temp_dir else _short_tmp()
    ray.init(num_cpus=cpus or os.cpu_count() or 1, object_store_memory=200 * 1024 * 1024,
             _temp_dir=temp_dir or made, **kwargs)
    return True, made


def _check_address(address: str, timeout_s: float = 10.0) -> None:
    """Fail in seconds, naming the address, where Ray would retry for minutes: a HOST:PORT
    whose port is out of range, whose host does not resolve or that refuses a connection.
    ``auto`` and ``ray://`` client addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"--address {address!r}: expected auto or HOST:PORT (the head node's "
                          "GCS port, 6379 by default)")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"--address {address}: the port must be a number in 1..65535")
    host = host.strip("[]")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"--address {address}: cannot resolve host {host!r}: "
                          f"{exc.strerror or exc}") from None
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray head answers there within "
                          f"{timeout_s:g} s ({exc.strerror or exc}); is `ray start --head` "
                          "running on that host and port?") from None


def _check_resources(cfg: StudyConfig) -> None:
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


#: The keys that change what a trial means: ``--resume`` refuses a study file whose values
#: differ from the stored ones (docs/runner.md lists what may change).
RESUME_KEYS = (
    ("search", "space"), ("search", "space_options"), ("task", "name"), ("task", "options"),
    ("training", "max_epochs"), ("training", "batch_size"), ("training", "trainer"),
    ("training", "time_limit_s"),
)


def _defaults() -> dict[str, dict[str, Any]]:
    from dataclasses import MISSING, fields

    from nas.config import SearchSection, TaskSection, TrainingSection

    out: dict[str, dict[str, Any]] = {}
    for sec, cls in (("search", SearchSection), ("task", TaskSection),
                     ("training", TrainingSection)):
        out[sec] = {}
        for f in fields(cls):
            if f.default is not MISSING:
                out[sec][f.name] = f.default
            elif f.default_factory is not MISSING:
                out[sec][f.name] = f.default_factory()
    out["training"]["trainer"] = "nas.training:train"  # what None means
    return out


def resume_differences(stored: Mapping[str, Any], stored_objectives: Sequence[Mapping[str, Any]],
                       cfg: StudyConfig, objectives: Sequence[Mapping[str, Any]]) -> list[str]:
    """``KEY: OLD → NEW`` for every key of :data:`RESUME_KEYS` (and the objectives with their
    directions) where the study file differs from the study's stored config."""
    new = cfg.to_dict()
    defaults = _defaults()
    diffs = []
    old_obj = [{"name": o.get("name"), "direction": o.get("direction", "maximize")}
               for o in stored_objectives]
    new_obj = [{"name": o["name"], "direction": o["direction"]} for o in objectives]
    if old_obj != new_obj:
        def show(objs: list[dict[str, Any]]) -> str:
            return ", ".join(f"{o['name']} ({o['direction']})" for o in objs) or "none"
        diffs.append(f"search.objectives: {show(old_obj)} → {show(new_obj)}")
    for sec, key in RESUME_KEYS:
        default = defaults[sec].get(key)
        old = dict(stored.get(sec) or {}).get(key)
        cur = dict(new.get(sec) or {}).get(key)
        old, cur = (default if old is None else old), (default if cur is None else cur)
        if old != cur:
            diffs.append(f"{sec}.{key}: {old!r} → {cur!r}")
    return diffs


def _prepare_study(cfg: StudyConfig, st: Any, resume: bool, spec: Any) -> tuple[int, str | None]:
    """The study's id, and its status before this run (None: created by this run)."""
    objectives = [{"name": o.name, "direction": o.direction} for o in cfg.search.objectives] \
        or [{"name": spec.objective, "direction": spec.direction}]
    if resume and cfg.name in st.study_names():
        rec = st.get_study(cfg.name)
        diffs = resume_differences(rec.config, rec.objectives, cfg, objectives)
        if diffs:
            raise ConfigError(f"{cfg.source}: --resume refused: study {cfg.name!r} was run with "
                              f"other settings ({'; '.join(diffs)}); restore them, or run "
                              "under a new study name")
        n = st.mark_interrupted(rec.id)
        if n:
            logger.info("study %s: %d trial(s) left RUNNING marked INTERRUPTED", cfg.name, n)
        st.set_study_status(rec.id, "RUNNING")
        return int(rec.id), str(rec.status)
    return int(st.create_study(cfg.name, space=cfg.search.space, task=cfg.task.name,
                               objectives=objectives, config=stored_config(cfg))), None


def stored_config(cfg: StudyConfig) -> dict[str, Any]:
    """What ``studies.config`` keeps of the study file: everything but ``study.storage`` (a URL
    may hold a password; where the study lives is known to whoever reads it)."""
    d = cfg.to_dict()
    d["study"].pop("storage", None)
    return d


def _space_and_spec(cfg: StudyConfig) -> tuple[Any, Any]:
    from nas.config import check_plugins

    objs = check_plugins(cfg)
    return objs["space"], objs["spec"]


def summarize(cfg: StudyConfig, st: Any, study_id: int, wall_s: float, *, top: int = 10,
              engine: Any = None, nodes: Mapping[str, int] | None = None,
              interrupted: bool = False) -> RunSummary:
    """The study's summary from the database (counts cover every run of the study)."""
    rec = st.get_study_by_id(study_id)
    trials = st.trials(study_id)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    done = [t for t in trials if t.state in ("COMPLETE", "STOPPED", "FAILED")]
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    sign = -1.0 if rec.direction == "minimize" else 1.0
    complete.sort(key=lambda t: -sign * float(t.value))
    best = None
    if complete:
        b = complete[0]
        best = {"number": b.number, "value": b.value, "params": b.config}
    board = [{"number": t.number, "value": t.value, "values": t.values, "epochs": t.epochs,
              "config": t.config} for t in complete[:top]]
    p50 = p99 = None
    if engine is not None and engine.hook_ms:
        arr = np.asarray(engine.hook_ms)
        p50, p99 = float(np.percentile(arr, 50)), float(np.percentile(arr, 99))
    return RunSummary(
        study=cfg.name, storage=st.masked_url, wall_s=wall_s, trials=counts,
        epochs_run=int(sum(t.epochs or 0 for t in trials)),
        epochs_budget=len(done) * cfg.training.max_epochs, best=best,
        direction=rec.direction, leaderboard=board, hook_ms_p50=p50, hook_ms_p99=p99,
        nodes=dict(nodes or {}), interrupted=interrupted,
        false_stops=st.false_stops(rec.id) if cfg.stopping.policy != "none" else None)


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
) -> RunSummary:
    """Run (or resume) the study of ``config`` to its trial budget; return its summary.

    ``storage`` overrides the database URL, ``address`` joins a Ray cluster (``auto`` or
    ``HOST:PORT``; default: an embedded Ray with ``cpus`` CPUs), ``trials`` overrides the
    budget, ``timeout`` (seconds) ends the run early (trials then running become INTERRUPTED),
    ``ray_storage`` is where Tune keeps its own trial artifacts (default ``~/ray_results``).
    ``on_start(engine)`` / ``on_change()`` drive a progress view; ``callbacks`` are more Ray
    Tune callbacks (``ray.tune.Callback``) for the run, e.g. a logger of the user's choice.  A Ray runtime already
    initialised by the caller is used as is and left running.
    """
    cfg = load_config(config).with_overrides(trials=trials)
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout = {timeout!r}: must be a number of seconds > 0")
    if cpus is not None and cpus < 1:
        raise ConfigError(f"--cpus = {cpus!r}: must be an integer >= 1")
    if address:
        _check_address(address)  # seconds, not Ray's minutes of retries
    quiet_ray_env(verbose)
    if not verbose:
        drop_ray_exit_noise()
    t0 = time.monotonic()
    space, spec = _space_and_spec(cfg)
    st = open_run_storage(cfg, storage)
    study_id, status_before = _prepare_study(cfg, st, resume, spec)
    from nas.runner_engine import Engine

    owns_ray, made_tmp = False, None
    old_handlers = _install_stop_handlers()
    try:
        engine = Engine(cfg, st, study_id, space, spec)
        if engine.budget > 0:
            owns_ray, made_tmp = _start_ray(address, cpus, verbose, ray_temp_dir)
            _install_stop_handlers()  # ray.init installs its own SIGTERM handler: ours wins
            _check_resources(cfg)  # a trial that fits no node would wait forever
    except BaseException:  # no trial ran: leave the database as it was
        _restore_handlers(old_handlers)
        if owns_ray:
            import ray

            ray.shutdown()
        if made_tmp:
            import shutil

            shutil.rmtree(made_tmp, ignore_errors=True)
        if status_before is None:
            st.delete_study(cfg.name)
        else:
            st.set_study_status(study_id, status_before)
        raise
    if on_start is not None:
        on_start(engine)
    interrupted = False
    try:
        if engine.budget > 0:
            _fit(engine, cfg, timeout, verbose, ray_storage, on_change, callbacks)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # a refit thread still inside torch when the interpreter exits aborts the process
        # ("terminate called without an active exception"): let it finish first
        try:
            engine.wait_refit()
        except KeyboardInterrupt:  # a second signal: go on marking and flushing
            pass
        live = engine.close()
        interrupted = interrupted or live > 0
        if engine.writer.errors:
            logger.error("%d database write(s) failed; first: %s", len(engine.writer.errors),
                         engine.writer.errors[0])
        st.set_study_status(study_id, "INTERRUPTED" if interrupted else "COMPLETE")
        if owns_ray:
            import ray

            ray.shutdown()
        if made_tmp and not verbose:  # Ray's logs of this run (kept with --verbose)
            import shutil

            shutil.rmtree(made_tmp, ignore_errors=True)
        elif made_tmp:  # kept: not an orphan for the next run to remove
            from nas.runner_orphans import OWNER_FILE

            Path(made_tmp, OWNER_FILE).unlink(missing_ok=True)
        _restore_handlers(old_handlers)
    return summarize(cfg, st, study_id, time.monotonic() - t0, engine=engine,
                     nodes=engine.nodes, interrupted=interrupted)


def _fit(engine: Any, cfg: StudyConfig, timeout: float | None, verbose: bool,
         ray_storage: str | None, on_change: Callable[[], None] | None,
         callbacks: Sequence[Any] = ()) -> None:
    from ray import tune

    from nas.runner_tune import (
        NasCallback,
        NasScheduler,
        NasSearcher,
        NasSearchGenerator,
        make_trainable,
        release,
        static_payload,
    )

    callback = NasCallback(engine, on_change)
    trainable = tune.with_resources(make_trainable(static_payload(engine)),
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
