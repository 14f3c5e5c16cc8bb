"""The driver-side state of one running study; no Ray here (the Tune adapters call into it).

Who calls what, when (all on the driver, in Tune's event-loop thread unless noted):

* :meth:`Engine.next_trial` -- from the searcher's ``suggest``: asks Optuna (define-by-run,
  ``space.sample(trial)``), records the trial as RUNNING and returns what the worker needs.
* :meth:`Engine.on_result` -- from the scheduler's ``on_trial_result`` after every epoch: updates
  the in-memory mirror, asks the stopping policy, queues the point/forecast/decision writes and
  returns True to stop.  This is the hook whose latency matters (p99 <= 20 ms): no database
  round trip happens here, writes go to :class:`_Writer`'s thread.
* :meth:`Engine.on_complete` / :meth:`Engine.on_error` -- from the callback when Tune finishes a
  trial: final state (COMPLETE, STOPPED, FAILED), Optuna is told (STOPPED -> PRUNED), and the
  predictor refit is scheduled on a background thread on ``should_refit``'s schedule.
* :meth:`Engine.close` -- after ``Tuner.fit`` returns (or is interrupted): trials still live are
  marked INTERRUPTED, the writer is drained.

State lives in storage: a restarted driver rebuilds the Optuna study and the mirror from the
database (:meth:`Engine.__init__`), so resuming needs nothing else.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.config import StudyConfig
from nas.errors import ConfigError, NasError, StorageError
from nas.interfaces import Curve, Decision, TrialView
from nas.plugins import StudyPlugins
from nas.policies import StudyCurves

logger = logging.getLogger(__name__)

__all__ = ["DONE_STATES", "Engine", "LiveTrial"]

#: States that count against the trial budget.
DONE_STATES = ("COMPLETE", "STOPPED", "FAILED")


def _should_refit(n_complete: int) -> bool:
    from nas.policies import should_refit

    return bool(should_refit(n_complete))


class TrialRef:
    """A trial's database id, known once the writer thread has created its row (writes queued
    for the trial before then are applied after the creation: the queue keeps order)."""

    __slots__ = ("id",)

    def __init__(self) -> None:
        self.id: int | None = None


class _Writer:
    """One background thread that applies storage writes in order (off the hook's path).

    It sleeps for :attr:`flush_s` after the first queued write, then applies everything queued
    in one transaction (:meth:`Storage.batch`; the points, forecasts and decisions of a run of
    results as batched inserts), in queue order: a trial's row is created before its results,
    which are written before its ``finish_trial``.  Writes reach the database at most
    :attr:`flush_s` after they are queued (what a SIGKILL of the driver can lose: the trials
    concerned are still RUNNING in the database, so ``resume`` runs them again).
    """

    flush_s = 0.2

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.q: queue.Queue[tuple[str, tuple[Any, ...], dict[str, Any]] | None] = queue.Queue()
        self.errors: list[str] = []
        self.create_failures: list[str] = []  # the engine stops the run on the next trial
        self.batches = 0
        self.cpu_s = 0.0  # the writer thread's own CPU time (it shares the driver's GIL)
        self._closing = threading.Event()  # cuts the gathering window short at close()
        self.t = threading.Thread(target=self._loop, name="nas-db-writer", daemon=True)
        self.t.start()

    def put(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.q.put((method, args, kwargs))

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self.q.get()
            if first is not None:
                # gather for ``flush_s`` after the first write, asleep (not woken by every put:
                # each wake-up would take the driver's GIL from Tune's loop), then take all that
                # came: one transaction per window instead of one per result
                self._closing.wait(self.flush_s)
            batch: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
            item = first
            while item is not None:
                batch.append(item)
                if len(batch) >= 5000:
                    break
                try:
                    item = self.q.get_nowait()
                except queue.Empty:
                    break
            else:
                stop = True
            if batch:
                c0 = time.thread_time()
                self._apply(batch)
                self.cpu_s += time.thread_time() - c0

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
              strict: bool) -> None:
        """Apply one write; errors raise when ``strict`` (inside a batch), else are logged."""
        try:
            if method == "create_trial":
                kw = dict(kwargs)
                ref = kw.pop("ref")
                ref.id = self.storage.create_trial(*args, **kw)
                return
            if args and isinstance(args[0], TrialRef):
                if args[0].id is None:
                    raise RuntimeError("the trial's row could not be created")
                args = (args[0].id, *args[1:])
            getattr(self.storage, method)(*args, **kwargs)
        except Exception as exc:  # a lost write must not kill the study; it is logged
            if strict:
                raise
            logger.error("storage write %s failed: %s", method, exc)
            self.errors.append(f"{method}: {exc}")
            if method == "create_trial":
                self.create_failures.append(str(exc))

    def _apply(self, batch: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
        """All of ``batch`` in one transaction; when that fails, one write at a time (so that
        only the bad write is lost, and it is named in the log)."""
        self.batches += 1
        if len(batch) > 1:
            try:
                with self.storage.batch(f"writing {len(batch)} queued results"):
                    self._apply_each(batch, strict=True)
                return
            except Exception as exc:
                logger.debug("batched write failed (%s); writing one at a time", exc)
                for method, _, kwargs in batch:  # those rows were rolled back
                    if method == "create_trial":
                        kwargs["ref"].id = None
        self._apply_each(batch, strict=False)

    def _apply_each(self, batch: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
                    strict: bool) -> None:
        steps: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def flush() -> None:
            if steps:
                rows = [(ref.id, step, value, wall, kw.get("forecast"), kw.get("decision"))
                        for (ref, step, value, wall), kw in steps if ref.id is not None]
                if len(rows) < len(steps):
                    if strict:
                        raise RuntimeError("results of a trial whose row was not created")
                    self.errors.append(f"record_step: {len(steps) - len(rows)} result(s) of "
                                       f"trials whose row could not be created")
                if rows:
                    self._call("record_steps", (rows,), {}, strict)
            steps.clear()

        for method, args, kwargs in batch:
            if method == "record_step":
                steps.append((args, kwargs))
            else:
                flush()
                self._call(method, args, kwargs, strict)
        flush()

    def close(self) -> None:
        self._closing.set()
        self.q.put(None)
        self.t.join()


@dataclass
class LiveTrial:
    """A trial the engine has handed to Tune and not finished yet."""

    number: int
    ref: TrialRef
    optuna_trial: Any
    config: dict[str, Any]
    features: np.ndarray | None
    raw: list[float] = field(default_factory=list)
    norm: list[float] = field(default_factory=list)  # ``raw`` normalised (the mirror's curve)
    metrics: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False
    audited: bool = False  # the stop audit overrode a STOP: the trial runs to the horizon
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    reported: bool = False  # ``started`` was corrected from the worker's own clock


class Engine:
    """Driver state of one study run (see the module docstring for the call order)."""

    def __init__(self, cfg: StudyConfig, storage: Any, study_id: int, plugins: StudyPlugins,
                 *, budget: int | None = None) -> None:
        import optuna

        self.cfg, self.storage, self.study_id = cfg, storage, study_id
        self.plugins = plugins
        self.space, self.spec = plugins.space, plugins.spec
        spec = self.spec
        self.objectives: list[dict[str, Any]] = [{"name": o.name, "direction": o.direction}
                           for o in cfg.search.objectives] or \
            [{"name": spec.objective, "direction": spec.direction}]
        self.primary = self.objectives[0]["name"]
        self.direction = self.objectives[0]["direction"]
        self.horizon = cfg.training.max_epochs
        self.policy = plugins.policy
        self.policy_name = cfg.stopping.policy
        self.audit = None
        if self.policy_name != "none" and cfg.stopping.audit > 0:
            from nas.policies import StopAudit

            self.audit = StopAudit(cfg.stopping.audit, seed=cfg.study.seed)
        self.mirror = StudyCurves()
        self.hook_ms: list[float] = []
        self.hook_ms_refit: list[float] = []  # the subset measured while a refit was running
        #: driver time spent in the engine's own calls (suggest, every result, trial end)
        self.busy_s = 0.0
        self.live: dict[str, LiveTrial] = {}
        self.nodes: dict[str, int] = {}  # trials started per Ray node
        self.controller: Any = None  # Tune's controller (set by the scheduler adapter)
        self._last_watch = 0.0
        self.counts: dict[str, int] = {}
        self.epochs_run = 0
        self.best: tuple[int, float, dict[str, Any]] | None = None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            directions=[str(o["direction"]) for o in self.objectives],  # type: ignore[misc]
            sampler=plugins.sampler)
        self._lock = threading.Lock()
        self._refit_thread: threading.Thread | None = None
        self._refit_pending = False
        self._threads_set = False
        self._pit_cache: dict[Any, Any] = {}  # calibration PITs of a fixed predictor, per trial
        self.refits = 0
        self._rebuild()
        done = sum(self.counts.get(s, 0) for s in DONE_STATES)
        self.budget = max(0, (cfg.search.trials if budget is None else budget) - done)
        self.launched = 0
        self.writer = _Writer(storage)
        if cfg.stopping.predictor is not None:
            self._start_refit()

    # ------------------------------------------------------------------ history
    def _rebuild(self) -> None:
        """Optuna history and mirror from the stored trials; INTERRUPTED ones are re-queued."""
        import optuna
        from optuna.distributions import json_to_distribution
        from optuna.trial import TrialState

        records = self.storage.trials(self.study_id, with_curves=True)
        self.mirror.audited = {n: step for n, (step, _) in self.storage.audits(self.study_id).items()}
        rerun = {r.distributions.get("rerun_of") for r in records}
        self.next_number = 1 + max((r.number for r in records), default=-1)
        self._reruns: list[tuple[int, dict[str, Any]]] = []
        for r in records:
            self.counts[r.state] = self.counts.get(r.state, 0) + 1
            payload = r.distributions or {}
            params = payload.get("params", {})
            try:
                dists = {k: json_to_distribution(v)
                         for k, v in payload.get("distributions", {}).items()}
            except Exception as exc:  # not written by this runner (e.g. imported curves)
                logger.debug("trial %d has no Optuna distributions (%s)", r.number, exc)
                continue
            curve = [v for v in (r.curve or []) if v is not None]
            if r.state == "INTERRUPTED":
                if r.number not in rerun:
                    self._reruns.append((r.number, params))
                continue
            if r.state not in DONE_STATES:
                continue
            self.epochs_run += len(curve)
            norm = [self.spec.normalise(v) for v in curve]
            if norm and all(math.isfinite(x) for x in norm):
                self.mirror.curves[r.number] = norm
            state = {"COMPLETE": TrialState.COMPLETE, "STOPPED": TrialState.PRUNED,
                     "FAILED": TrialState.FAIL}[r.state]
            values = None
            if r.state == "COMPLETE":
                values = r.values or [r.value]
                if any(v is None for v in values) or len(values) != len(self.objectives):
                    continue
                if norm:
                    self.mirror.complete[r.number] = norm[-1]
                self._update_best(r.number, float(values[0]), r.config)
            inter = ({i + 1: v for i, v in enumerate(curve)} if len(self.objectives) == 1
                     else {})
            try:
                self.study.add_trial(optuna.trial.create_trial(
                    state=state, params=params, distributions=dists, values=values,
                    intermediate_values=inter))
            except ValueError as exc:
                logger.warning("trial %d not added to the sampler's history: %s", r.number, exc)
        for _, params in self._reruns:
            self.study.enqueue_trial(params, skip_if_exists=False)

    def _update_best(self, number: int, value: float, config: dict[str, Any]) -> None:
        better = (self.best is None or (value > self.best[1] if self.direction == "maximize"
                                        else value < self.best[1]))
        if better:
            self.best = (number, value, config)

    # ------------------------------------------------------------------ trials
    def next_trial(self, key: str) -> dict[str, Any] | None:
        """A new trial for Tune's ``key`` (its trial id), or None when the budget is spent."""
        if self.launched >= self.budget:
            return None
        t0 = time.perf_counter()
        try:
            return self._next_trial(key)
        finally:
            self.busy_s += time.perf_counter() - t0

    def _next_trial(self, key: str) -> dict[str, Any]:
        ot = self.study.ask()
        try:
            config = self.space.sample(ot)
        except NasError:
            raise
        except Exception as exc:
            raise ConfigError(f"search space {self.cfg.search.space!r} failed to sample a "
                              f"configuration: {type(exc).__name__}: {exc}") from exc
        from optuna.distributions import distribution_to_json

        payload: dict[str, Any] = {
            "params": dict(ot.params),
            "distributions": {k: distribution_to_json(d) for k, d in ot.distributions.items()},
        }
        if self._reruns:  # Optuna hands out the enqueued (re-run) trials first, in order
            payload["rerun_of"] = self._reruns.pop(0)[0]
        try:
            feats = {str(k): float(v) for k, v in self.space.features(config).items()}
        except Exception as exc:
            logger.warning("features of trial %d failed: %s", self.next_number, exc)
            feats = {}
        number = self.next_number
        self.next_number += 1
        if self.writer.create_failures:  # as the synchronous insert would have: stop the run
            raise StorageError(f"{self.storage.masked_url}: creating a trial failed: "
                               f"{self.writer.create_failures[0]}")
        ref = TrialRef()
        # created by the writer thread (a synchronous insert here would cost the Tune loop
        # ~2 ms per trial); everything queued for the trial later is applied after it
        self.writer.put("create_trial", self.study_id, number, config=config,
                        distributions=payload, features=feats or None, state="RUNNING", ref=ref)
        fvec = np.asarray([feats[k] for k in sorted(feats)], dtype=np.float64) if feats else None
        self.live[key] = LiveTrial(number, ref, ot, config, fvec)
        self.launched += 1
        self.counts["RUNNING"] = self.counts.get("RUNNING", 0) + 1
        return {"number": number, "config": config}

    def on_result(self, key: str, result: Mapping[str, Any]) -> bool:
        """After one epoch of trial ``key``: True to stop it (policy STOP or a failure)."""
        t0 = time.perf_counter()
        t = self.live.get(key)
        epoch = result.get("epoch")
        if t is None or not isinstance(epoch, int):
            return False
        if "nas_error" in result:
            t.error = str(result["nas_error"])
            return True
        if epoch <= len(t.raw):  # the trial restarted after a worker death: start over
            del t.raw[epoch - 1:]
            del t.norm[epoch - 1:]
        value = result.get(self.primary)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            t.error = (f"objective {self.primary} is {value!r} at epoch {epoch}"
                       if value is not None else
                       f"the trainer reported no {self.primary!r} at epoch {epoch}")
            return True
        t.raw.append(float(value))
        t.norm.append(self.spec.normalise(float(value)))
        elapsed = result.get("nas_elapsed_s")
        if isinstance(elapsed, (int, float)) and math.isfinite(elapsed):
            # the worker's clock starts after the actor's start-up, which can take seconds on a
            # loaded machine: the watchdog measures the trial's own time from here on
            t.started, t.reported = time.monotonic() - float(elapsed), True
        node = result.get("nas_node")
        if epoch == 1 and isinstance(node, str):
            self.nodes[node] = self.nodes.get(node, 0) + 1
            self.writer.put("set_trial_node", t.ref, node)
        t.metrics = dict(result)
        self.epochs_run += 1
        norm = t.norm
        self.mirror.curves[t.number] = norm
        wall = time.time()
        if epoch >= self.horizon:
            decision = Decision("CONTINUE", "last epoch")
        elif t.audited:
            decision = Decision("CONTINUE", "stop audit: runs on to the horizon")
        else:
            self.mirror.current = t.number
            try:
                decision = self.policy.decide(
                    TrialView(t.number, np.asarray(norm), self.horizon, t.features),
                    self.mirror)
            finally:
                self.mirror.current = None
            if decision.stop and self.audit is not None:
                decision = self.audit.review(decision, t.number)
                if decision.action == "AUDIT":
                    t.audited = True
                    self.mirror.audited[t.number] = epoch
        self._record(t, epoch, float(value), wall, decision)
        t.stopped = decision.stop
        ms = (time.perf_counter() - t0) * 1000.0
        self.busy_s += ms / 1000.0
        self.hook_ms.append(ms)
        rt = self._refit_thread
        if rt is not None and rt.is_alive():
            self.hook_ms_refit.append(ms)
        return decision.stop

    def _record(self, t: LiveTrial, epoch: int, value: float, wall: float, d: Decision) -> None:
        """Queue the point, and the forecast and decision (policies other than ``none``)."""
        forecast = decision = None
        if self.policy_name != "none" and not (t.audited and d.action == "CONTINUE"):
            bar = d.threshold
            if bar is None and d.action in ("STOP", "AUDIT"):
                bar = self.mirror.best_value  # what the stop gave up: beating the best so far
            threshold = None if bar is None else self.spec.denormalise(bar)
            decision = {"policy": self.policy_name, "action": d.action, "reason": d.reason,
                        "threshold": threshold}
            f = d.forecast
            if f is not None and f.mean is not None:
                forecast = {"predictor": f.predictor or self.cfg.stopping.predictor or "?",
                            "horizon": f.horizon or self.horizon, "mean": f.mean,
                            "q05": f.q05, "q50": f.q50, "q95": f.q95,
                            "p_improve": f.p_improve}
        self.writer.put("record_step", t.ref, epoch, value, wall, forecast=forecast,
                        decision=decision)

    def on_complete(self, key: str) -> str | None:
        """Tune finished trial ``key`` (ran out, was stopped, or reported an error)."""
        t0 = time.perf_counter()
        try:
            return self._on_complete(key)
        finally:
            self.busy_s += time.perf_counter() - t0

    def _on_complete(self, key: str) -> str | None:
        t = self.live.pop(key, None)
        if t is None:
            return None
        from optuna.trial import TrialState

        self.counts["RUNNING"] -= 1
        if t.error is None and not t.raw:
            t.error = "the trial ended without reporting an epoch"
        if t.error is not None:
            state = "FAILED"
            self.study.tell(t.optuna_trial, state=TrialState.FAIL)
            self.writer.put("finish_trial", t.ref, state=state, epochs=len(t.raw),
                            error=t.error)
            self.mirror.curves.pop(t.number, None)
        elif t.stopped:
            state = "STOPPED"
            if len(self.objectives) == 1:
                for i, v in enumerate(t.raw):
                    t.optuna_trial.report(v, i + 1)
            self.study.tell(t.optuna_trial, state=TrialState.PRUNED)
            self.writer.put("finish_trial", t.ref, state=state, value=t.raw[-1],
                            epochs=len(t.raw))
        else:
            state = "COMPLETE"
            values = [self._objective_value(t, o["name"]) for o in self.objectives]
            if len(self.objectives) == 1:
                for i, v in enumerate(t.raw):
                    t.optuna_trial.report(v, i + 1)
            self.study.tell(t.optuna_trial, values if len(values) > 1 else values[0])
            self.writer.put("finish_trial", t.ref, state=state, values=values,
                            epochs=len(t.raw))
            self.mirror.complete[t.number] = self.spec.normalise(t.raw[-1])
            self._update_best(t.number, values[0], t.config)
            if self.cfg.stopping.predictor is not None and _should_refit(self.mirror.n_complete):
                self._start_refit()
        self.counts[state] = self.counts.get(state, 0) + 1
        return state

    def _objective_value(self, t: LiveTrial, name: str) -> float:
        if name == self.primary:
            return t.raw[-1]
        v = t.metrics.get(name)
        if isinstance(v, (int, float)):
            return float(v)
        if name == "params":  # parameter count, when the trainer did not report it
            model = self.space.build(t.config, self.spec)
            return float(sum(p.numel() for p in model.parameters()))
        return float("nan")

    def overdue(self) -> set[str]:
        """Live trials past ``time_limit_s`` plus a grace (max(5 s, half the limit)) since the
        worker started them (max(60 s, the limit) before a first result, which must also cover
        the worker's start-up): marked FAILED with a time-limit error; the caller stops them.
        Checked at most once a second."""
        limit = self.cfg.training.time_limit_s
        now = time.monotonic()
        if limit is None or now - self._last_watch < 1.0:
            return set()
        self._last_watch = now
        out = set()
        for key, t in self.live.items():
            grace = max(5.0, 0.5 * limit) if t.reported else max(60.0, limit)
            if t.error is None and now - t.started > limit + grace:
                t.error = (f"time limit of {limit:g} s exceeded (no result for "
                           f"{now - t.started:.0f} s; stopped by the driver)")
                out.add(key)
        return out

    def on_error(self, key: str, text: str) -> None:
        """Tune gave up on trial ``key`` (worker deaths beyond ``max_failures``)."""
        t = self.live.get(key)
        if t is not None and t.error is None:
            t.error = text
        self.on_complete(key)

    # ------------------------------------------------------------------ predictor refit
    def _start_refit(self) -> None:
        """Fit a fresh predictor on the complete curves in a background thread, then swap."""
        with self._lock:
            if self._refit_thread is not None and self._refit_thread.is_alive():
                self._refit_pending = True
                return
            numbers = [n for n in self.mirror.complete if n in self.mirror.curves]
            curves = [Curve(np.asarray(self.mirror.curves[n])) for n in numbers]
            # the stop audit's trials stand for the would-be stops the audit did not draw:
            # weight 1/rate, and their PITs count only up to the step of the stop
            rate = self.audit.rate if self.audit is not None else 1.0
            weights = [1.0 / rate if n in self.mirror.audited else 1.0 for n in numbers]
            until = [self.mirror.audited.get(n, self.horizon - 1) for n in numbers]
            self._refit_thread = threading.Thread(target=self._refit,
                                                  args=(curves, weights, until),
                                                  name="nas-refit", daemon=True)
            self._refit_thread.start()

    def _refit(self, curves: Sequence[Curve], weights: Sequence[float] | None = None,
               until: Sequence[int] | None = None) -> None:
        name = self.cfg.stopping.predictor
        p = self.plugins.new_predictor()  # built (and checked) before the run started
        if "torch" in sys.modules and not self._threads_set:
            # The driver's forecasts are single-curve batches: one intra-op thread is fastest
            # and leaves the cores to the workers (process-wide; NAS_DRIVER_THREADS overrides).
            import torch

            torch.set_num_threads(int(os.environ.get("NAS_DRIVER_THREADS", "1")))
            self._threads_set = True
        if p is not None:
            try:
                if self.cfg.stopping.calibrate:
                    from nas.calibration import CalibratedPredictor

                    p = CalibratedPredictor(p, pit_cache=self._pit_cache).fit_study(
                        curves, weights, until)
                else:
                    p = p.fit(curves) or p
                # warm up (lazy initialisation, first-call costs) here, not in the hook
                p.predict([Curve(np.array([0.5]))], self.horizon)
                self.mirror.set_predictor(p)
                self.refits += 1
            except Exception as exc:  # keep the previous predictor; the policy copes with None
                (logger.debug if not curves else logger.warning)(
                    "refit of predictor %s on %d curves failed: %s", name, len(curves), exc)
        with self._lock:
            again, self._refit_pending = self._refit_pending, False
        if again:
            self._start_refit()

    def wait_refit(self, timeout: float = 60.0) -> None:
        t = self._refit_thread
        if t is not None:
            t.join(timeout)

    # ------------------------------------------------------------------ end
    def close(self, *, interrupted: bool = False) -> int:
        """Mark live trials INTERRUPTED, drain the writer; returns how many were live."""
        n = len(self.live)
        for key in list(self.live):
            t = self.live.pop(key)
            self.counts["RUNNING"] -= 1
            self.counts["INTERRUPTED"] = self.counts.get("INTERRUPTED", 0) + 1
            self.writer.put("finish_trial", t.ref, state="INTERRUPTED", epochs=len(t.raw))
        self.writer.close()
        if self.counts.get("RUNNING") == 0:
            self.counts.pop("RUNNING")
        return n
