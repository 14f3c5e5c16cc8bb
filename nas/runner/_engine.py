"""The trial lifecycle of one running study on the driver: Optuna ask/tell and the stopping hook; no
Ray here (the Tune adapters call into it).

Who calls what, when (all on the driver, in Tune's event-loop thread unless noted):

* :meth:`Engine.next_trial` -- from the searcher's ``suggest``: asks Optuna (define-by-run,
  ``space.sample(trial)``), records the trial as RUNNING and returns what the worker needs.
* :meth:`Engine.on_result` -- from the scheduler's ``on_trial_result`` after every epoch: updates
  the in-memory mirror, asks the stopping policy, queues the point/forecast/decision writes and
  returns True to stop.  This is the hook whose latency matters (p99 <= 20 ms): no database
  round trip happens here, writes go to the :class:`~nas.runner._writer.Writer`'s thread.
* :meth:`Engine.on_complete` / :meth:`Engine.on_error` -- from the callback when Tune finishes a
  trial: final state (COMPLETE, STOPPED, FAILED), Optuna is told (STOPPED -> PRUNED), and the
  stopping session refits the predictor on its schedule, on its refit thread.
* :meth:`Engine.overdue` -- from the callback after every step: the
  :class:`~nas.runner._watchdog.Watchdog`'s trials past their time limit.
* :meth:`Engine.stats` -- from any thread (the progress view's): a
  :class:`~nas.runner._stats.RunStats` snapshot.
* :meth:`Engine.close` -- after ``Tuner.fit`` returns (or is interrupted): trials still live are
  marked INTERRUPTED, the writer is drained.

State lives in storage: a restarted driver rebuilds the Optuna study and the mirror from the
database (:func:`nas.runner._history.rebuild`, from :meth:`Engine.__init__`), so resuming needs
nothing else.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.config import StudyConfig
from nas.errors import ConfigError, NasError, StorageError
from nas.interfaces import Action, Decision, TrialState
from nas.plugins import StudyPlugins
from nas.policies import StopAudit, StoppingSession, StudyCurves, ThreadRefits
from nas.runner._history import rebuild
from nas.runner._stats import RunStats, Tally
from nas.runner._trials import LiveTrial
from nas.runner._watchdog import Watchdog
from nas.runner._writer import CreateTrial, FinishTrial, RecordStep, SetTrialNode, TrialRef, Writer

if TYPE_CHECKING:
    from nas.storage import Storage

logger = logging.getLogger(__name__)

__all__ = ["Engine", "StepEvent"]


@dataclasses.dataclass(frozen=True)
class StepEvent:
    """One recorded epoch of a trial, as :meth:`Engine.listen` observers see it."""

    number: int
    epoch: int
    value: float  # raw, in the objective's units
    config: Mapping[str, Any]
    decision: Decision


class Engine:
    """Driver state of one study run (see the module docstring for the call order)."""

    def __init__(self, cfg: StudyConfig, storage: Storage, study_id: int, plugins: StudyPlugins,
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
        audit = None
        if self.policy_name != "none" and cfg.stopping.audit > 0:
            audit = StopAudit(cfg.stopping.audit, seed=cfg.study.seed)
        self.mirror = StudyCurves()
        self.tally = Tally(self.direction)
        self.live: dict[str, LiveTrial] = {}
        self.controller: Any = None  # Tune's controller (set by the scheduler adapter)
        self.watchdog = Watchdog(cfg.training.time_limit_s)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            directions=[str(o["direction"]) for o in self.objectives],  # type: ignore[misc]
            sampler=plugins.sampler)
        history = rebuild(storage, study_id, self.study, spec, len(self.objectives),
                          self.mirror, self.tally)
        # the one stopping step (nas.policies.StoppingSession), its refits off the hook's path
        self.session = StoppingSession(
            self.policy, horizon=self.horizon,
            new_predictor=plugins.new_predictor if cfg.stopping.predictor else None,
            audit=audit, calibrate=cfg.stopping.calibrate, refits=ThreadRefits(),
            normalise=spec.normalise, mirror=self.mirror)
        self._listeners: list[Callable[[StepEvent], None]] = []
        self.next_number = history.next_number
        self._reruns = history.reruns
        self.budget = max(0, (cfg.search.trials if budget is None else budget) - self.tally.done)
        self.launched = 0
        self._stop_all = False
        self.writer = Writer(storage)

    # ------------------------------------------------------------------ statistics
    def stats(self) -> RunStats:
        """A snapshot of the run's statistics (safe to call from another thread)."""
        t = self.tally
        best = t.best
        return RunStats(
            study=self.cfg.name, budget=self.budget, launched=self.launched,
            horizon=self.horizon, counts=dict(t.counts), epochs_run=t.epochs_run,
            best_number=best[0] if best else None, best_value=best[1] if best else None,
            nodes=dict(t.nodes), forecasts=t.forecasts, refits=self.session.refit_count,
            refitting=self.session.refitting, hook_ms=tuple(t.hook_ms),
            hook_ms_refit=tuple(t.hook_ms_refit), busy_s=t.busy_s,
            write_batches=self.writer.batches, writes_failed=len(self.writer.errors),
            writer_cpu_s=self.writer.cpu_s)

    # ------------------------------------------------------------------ trials
    def next_trial(self, key: str) -> dict[str, Any] | None:
        """A new trial for Tune's ``key`` (its trial id), or None when the budget is spent."""
        if self.launched >= self.budget:
            return None
        t0 = time.perf_counter()
        try:
            return self._next_trial(key)
        finally:
            self.tally.busy_s += time.perf_counter() - t0

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
        except Exception as exc:  # noqa: BLE001  (features are optional: the trial runs on)
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
        self.writer.put(CreateTrial(ref, self.study_id, number, config=config,
                                    distributions=payload, features=feats or None,
                                    state=TrialState.RUNNING))
        fvec = np.asarray([feats[k] for k in sorted(feats)], dtype=np.float64) if feats else None
        self.live[key] = LiveTrial(number, ref, ot, config, fvec)
        self.launched += 1
        self.tally.count(TrialState.RUNNING)
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
        value = result.get(self.primary)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            t.error = (f"objective {self.primary} is {value!r} at epoch {epoch}"
                       if value is not None else
                       f"the trainer reported no {self.primary!r} at epoch {epoch}")
            return True
        t.raw.append(float(value))
        elapsed = result.get("nas_elapsed_s")
        if isinstance(elapsed, (int, float)) and math.isfinite(elapsed):
            # the worker's clock starts after the actor's start-up, which can take seconds on a
            # loaded machine: the watchdog measures the trial's own time from here on
            t.started, t.reported = time.monotonic() - float(elapsed), True
        node = result.get("nas_node")
        tally = self.tally
        if epoch == 1 and isinstance(node, str):
            tally.nodes[node] = tally.nodes.get(node, 0) + 1
            device, threads = result.get("nas_device"), result.get("nas_threads")
            self.writer.put(SetTrialNode(
                t.ref, node, device if isinstance(device, str) else None,
                threads if isinstance(threads, int) and not isinstance(threads, bool) else None))
        t.metrics = dict(result)
        tally.epochs_run += 1
        wall = time.time()
        decision = self.session.report(t.number, epoch, float(value), features=t.features)
        self._record(t, epoch, float(value), wall, decision)
        t.stopped = decision.stop or self._stop_all
        if self._listeners:
            event = StepEvent(t.number, epoch, float(value), t.config, decision)
            for fn in self._listeners:
                fn(event)
            t.stopped = t.stopped or self._stop_all
        ms = (time.perf_counter() - t0) * 1000.0
        tally.busy_s += ms / 1000.0
        tally.hook_ms.append(ms)
        if self.session.refitting:
            tally.hook_ms_refit.append(ms)
        return t.stopped

    def _record(self, t: LiveTrial, epoch: int, value: float, wall: float, d: Decision) -> None:
        """Queue the point, and the forecast and decision (policies other than ``none``)."""
        forecast = decision = None
        if self.policy_name != "none" and not (self.session.running_on(t.number)
                                               and d.action == Action.CONTINUE):
            bar = d.threshold  # for a stop, the session fills in what it gave up
            threshold = None if bar is None else self.spec.denormalise(bar)
            decision = {"policy": self.policy_name, "action": d.action, "reason": d.reason,
                        "threshold": threshold}
            f = d.forecast
            if f is not None and f.mean is not None:
                forecast = dataclasses.replace(
                    f, predictor=f.predictor or self.cfg.stopping.predictor or "?",
                    horizon=f.horizon or self.horizon)
                self.tally.forecasts += 1
        self.writer.put(RecordStep(t.ref, epoch, value, wall, forecast=forecast,
                                   decision=decision))

    def on_complete(self, key: str) -> str | None:
        """Tune finished trial ``key`` (ran out, was stopped, or reported an error)."""
        t0 = time.perf_counter()
        try:
            return self._on_complete(key)
        finally:
            self.tally.busy_s += time.perf_counter() - t0

    def _on_complete(self, key: str) -> str | None:
        t = self.live.pop(key, None)
        if t is None:
            return None
        from optuna.trial import TrialState as OptunaState

        self.tally.count(TrialState.RUNNING, -1)
        if t.error is None and not t.raw:
            t.error = "the trial ended without reporting an epoch"
        if t.error is not None:
            state = TrialState.FAILED
            self.study.tell(t.optuna_trial, state=OptunaState.FAIL)
            self.writer.put(FinishTrial(t.ref, state=state, epochs=len(t.raw), error=t.error))
            self.session.fail(t.number)
        elif t.stopped:
            state = TrialState.STOPPED
            if len(self.objectives) == 1:
                for i, v in enumerate(t.raw):
                    t.optuna_trial.report(v, i + 1)
            self.study.tell(t.optuna_trial, state=OptunaState.PRUNED)
            self.writer.put(FinishTrial(t.ref, state=state, value=t.raw[-1], epochs=len(t.raw)))
            self.session.stopped(t.number)
        else:
            state = TrialState.COMPLETE
            values = [self._objective_value(t, o["name"]) for o in self.objectives]
            if len(self.objectives) == 1:
                for i, v in enumerate(t.raw):
                    t.optuna_trial.report(v, i + 1)
            self.study.tell(t.optuna_trial, values if len(values) > 1 else values[0])
            self.writer.put(FinishTrial(t.ref, state=state, values=values, epochs=len(t.raw)))
            self.tally.update_best(t.number, values[0], t.config)
            self.session.complete(t.number, t.raw[-1])
        self.tally.count(state)
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
        """Live trials past their time limit (see :meth:`Watchdog.overdue
        <nas.runner._watchdog.Watchdog.overdue>`): marked FAILED with a time-limit error; the
        caller stops them."""
        return self.watchdog.overdue(self.live)

    def on_error(self, key: str, text: str) -> None:
        """Tune gave up on trial ``key`` (worker deaths beyond ``max_failures``)."""
        t = self.live.get(key)
        if t is not None and t.error is None:
            t.error = text
        self.on_complete(key)

    def wait_refit(self, timeout: float = 60.0) -> None:
        """Let a running predictor refit finish (at most ``timeout`` seconds)."""
        self.session.wait_refit(timeout)

    # ------------------------------------------------------------------ observers
    def listen(self, fn: Callable[[StepEvent], None]) -> None:
        """Call ``fn(event)`` after every recorded epoch (a :class:`StepEvent`: trial number,
        epoch, raw value, config and the stopping decision).  The race's recorder uses it."""
        self._listeners.append(fn)

    def stop_launching(self, *, stop_running: bool = False) -> None:
        """Launch no new trial; with ``stop_running``, also stop every live trial at its next
        result (STOPPED, as a policy stop)."""
        self.budget = self.launched
        self._stop_all = self._stop_all or stop_running

    # ------------------------------------------------------------------ end
    def close(self, *, interrupted: bool = False) -> int:
        """Mark live trials INTERRUPTED, drain the writer; returns how many were live."""
        n = len(self.live)
        for key in list(self.live):
            t = self.live.pop(key)
            self.tally.count(TrialState.RUNNING, -1)
            self.tally.count(TrialState.INTERRUPTED)
            self.writer.put(FinishTrial(t.ref, state=TrialState.INTERRUPTED, epochs=len(t.raw)))
        self.writer.close()
        if self.tally.counts.get(TrialState.RUNNING) == 0:
            self.tally.counts.pop(TrialState.RUNNING)
        return n
