"""The extension interfaces of nas: the contracts between the engine and its plug-ins.

Signatures are the contract (docs/search_spaces.md, docs/tasks.md, docs/predictors.md).  Plug-ins register under these entry-point groups:

==================  =======================  ==========================================
group               protocol                 constructed with
==================  =======================  ==========================================
nas.search_spaces   :class:`SearchSpace`     ``cls(**space_options)``
nas.tasks           :class:`Task`            ``cls(**task_options)``
nas.predictors      :class:`LearningCurvePredictor`  ``cls(**predictor_options)``
nas.policies        :class:`StoppingPolicy`  ``cls(**policy_options)``
==================  =======================  ==========================================

The trainer is no entry point: ``training.trainer`` names a ``"module:function"`` (default
``nas.training:train``) that keeps the :class:`Trainer` protocol and is called, not constructed.

Scaling convention: predictors and policies only ever see *normalised* values, in [0, 1] with
higher better.  The engine maps raw objective values with :meth:`TaskSpec.normalise`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from nas._checks import Checker, key, rule_of
from nas._scale import denormalise, normalise

if TYPE_CHECKING:  # heavy imports only for type checkers
    import optuna
    import torch
    from torch.utils.data import Dataset


__all__ = [
    "ACTIONS",
    "AUDIT",
    "CONTINUE",
    "COUNTED_STATES",
    "DEVICES",
    "DIRECTIONS",
    "ENDED_STATES",
    "MAX_EPOCHS",
    "PREDICTOR_CAPS",
    "STOP",
    "STUDY_STATUSES",
    "TRIAL_STATES",
    "Action",
    "Curve",
    "Decision",
    "Direction",
    "Forecast",
    "ForecastSummary",
    "LearningCurvePredictor",
    "SearchSpace",
    "StoppingPolicy",
    "StudyContext",
    "StudyStatus",
    "StudyView",
    "Task",
    "TaskSpec",
    "Trainer",
    "TrainingKeys",
    "TrainingOptions",
    "TrialState",
    "TrialView",
    "best_first",
    "better",
    "predictor_caps",
]



class _Word(str, enum.Enum):
    """A word of nas's vocabulary: the member *is* the string stored in the database and written
    in files -- equal to it, hashed like it, and printed (``str``, ``repr``, f-strings) as it --
    so a plain string read back compares equal to its member, and messages read as before."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return str.__repr__(str.__str__(self))

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)


class Direction(_Word):
    """Which way an objective is better (``objectives[].direction``, :attr:`TaskSpec.direction`)."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class TrialState(_Word):
    """A trial's state, upper case as stored (``trials.state``)."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    #: stopped early by the stopping policy (Optuna: PRUNED)
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    #: cut off with its run (Ctrl-C, ``--timeout``, a driver that died); re-run on ``--resume``
    INTERRUPTED = "INTERRUPTED"


class StudyStatus(_Word):
    """A study's status (``studies.status``)."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    INTERRUPTED = "INTERRUPTED"
    FAILED = "FAILED"


class Action(_Word):
    """A stopping policy's verdict after one epoch (:attr:`Decision.action`,
    ``decisions.action``)."""

    CONTINUE = "CONTINUE"
    STOP = "STOP"
    #: the policy wanted to stop the trial and the stop audit let it run on to its horizon
    AUDIT = "AUDIT"


DIRECTIONS: tuple[Direction, ...] = tuple(Direction)
#: every trial state, in the order nas lists them
TRIAL_STATES: tuple[TrialState, ...] = tuple(TrialState)
#: ended: no longer running, for whatever reason (every state but RUNNING)
ENDED_STATES: tuple[TrialState, ...] = tuple(s for s in TrialState
                                             if s is not TrialState.RUNNING)
#: ended for good: these count against the trial budget and are never run again (an
#: INTERRUPTED trial is ended but not counted: ``--resume`` runs it again)
COUNTED_STATES: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.STOPPED,
                                          TrialState.FAILED)
STUDY_STATUSES: tuple[StudyStatus, ...] = tuple(StudyStatus)
ACTIONS: tuple[Action, ...] = tuple(Action)


@dataclass(frozen=True)
class TaskSpec:
    """What a model for a task must look like, and how its objective is scored.

    ``output_mode`` is ``"last"`` when the target is read from the last time step (one label or
    vector per sequence) and ``"sequence"`` when every step has a target.  ``loss`` is
    ``"cross_entropy"`` (``output_size`` classes) or ``"mse"``.  The objective is measured on the
    validation split after every epoch; it lies in ``objective_range``.
    """

    name: str
    input_size: int
    output_size: int
    seq_len: int
    objective: str = "val_accuracy"
    direction: Direction = Direction.MAXIMIZE
    objective_range: tuple[float, float] = (0.0, 1.0)
    output_mode: Literal["last", "sequence"] = "last"
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def normalise(self, value: float) -> float:
        """Map a raw objective value to [0, 1], higher better (clipped)."""
        lo, hi = self.objective_range
        return normalise(value, lo, hi, self.direction)

    def denormalise(self, x: float) -> float:
        """Inverse of :meth:`normalise` (inside the range)."""
        lo, hi = self.objective_range
        return denormalise(x, lo, hi, self.direction)


def better(value: float, than: float | None, direction: str) -> bool:
    """Whether objective ``value`` strictly beats ``than`` (None: nothing to beat yet) under
    ``direction``: the one definition of "best" for the runner, the storage and the dashboard."""
    if than is None:
        return True
    return value > than if direction == Direction.MAXIMIZE else value < than


def best_first(value: float, number: int, direction: str) -> tuple[float, int]:
    """Sort key that puts the best value first and breaks ties by the lower trial number."""
    return (-value if direction == Direction.MAXIMIZE else value, number)


@runtime_checkable
class SearchSpace(Protocol):
    """A space of model configurations (entry-point group ``nas.search_spaces``).

    ``sample`` runs on the driver inside Optuna's define-by-run API and returns a JSON-able dict
    (conditional parameters allowed).  ``build`` runs on a Ray worker.  ``features`` runs on the
    driver and gives predictors numeric descriptors of a configuration.
    """

    name: str

    def sample(self, trial: optuna.Trial) -> dict[str, Any]: ...

    def build(self, config: Mapping[str, Any], task: TaskSpec) -> torch.nn.Module: ...

    def features(self, config: Mapping[str, Any]) -> dict[str, float]: ...


@runtime_checkable
class Task(Protocol):
    """A learning problem (entry-point group ``nas.tasks``); data is generated from a seed."""

    name: str

    def spec(self) -> TaskSpec: ...

    def data(self, seed: int) -> tuple[Dataset, Dataset, Dataset]: ...


#: ``training.device`` (study file) and :attr:`TrainingOptions.device`
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


#: the cap of ``training.max_epochs`` (and of the command-line flags that set epochs)
MAX_EPOCHS = 100_000


@dataclass(frozen=True)
class TrainingKeys:
    """The study file's ``[training]`` keys that reach the trainer: the one declaration of
    their defaults, rules and docs (:func:`nas._checks.key`).  :class:`TrainingOptions` (what
    every trainer gets) and ``nas.config.TrainingSection`` (the ``[training]`` table, which adds
    the driver's keys) both extend it, so a new training key is a field here and its use in
    the trainer: the study file, the worker payload, ``--resume`` and the docs follow."""

    max_epochs: int = key(20, kind="int", lo=1, hi=MAX_EPOCHS, resume=True,
                          doc="epochs of a full trial (the predictors' horizon)")
    batch_size: int = key(64, kind="int", lo=1, hi=1_000_000, resume=True,
                          doc="mini-batch size of training")
    device: str = key("auto", kind="choice", choices=DEVICES,
                      doc="`auto`, `cpu`, `cuda` (`cuda` needs `resources.gpu > 0`)")
    time_limit_s: float | None = key(None, kind="num", lo=0.0, lo_open=True, optional=True,
                                     resume=True, shown="none",
                                     doc="per trial; a trial past it is FAILED")
    label_smoothing: float = key(0.0, kind="num", lo=0.0, hi=1.0, hi_open=True, resume=True,
                                 doc="`cross_entropy` tasks: the training loss's label "
                                     "smoothing (0 = off; validation and test losses are "
                                     "never smoothed)")

    def trainer_keys(self) -> dict[str, Any]:
        """These keys' values by name (what the worker payload carries to the trainer)."""
        return {f.name: getattr(self, f.name) for f in fields(TrainingKeys)}


def _check_fields(obj: Any, prefix: str) -> None:
    """Check (and convert) ``obj``'s declared fields through the one :class:`Checker`."""
    c = Checker()
    for f in fields(obj):
        r = rule_of(f)
        if r is not None:
            object.__setattr__(obj, f.name, c.rule(getattr(obj, f.name), prefix + f.name, r))


@dataclass(frozen=True)
class TrainingOptions(TrainingKeys):
    """How a worker trains one trial: the study file's ``[training]`` keys of
    :class:`TrainingKeys` (docs/runner.md) and the trial's own ``seed`` and ``threads``; the
    ``options`` every trainer gets (:class:`nas.interfaces.Trainer`), the default one and
    custom ones.

    ``threads`` sets ``torch.set_num_threads``; when None, the environment variable
    ``NAS_NUM_THREADS`` is used if set, else torch's default (Ray sets ``OMP_NUM_THREADS`` to
    the trial's CPU share, which torch follows).
    """

    seed: int = key(0, kind="int")
    threads: int | None = key(None, kind="int", lo=1, optional=True)

    def __post_init__(self) -> None:
        _check_fields(self, "training.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingOptions:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise Checker().unknown(unknown, known, prefix="training.")
        return cls(**dict(d))


@runtime_checkable
class Trainer(Protocol):
    """The training function of a study (``training.trainer``; :func:`nas.training.train` when
    the study names none), run on a worker once per trial.

    Called as ``trainer(space, config, task, options, report)``: it builds
    ``space.build(config, task.spec())``, trains for at most ``options.max_epochs`` epochs (the
    other :class:`TrainingOptions` fields: ``batch_size``, ``device``,
    ``time_limit_s``, ``seed`` = study seed + trial number, ``threads``) and after every epoch
    calls ``report(epoch, metrics)`` with ``epoch`` counted from 1 and ``metrics`` holding at
    least the task's objective (``spec.objective``; ``params`` too if a search objective names
    it).  When ``report`` returns True the trainer returns at once; an exception that
    ``report`` raises (e.g. the trial's time limit) must propagate.  Any exception marks the
    trial FAILED with its text.  The return value (the last metrics) is not used by the runner.
    The default trainer is also given ``data=`` (the task's splits, cached per worker); a custom
    one gets the five positional arguments only.  :func:`nas.registry.check_trainer` checks
    that a named trainer is a function taking them.
    """

    def __call__(self, space: SearchSpace, config: Mapping[str, Any], task: Task,
                 options: TrainingOptions,
                 report: Callable[[int, dict[str, float]], bool | None], /
                 ) -> Mapping[str, float] | None: ...


@dataclass(frozen=True)
class Curve:
    """One learning curve as predictors see it.

    ``values`` are the observed values at steps 1..t (t >= 1), normalised to [0, 1], higher better.
    ``features`` are optional numeric config/architecture features (same names across a batch);
    ``group`` is e.g. the task of an imported curve.
    """

    values: np.ndarray
    features: np.ndarray | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "values", v)
        if self.features is not None:
            object.__setattr__(
                self, "features", np.asarray(self.features, dtype=np.float64).reshape(-1)
            )

    def __len__(self) -> int:
        return int(self.values.shape[0])


@runtime_checkable
class Forecast(Protocol):
    """A batched predictive distribution of the value at ``horizon`` for N curves.

    Every method returns an array of shape (N,).  ``y`` may be a scalar or an (N,) array.
    """

    @property
    def mean(self) -> np.ndarray: ...

    def quantile(self, q: float) -> np.ndarray: ...

    def cdf(self, y: float | np.ndarray) -> np.ndarray: ...

    def logpdf(self, y: float | np.ndarray) -> np.ndarray: ...


@runtime_checkable
class LearningCurvePredictor(Protocol):
    """Forecasts final values of partial learning curves (entry-point group ``nas.predictors``).

    ``fit`` is called by the engine (off the scheduler hook's path, on the refit schedule) with
    complete curves; it may be a no-op.  ``predict`` is called on the driver, batched; a batch may
    mix prefix lengths; ``horizon`` is the absolute step forecast (the trial's max epochs).
    """

    def fit(self, curves: Sequence[Curve]) -> LearningCurvePredictor: ...

    def predict(self, curves: Sequence[Curve], horizon: int) -> Forecast: ...


#: Optional capabilities a predictor declares as class attributes (read with
#: :func:`predictor_caps`; nas never probes other attributes):
#:
#: - ``learns_from_curves = True``: ``fit``/``refit`` on the study's complete curves changes its
#:   forecasts, so the stopping session refits it on the :func:`nas.policies.should_refit`
#:   schedule (a pretrained PFN says False).
#: - ``reads_study = True``: ``predict(curves, horizon, context=StudyContext)`` accepts the
#:   study's other curves as context (``context=None``: the prefix alone).
PREDICTOR_CAPS = ("learns_from_curves", "reads_study")


def predictor_caps(predictor: object) -> dict[str, bool]:
    """The declared capabilities of ``predictor`` (see :data:`PREDICTOR_CAPS`); undeclared ones
    are False, except ``learns_from_curves``, which defaults to True (the protocol's ``fit``)."""
    return {"learns_from_curves": bool(getattr(predictor, "learns_from_curves", True)),
            "reads_study": bool(getattr(predictor, "reads_study", False))}


@dataclass(frozen=True)
class StudyContext:
    """What a study-reading predictor sees of the rest of its study (see
    :class:`LearningCurvePredictor`): the other trials' curves, normalised to [0, 1] and higher
    better, each as far as the study had recorded it when the question was asked (complete or
    partial), with its config features when the space gives them.

    ``complete[i]`` says whether ``curves[i]`` ran to its horizon (COMPLETE, or an audited
    stop that ran on).  ``version`` changes whenever the study does (a new point, a completion):
    a predictor may cache its encoding of the context under it.  The order of ``curves`` carries
    no meaning: a predictor must give the same forecast for any order.
    """

    curves: tuple[Curve, ...]
    complete: tuple[bool, ...]
    horizon: int
    version: int = 0

    def __len__(self) -> int:
        return len(self.curves)


@dataclass(frozen=True)
class TrialView:
    """The trial a policy decides about: its normalised values at steps 1..t so far."""

    number: int
    values: np.ndarray
    horizon: int
    features: np.ndarray | None = None
    group: str | None = None

    @property
    def step(self) -> int:
        return len(self.values)

    def curve(self) -> Curve:
        return Curve(self.values, self.features, self.group)


@runtime_checkable
class StudyView(Protocol):
    """What a policy may know of the rest of the study (normalised values, higher better).

    Implemented by the runner (from its mirror of the database) and by the replay benchmark.
    """

    @property
    def best_value(self) -> float | None:
        """Best final value among COMPLETE trials; None before the first completes."""
        ...

    @property
    def n_complete(self) -> int: ...

    def values_at(self, step: int, *, complete_only: bool = False,
                  exclude: int | None = None) -> np.ndarray:
        """Values recorded at ``step`` (1-based) by the trials that reached it, except trial
        ``exclude`` (the one being decided about)."""
        ...

    @property
    def predictor(self) -> LearningCurvePredictor | None:
        """The latest fitted predictor of the study, if the study uses one."""
        ...


CONTINUE = Action.CONTINUE
STOP = Action.STOP
#: stored for a trial the policy wanted to stop and the stop audit let run on to its horizon
AUDIT = Action.AUDIT


@dataclass(frozen=True)
class ForecastSummary:
    """A predictor's forecast of one trial's value at step ``horizon``, as nas keeps it: what a
    :class:`Decision` carries, what the engine records in ``forecasts`` and what
    ``Storage.forecasts`` returns (raw objective units there; normalised in a Decision)."""

    predictor: str
    horizon: int
    mean: float | None = None
    q05: float | None = None
    q50: float | None = None
    q95: float | None = None
    #: P(the value at the horizon beats the threshold of the decision)
    p_improve: float | None = None


@dataclass(frozen=True)
class Decision:
    """A policy's verdict after one epoch, with the forecast summary that led to it (if any)."""

    action: Action
    reason: str = ""
    forecast: ForecastSummary | None = None
    #: the normalised value the trial's final had to beat (y_best + epsilon), when there was one
    threshold: float | None = None

    @property
    def stop(self) -> bool:
        return self.action == STOP


@runtime_checkable
class StoppingPolicy(Protocol):
    """Decides CONTINUE or STOP after each epoch (entry-point group ``nas.policies``).

    Called on the driver from the scheduler hook (and by the replay benchmark) after every
    reported epoch; it must be fast (the hook's p99 budget is 20 ms) and keep no hidden state.
    """

    def decide(self, trial: TrialView, study: StudyView) -> Decision: ...
