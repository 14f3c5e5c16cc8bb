"""The engine's typed database writes and the one background thread that applies them in order.

Each storage operation the engine queues is a small frozen dataclass whose ``apply`` calls the
:class:`~nas.storage.Storage` method directly (so the calls are type-checked):
:class:`CreateTrial`, :class:`SetTrialNode`, :class:`RecordStep` (applied in runs, as one
``record_steps``) and :class:`FinishTrial`.  :class:`Writer` applies them off the hook's path.

Every write can be applied twice with the same effect (a retry after a lost connection cannot
know whether the first try was committed): a trial's row is looked up before it is created
again, a (trial, step) already stored keeps its point, forecast and decision, and the updates
set the same values.
"""

from __future__ import annotations

import _thread
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nas.interfaces import TrialState

if TYPE_CHECKING:
    from nas.interfaces import ForecastSummary
    from nas.storage import StepRecord, Storage

logger = logging.getLogger(__name__)

__all__ = ["DB_RETRY_ENV", "DEFAULT_DB_RETRY_S", "CreateTrial", "FinishTrial", "RecordStep",
           "SetTrialNode", "TrialRef", "Write", "Writer", "db_retry_s"]

#: How long (seconds) the writer retries a lost database connection before the run fails.
DEFAULT_DB_RETRY_S = 60.0
DB_RETRY_ENV = "NAS_DB_RETRY_S"


def db_retry_s() -> float:
    """The retry window: ``NAS_DB_RETRY_S`` when set to a number >= 0, else 60 s."""
    try:
        v = float(os.environ.get(DB_RETRY_ENV, ""))
    except ValueError:
        return DEFAULT_DB_RETRY_S
    return v if v >= 0 else DEFAULT_DB_RETRY_S


class TrialRef:
    """A trial's database id, known once the writer thread has created its row (writes queued
    for the trial before then are applied after the creation: the queue keeps order)."""

    __slots__ = ("id",)

    def __init__(self, id: int | None = None) -> None:
        self.id: int | None = id

    def require(self) -> int:
        """The id; the row must have been created."""
        if self.id is None:
            raise RuntimeError("the trial's row could not be created")
        return self.id


@dataclass(frozen=True)
class CreateTrial:
    """Insert the trial's row (state RUNNING); sets ``ref.id``."""

    name: ClassVar[str] = "create_trial"
    ref: TrialRef
    study_id: int
    number: int
    config: dict[str, Any]
    distributions: dict[str, Any]
    features: dict[str, Any] | None = None
    state: str = TrialState.RUNNING

    def apply(self, storage: Storage, retry: bool = False) -> None:
        self.ref.id = storage.create_trial(
            self.study_id, self.number, config=self.config, distributions=self.distributions,
            features=self.features, state=self.state, existing_ok=retry)


@dataclass(frozen=True)
class SetTrialNode:
    """Record the Ray node that ran the trial, and the device and torch threads it used."""

    name: ClassVar[str] = "set_trial_node"
    ref: TrialRef
    node: str
    device: str | None = None
    threads: int | None = None

    def apply(self, storage: Storage, retry: bool = False) -> None:
        storage.set_trial_node(self.ref.require(), self.node, device=self.device,
                               threads=self.threads)


@dataclass(frozen=True)
class RecordStep:
    """One result: the point, and optionally its forecast and decision.  Consecutive ones are
    applied together as one :class:`_RecordSteps` (batched inserts)."""

    name: ClassVar[str] = "record_step"
    ref: TrialRef
    step: int
    value: float
    wall_time: float
    forecast: ForecastSummary | None = None
    decision: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _RecordSteps:
    """Many :class:`RecordStep` of trials whose rows exist, as one ``record_steps``."""

    name: ClassVar[str] = "record_steps"
    rows: Sequence[StepRecord]

    def apply(self, storage: Storage, retry: bool = False) -> None:
        storage.record_steps(self.rows, idempotent=retry)


@dataclass(frozen=True)
class FinishTrial:
    """The trial's final state, value(s), epochs run and error."""

    name: ClassVar[str] = "finish_trial"
    ref: TrialRef
    state: str
    value: float | None = None
    values: list[float] | None = None
    epochs: int | None = None
    error: str | None = None

    def apply(self, storage: Storage, retry: bool = False) -> None:
        storage.finish_trial(self.ref.require(), state=self.state, value=self.value,
                             values=self.values, epochs=self.epochs, error=self.error)


#: What the engine queues.
Write = CreateTrial | SetTrialNode | RecordStep | FinishTrial


class Writer:
    """One background thread that applies storage writes in order (off the hook's path).

    It sleeps for :attr:`flush_s` after the first queued write, then applies everything queued
    in one transaction (:meth:`Storage.batch`; the points, forecasts and decisions of a run of
    results as batched inserts), in queue order: a trial's row is created before its results,
    which are written before its ``finish_trial``.  Writes reach the database at most
    :attr:`flush_s` after they are queued (what a SIGKILL of the driver can lose: the trials
    concerned are still RUNNING in the database, so ``resume`` runs them again).

    A lost database connection (a server restart, a network cut, a busy SQLite file) does not
    lose a write: the batch is tried again, every write of it idempotently, with a growing
    pause (0.2 s doubling to 5 s) for up to :attr:`retry_s` seconds (``NAS_DB_RETRY_S``,
    default 60), while the queue keeps what the run goes on producing.  When the window passes,
    :attr:`fatal` says why, the main thread is interrupted (the runner turns that into one
    error line; the study stays resumable) and later writes are dropped.
    """

    flush_s = 0.2

    def __init__(self, storage: Storage, retry_s: float | None = None) -> None:
        self.storage = storage
        self.retry_s = db_retry_s() if retry_s is None else float(retry_s)
        self.fatal: str | None = None
        self.outages = 0  # how many times the database went away and came back
        self.q: queue.Queue[Write | None] = queue.Queue()
        self.errors: list[str] = []
        self.create_failures: list[str] = []  # the engine stops the run on the next trial
        self.batches = 0
        self.cpu_s = 0.0  # the writer thread's own CPU time (it shares the driver's GIL)
        self._closing = threading.Event()  # cuts the gathering window short at close()
        self.t = threading.Thread(target=self._loop, name="nas-db-writer", daemon=True)
        self.t.start()

    def put(self, op: Write) -> None:
        self.q.put(op)

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self.q.get()
            if first is not None:
                # gather for ``flush_s`` after the first write, asleep (not woken by every put:
                # each wake-up would take the driver's GIL from Tune's loop), then take all that
                # came: one transaction per window instead of one per result
                self._closing.wait(self.flush_s)
            batch: list[Write] = []
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

    def _call(self, op: CreateTrial | SetTrialNode | FinishTrial | _RecordSteps,
              strict: bool, retry: bool) -> None:
        """Apply one write; errors raise when ``strict`` (inside a batch) or when the
        connection is lost (:meth:`_apply` retries), else are logged."""
        from nas.storage import transient

        try:
            op.apply(self.storage, retry)
        except Exception as exc:  # a lost write must not kill the study; it is logged
            if strict or transient(exc):
                raise
            logger.error("storage write %s failed: %s", op.name, exc)
            self.errors.append(f"{op.name}: {exc}")
            if isinstance(op, CreateTrial):
                self.create_failures.append(str(exc))

    def _apply(self, batch: list[Write]) -> None:
        """Apply ``batch``; a lost connection is retried (see the class docstring)."""
        from nas.storage import transient

        self.batches += 1
        if self.fatal is not None:
            return
        retry, delay, deadline = False, 0.2, 0.0
        while True:
            try:
                self._apply_once(batch, retry)
            except Exception as exc:
                if not transient(exc):
                    raise
                for op in batch:  # rolled back, or committed: the retry looks the row up
                    if isinstance(op, CreateTrial):
                        op.ref.id = None
                now = time.monotonic()
                if not retry:
                    deadline = now + self.retry_s
                    logger.warning("the study database is unreachable (%s); retrying for up to "
                                   "%g s", _first_line(exc), self.retry_s)
                if now >= deadline:
                    self.fatal = (f"{self.storage.masked_url}: the study database was "
                                  f"unreachable for {self.retry_s:g} s ({_first_line(exc)}); "
                                  "the run stopped and the study is resumable with --resume "
                                  "once the database is back")
                    _thread.interrupt_main()
                    return
                retry = True
                time.sleep(min(delay, max(0.0, deadline - now)))
                delay = min(delay * 2, 5.0)
                continue
            if retry:
                self.outages += 1
                logger.warning("the study database is back; nothing was lost")
            return

    def _apply_once(self, batch: list[Write], retry: bool) -> None:
        """All of ``batch`` in one transaction; when that fails (not for a lost connection),
        one write at a time (so that only the bad write is lost, and it is named in the log)."""
        from nas.storage import transient

        if len(batch) > 1:
            try:
                with self.storage.batch(f"writing {len(batch)} queued results"):
                    self._apply_each(batch, strict=True, retry=retry)
                return
            except Exception as exc:
                if transient(exc):
                    raise
                logger.debug("batched write failed (%s); writing one at a time", exc)
                for op in batch:  # those rows were rolled back
                    if isinstance(op, CreateTrial):
                        op.ref.id = None
        self._apply_each(batch, strict=False, retry=retry)

    def _apply_each(self, batch: list[Write], strict: bool, retry: bool) -> None:
        from nas.storage import StepRecord

        steps: list[RecordStep] = []

        def flush() -> None:
            if steps:
                rows = [StepRecord(tid, s.step, s.value, s.wall_time, s.forecast, s.decision)
                        for s in steps if (tid := s.ref.id) is not None]
                if len(rows) < len(steps):
                    if strict:
                        raise RuntimeError("results of a trial whose row was not created")
                    self.errors.append(f"record_step: {len(steps) - len(rows)} result(s) of "
                                       f"trials whose row could not be created")
                if rows:
                    self._call(_RecordSteps(rows), strict, retry)
            steps.clear()

        for op in batch:
            if isinstance(op, RecordStep):
                steps.append(op)
            else:
                flush()
                self._call(op, strict, retry)
        flush()

    def close(self) -> None:
        self._closing.set()
        self.q.put(None)
        self.t.join()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
