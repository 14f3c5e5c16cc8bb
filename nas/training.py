"""The worker's training loop: build a configuration, train it epoch by epoch, report each epoch.

Who calls what, when:

* :func:`train` runs inside a Ray worker (the runner's trainable) for one trial.  It builds
  ``space.build(config, task.spec())``, trains for at most ``options.max_epochs`` epochs and,
  after every epoch, evaluates on the validation split and calls
  ``report(epoch, {objective: value, "train_loss": ..., "val_loss": ..., "params": ...})``.
  If ``report`` returns ``True`` the loop stops at once (the stopping policy said STOP).
  A trial that is at fault -- a NaN/inf loss or objective, or its time limit -- raises
  :class:`TrialFailed`; anything else that escapes is a bug in a plug-in or in nas.
* :func:`train_final` is what ``nas evaluate`` calls: retrain a chosen configuration on
  train + validation and score it once on the test split (:func:`evaluate_test`).
  :func:`evaluate` scores a model on any split (also used by ``nas.testing``).

Training keys read from ``config`` (written by the space's ``sample``; defaults when absent):

==================  ===========================================  =================
key                 meaning                                      default
==================  ===========================================  =================
``optimizer``       ``adam`` | ``adamw`` | ``sgd`` (momentum 0.9)   ``adam``
                    | ``rmsprop``
``lr``              learning rate (> 0)                          ``1e-3``
``weight_decay``    L2 / decoupled weight decay (>= 0)           ``0``
``grad_clip``       max global gradient norm; 0/None = off       ``None``
``curriculum``      ``none`` | ``easy_to_hard`` | ``cyclical``   ``none``
``prune_sparsity``  target fraction of zero weights, in [0, 1)   ``0``
``dropout``         read by the *model* (the space applies it)   --
==================  ===========================================  =================

Curricula.  The fraction of the training set used in an epoch follows a schedule: with
``easy_to_hard`` it grows linearly from 25 % to 100 % over the first half of the epochs,
taking examples in order of the training dataset's ``difficulty`` attribute when it has one
(the built-in tasks expose e.g. the delay of delayed-match or the number of DFA states) and
in a fixed random order otherwise; with ``cyclical`` it follows a triangle wave between 25 %
and 100 % with a period of 4 epochs (random order), so it grows and shrinks in cycles.

Pruning.  Global magnitude pruning of the model's ``prunable_parameters()`` when it has that
method, else of every parameter with two or more dimensions, ramped
with the cubic schedule of Zhu & Gupta (2017), s_e = s_f (1 - (1 - e/E_r)^3), over the first
half of the epochs (E_r); masks are recomputed after each epoch and re-applied after every
optimiser step, so pruned weights stay zero.

Model contract.  ``model(x)`` with ``x`` of shape (B, T, input_size) returns (B, output_size)
for ``output_mode == "last"`` (a (B, T, output_size) output is accepted too and its last step
used) and (B, T, output_size) for ``"sequence"``.  Sequence targets equal to -100 are ignored
(loss and accuracy).  If the model has an ``aux_loss`` attribute holding a tensor after the
forward pass (e.g. the ponder cost of adaptive computation time), it is added to the loss.

Bayes limit.  A dataset with a ``bayes_accuracy`` attribute (the built-in ``hmm`` task) adds
the extra metric ``val_bayes_accuracy`` after every epoch (``test_bayes_accuracy`` on the test
split): the accuracy of the Bayes-optimal predictor on that split, for comparison.

Objective.  ``cross_entropy`` tasks score accuracy; ``mse`` tasks score the skill
``max(0, 1 - MSE / reference_mse)`` where ``reference_mse`` is an attribute of the evaluated
dataset (the built-in ``lorenz96`` task uses the persistence forecast), else ``-MSE``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import ConfigError, NasError

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

    from nas.interfaces import SearchSpace, Task, TaskSpec

__all__ = [
    "FinalResult",
    "HyperParams",
    "TrainingOptions",
    "TrialFailed",
    "curriculum_fraction",
    "evaluate",
    "evaluate_test",
    "prune_schedule",
    "resolve_device",
    "train",
    "train_final",
]

logger = logging.getLogger(__name__)

Report = Callable[[int, dict[str, float]], "bool | None"]

_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
_CURRICULA = ("none", "easy_to_hard", "cyclical")
_DEVICES = ("auto", "cpu", "cuda")
IGNORE_INDEX = -100


class TrialFailed(NasError):
    """The trial itself is at fault: a NaN/inf loss or objective, or its time limit ran out.

    Raised by :func:`train`; the runner records the trial as FAILED with this message.
    """


@dataclass(frozen=True)
class TrainingOptions:
    """How a worker trains one trial (the study file's ``[training]`` table).

    ``threads`` sets ``torch.set_num_threads``; when None, the environment variable
    ``NAS_NUM_THREADS`` is used if set, else torch's default (Ray sets ``OMP_NUM_THREADS`` to
    the trial's CPU share, which torch follows).
    """

    max_epochs: int = 20
    batch_size: int = 64
    device: str = "auto"
    time_limit_s: float | None = None
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_epochs, bool) or not isinstance(self.max_epochs, int) \
                or self.max_epochs < 1:
            raise ConfigError(f"training.max_epochs is {self.max_epochs!r}, but must be an "
                              "integer >= 1")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ConfigError(f"training.batch_size is {self.batch_size!r}, but must be an "
                              "integer >= 1")
        if self.device not in _DEVICES:
            raise ConfigError(f"training.device is {self.device!r}, but must be one of "
                              f"{', '.join(_DEVICES)}")
        if self.time_limit_s is not None and not (
            isinstance(self.time_limit_s, (int, float)) and self.time_limit_s > 0
        ):
            raise ConfigError(f"training.time_limit_s is {self.time_limit_s!r}, but must be a "
                              "number > 0 (or absent)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"training.seed is {self.seed!r}, but must be an integer")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ConfigError(f"training.threads is {self.threads!r}, but must be an integer "
                              ">= 1 (or absent)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"training: unknown key(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}")
        return cls(**dict(d))


@dataclass(frozen=True)
class HyperParams:
    """The training keys of a sampled configuration (see the module docstring), validated."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None
    curriculum: str = "none"
    prune_sparsity: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError(f"config optimizer is {self.optimizer!r}, but must be one of "
                              f"{', '.join(_OPTIMIZERS)}")
        if not _is_number(self.lr) or not self.lr > 0:
            raise ConfigError(f"config lr is {self.lr!r}, but must be a number > 0")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            raise ConfigError(f"config weight_decay is {self.weight_decay!r}, but must be a "
                              "number >= 0")
        if self.grad_clip is not None and (not _is_number(self.grad_clip)
                                           or not self.grad_clip >= 0):
            raise ConfigError(f"config grad_clip is {self.grad_clip!r}, but must be a number "
                              ">= 0 (0 or null = off)")
        if self.curriculum not in _CURRICULA:
            raise ConfigError(f"config curriculum is {self.curriculum!r}, but must be one of "
                              f"{', '.join(_CURRICULA)}")
        if not _is_number(self.prune_sparsity) or not 0 <= self.prune_sparsity < 1:
            raise ConfigError(f"config prune_sparsity is {self.prune_sparsity!r}, but must be "
                              "in [0, 1)")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HyperParams:
        """Pick the training keys out of a sampled configuration (other keys are ignored)."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in config and config[f.name] is not None:
                kw[f.name] = config[f.name]
        if "grad_clip" in kw and kw["grad_clip"] == 0:
            kw["grad_clip"] = None
        return cls(**kw)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class FinalResult:
    """What :func:`train_final` returns: the trained model and its test metrics."""

    model: torch.nn.Module
    metrics: dict[str, float]


# ---------------------------------------------------------------------------------------------
# schedules (pure functions, unit-tested)


def curriculum_fraction(kind: str, epoch: int, max_epochs: int, *, start: float = 0.25,
                        period: int = 4) -> float:
    """Fraction of the training set used in ``epoch`` (1-based) under curriculum ``kind``."""
    if kind == "none":
        return 1.0
    if kind == "easy_to_hard":
        ramp = max(1, max_epochs // 2)
        return float(min(1.0, start + (1.0 - start) * (epoch - 1) / ramp))
    if kind == "cyclical":
        phase = ((epoch - 1) % period) / period  # 0, 1/4, 1/2, 3/4
        tri = 1.0 - abs(2.0 * phase - 1.0)  # 0 .. 1 .. 0
        # the cycle starts small, peaks at full data in the middle of each period
        return float(start + (1.0 - start) * tri)
    raise ConfigError(f"curriculum {kind!r} is unknown; use one of {', '.join(_CURRICULA)}")


def prune_schedule(target: float, epoch: int, max_epochs: int) -> float:
    """Sparsity to reach after ``epoch`` (1-based): cubic ramp (Zhu & Gupta 2017)."""
    if target <= 0:
        return 0.0
    ramp = max(1, max_epochs // 2)
    t = min(1.0, epoch / ramp)
    return float(target * (1.0 - (1.0 - t) ** 3))


# ---------------------------------------------------------------------------------------------
# helpers


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu.  ``cuda`` without a GPU is a ConfigError."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device is 'cuda', but no CUDA device is available")
    if device not in _DEVICES:
        raise ConfigError(f"training.device is {device!r}, but must be one of "
                          f"{', '.join(_DEVICES)}")
    return torch.device(device)


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _set_threads(options: TrainingOptions) -> None:
    import torch

    n = options.threads
    if n is None:
        env = os.environ.get("NAS_NUM_THREADS")
        if env:
            try:
                n = int(env)
            except ValueError:
                raise ConfigError(f"NAS_NUM_THREADS is {env!r}, but must be an integer") \
                    from None
    if n is not None and n >= 1 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _tensors(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of a dataset: TensorDataset-like objects directly, others item by item."""
    import torch

    t = getattr(ds, "tensors", None)
    if t is not None and len(t) >= 2:
        return t[0], t[1]
    n = len(ds)  # type: ignore[arg-type]
    if n == 0:
        raise ConfigError("a dataset split is empty")
    items = [ds[i] for i in range(n)]
    xs = torch.stack([torch.as_tensor(it[0]) for it in items])
    ys = torch.stack([torch.as_tensor(it[1]) for it in items])
    return xs, ys


def _difficulty(ds: Dataset) -> np.ndarray | None:
    d = getattr(ds, "difficulty", None)
    if d is None:
        return None
    return np.asarray(d.cpu() if hasattr(d, "cpu") else d, dtype=np.float64).reshape(-1)


def _head(out: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """The model's output in the shape the loss expects (last step for ``last`` tasks)."""
    if spec.output_mode == "last" and out.dim() == 3:
        return out[:, -1]
    return out


def compute_loss(out: torch.Tensor, y: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Mean loss of a batch; ``out`` as the model returns it (see the module docstring)."""
    import torch.nn.functional as F

    out = _head(out, spec)
    if spec.loss == "cross_entropy":
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1).long(),
                               ignore_index=IGNORE_INDEX)
    return F.mse_loss(out, y.to(out.dtype))


def _make_optimizer(params: Sequence[torch.nn.Parameter], hp: HyperParams
                    ) -> torch.optim.Optimizer:
    import torch

    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay)
    return torch.optim.RMSprop(params, lr=hp.lr, weight_decay=hp.weight_decay)


class _Pruner:
    """Global magnitude pruning with masks re-applied after every optimiser step."""

    def __init__(self, model: torch.nn.Module) -> None:
        chooser = getattr(model, "prunable_parameters", None)
        candidates = list(chooser()) if callable(chooser) else list(model.parameters())
        self.params = [p for p in candidates if p.requires_grad and p.dim() >= 2]
        self.masks: list[torch.Tensor] | None = None

    def update(self, sparsity: float) -> None:
        import torch

        if sparsity <= 0 or not self.params:
            return
        with torch.no_grad():
            flat = torch.cat([p.detach().abs().reshape(-1) for p in self.params])
            k = int(sparsity * flat.numel())
            if k < 1:
                return
            threshold = torch.kthvalue(flat.float().cpu(), k).values.item()
            self.masks = [(p.detach().abs() > threshold).to(p.dtype) for p in self.params]
        self.apply()

    def apply(self) -> None:
        import torch

        if self.masks is None:
            return
        with torch.no_grad():
            for p, m in zip(self.params, self.masks):
                p.mul_(m)

    def sparsity(self) -> float:
        n = sum(p.numel() for p in self.params)
        if n == 0:
            return 0.0
        zeros = sum(int((p.detach() == 0).sum().item()) for p in self.params)
        return zeros / n


def _aux_loss(model: torch.nn.Module) -> torch.Tensor | None:
    import torch

    aux = getattr(model, "aux_loss", None)
    if isinstance(aux, torch.Tensor):
        return aux
    return None


@dataclass
class _Clock:
    start: float
    limit: float | None

    def check(self, where: str) -> None:
        if self.limit is not None and time.monotonic() - self.start > self.limit:
            raise TrialFailed(f"time limit {self.limit:g} s exceeded ({where})")


def _objective_of(out: torch.Tensor, y: torch.Tensor, spec: TaskSpec,
                  dataset: Dataset | None) -> float:
    """The task's objective from the full-split output (see the module docstring)."""
    import torch

    out = _head(out, spec)
    if spec.loss == "cross_entropy":
        pred = out.argmax(dim=-1)
        y = y.long()
        valid = y != IGNORE_INDEX
        n = int(valid.sum().item())
        if n == 0:
            return float("nan")
        return float(((pred == y) & valid).sum().item() / n)
    mse = float(torch.mean((out.float() - y.float()) ** 2).item())
    ref = getattr(dataset, "reference_mse", None) if dataset is not None else None
    if ref is not None and float(ref) > 0:
        if not math.isfinite(mse):
            return float("nan")
        return float(max(0.0, 1.0 - mse / float(ref)))
    return -mse


def evaluate(model: torch.nn.Module, dataset: Dataset, spec: TaskSpec, *,
             batch_size: int = 512, device: torch.device | str | None = None
             ) -> dict[str, float]:
    """Score ``model`` on ``dataset``: ``{"loss": mean loss, "objective": value}``.

    Called by :func:`train` on the validation split after every epoch, by :func:`train_final`
    on the test split, and by ``nas.testing``.  Runs in eval mode without gradients and puts
    the model back into training mode afterwards if it was.
    """
    import torch

    x, y = _tensors(dataset)
    dev = torch.device(device) if device is not None else next(
        (p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    outs = []
    loss_sum = 0.0
    n = x.shape[0]
    try:
        with torch.no_grad():
            for i in range(0, n, batch_size):
                xb = x[i:i + batch_size].to(dev)
                yb = y[i:i + batch_size].to(dev)
                out = model(xb)
                loss_sum += float(compute_loss(out, yb, spec).item()) * xb.shape[0]
                outs.append(_head(out, spec).cpu())
    finally:
        model.train(was_training)
    out_all = torch.cat(outs)
    return {"loss": loss_sum / max(1, n), "objective": _objective_of(out_all, y, spec, dataset)}


def _check_finite(name: str, value: float, epoch: int) -> None:
    if not math.isfinite(value):
        raise TrialFailed(f"{name} is {value} at epoch {epoch} (diverged)")


def _fit(
    model: torch.nn.Module,
    spec: TaskSpec,
    hp: HyperParams,
    options: TrainingOptions,
    device: torch.device,
    train_ds: Dataset,
    val_ds: Dataset | None,
    on_epoch: Callable[[int, dict[str, float]], bool | None] | None,
    clock: _Clock,
) -> dict[str, float]:
    """The loop shared by :func:`train` and :func:`train_final`."""
    import torch

    x_train, y_train = _tensors(train_ds)
    x_train, y_train = x_train.to(device), y_train.to(device)
    n = int(x_train.shape[0])
    if n == 0:
        raise ConfigError("the training split is empty")
    gen = torch.Generator().manual_seed(options.seed)
    # the order used by curricula: by difficulty (ties random) or a fixed random order
    rand_order = torch.randperm(n, generator=gen).numpy()
    diff = _difficulty(train_ds) if hp.curriculum == "easy_to_hard" else None
    if diff is not None and diff.shape[0] == n:
        order = rand_order[np.argsort(diff[rand_order], kind="stable")]
    else:
        order = rand_order
    order_t = torch.as_tensor(order, device=device)

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    n_params = float(sum(p.numel() for p in model.parameters()))
    opt = _make_optimizer(params, hp)
    pruner = _Pruner(model) if hp.prune_sparsity > 0 else None
    metrics: dict[str, float] = {}
    model.train()
    for epoch in range(1, options.max_epochs + 1):
        frac = curriculum_fraction(hp.curriculum, epoch, options.max_epochs)
        m = max(1, round(frac * n))
        subset = order_t[:m]
        perm = subset[torch.randperm(m, generator=gen).to(device)]
        loss_sum = torch.zeros((), device=device)
        for i in range(0, m, options.batch_size):
            idx = perm[i:i + options.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = compute_loss(out, yb, spec)
            aux = _aux_loss(model)
            total = loss + aux if aux is not None else loss
            total.backward()
            if hp.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, hp.grad_clip)
            opt.step()
            if pruner is not None:
                pruner.apply()
            loss_sum += loss.detach() * xb.shape[0]
            clock.check(f"epoch {epoch}, step {i // options.batch_size + 1}")
        train_loss = float(loss_sum.item()) / m
        _check_finite("the training loss", train_loss, epoch)
        if pruner is not None:
            pruner.update(prune_schedule(hp.prune_sparsity, epoch, options.max_epochs))
        metrics = {"train_loss": train_loss, "params": n_params, "epoch": float(epoch),
                   "data_fraction": float(m / n)}
        if pruner is not None:
            metrics["sparsity"] = pruner.sparsity()
        if val_ds is not None:
            ev = evaluate(model, val_ds, spec, batch_size=max(256, options.batch_size),
                          device=device)
            _check_finite("the validation loss", ev["loss"], epoch)
            _check_finite(f"the objective {spec.objective}", ev["objective"], epoch)
            metrics[spec.objective] = ev["objective"]
            metrics["val_loss"] = ev["loss"]
            bayes = getattr(val_ds, "bayes_accuracy", None)
            if bayes is not None:  # the task's Bayes limit on this split (e.g. ``hmm``)
                metrics["val_bayes_accuracy"] = float(bayes)
        metrics["time_s"] = time.monotonic() - clock.start
        stop = on_epoch(epoch, dict(metrics)) if on_epoch is not None else None
        if stop is True:
            logger.debug("stopped by report() after epoch %d", epoch)
            break
        clock.check(f"after epoch {epoch}")
    return metrics


def _prepare(
    config: Mapping[str, Any], task: Task, options: TrainingOptions,
    data: tuple[Dataset, Dataset, Dataset] | None,
) -> tuple[_Clock, HyperParams, torch.device, TaskSpec, tuple[Dataset, Dataset, Dataset]]:
    """What :func:`train` and :func:`train_final` share: clock, checked training keys, device,
    threads and seeds, the task's spec and its splits (generated from ``options.seed``)."""
    clock = _Clock(time.monotonic(), options.time_limit_s)
    hp = HyperParams.from_config(config)
    device = resolve_device(options.device)
    _set_threads(options)
    _seed_everything(options.seed)
    spec = task.spec()
    splits = data if data is not None else task.data(options.seed)
    return clock, hp, device, spec, splits


def train(
    space: SearchSpace,
    config: Mapping[str, Any],
    task: Task,
    options: TrainingOptions,
    report: Callable[[int, dict[str, float]], bool | None],
    *,
    data: tuple[Dataset, Dataset, Dataset] | None = None,
) -> dict[str, float]:
    """Train one trial and report after every epoch; return the last epoch's metrics.

    Called by the runner inside a Ray worker (and by tests directly).  ``data`` may be passed
    to reuse the splits of ``task.data(options.seed)`` across trials.  The metrics reported
    (and returned) are ``{spec.objective, "val_loss", "train_loss", "params", "epoch",
    "data_fraction", "time_s"}`` plus ``"sparsity"`` when pruning.  Raises :class:`TrialFailed`
    when the trial diverges or exceeds ``options.time_limit_s``, :class:`ConfigError` for
    invalid training keys in ``config``.
    """
    clock, hp, device, spec, (train_ds, val_ds, _) = _prepare(config, task, options, data)
    _seed_everything(options.seed)  # the model's init does not depend on the data generator
    with _out_of_memory_fails():
        model = space.build(config, spec).to(device)
        return _fit(model, spec, hp, options, device, train_ds, val_ds, report, clock)


def train_final(
    space: SearchSpace,
    config: Mapping[str, Any],
    task: Task,
    options: TrainingOptions,
    *,
    data: tuple[Dataset, Dataset, Dataset] | None = None,
    report: Callable[[int, dict[str, float]], bool | None] | None = None,
) -> FinalResult:
    """Retrain ``config`` on train + validation for ``options.max_epochs`` and score on test.

    Called by ``nas evaluate`` for the final report of a study's best configurations.  The
    returned metrics are ``test_<name>`` (the objective with its ``val_`` prefix replaced),
    ``test_loss``, ``train_loss``, ``params`` and ``epochs``.  ``report`` (optional) sees
    ``(epoch, {"train_loss", ...})`` after every epoch, e.g. for a progress bar; returning
    True stops early.
    """
    from torch.utils.data import TensorDataset

    clock, hp, device, spec, (train_ds, val_ds, test_ds) = _prepare(config, task, options, data)
    xt, yt = _tensors(train_ds)
    xv, yv = _tensors(val_ds)
    import torch

    merged = TensorDataset(torch.cat([xt, xv]), torch.cat([yt, yv]))
    dt, dv = _difficulty(train_ds), _difficulty(val_ds)
    if dt is not None and dv is not None:
        setattr(merged, "difficulty", np.concatenate([dt, dv]))  # noqa: B010
    _seed_everything(options.seed)
    with _out_of_memory_fails():
        model = space.build(config, spec).to(device)
        metrics = _fit(model, spec, hp, options, device, merged, None, report, clock)
        test = evaluate_test(model, spec, test_ds, batch_size=max(256, options.batch_size))
    out = {**test, "train_loss": metrics["train_loss"], "params": metrics["params"],
           "epochs": metrics["epoch"]}
    return FinalResult(model=model, metrics=out)


def evaluate_test(model: torch.nn.Module, spec: TaskSpec, test: Dataset, *,
                  batch_size: int = 512) -> dict[str, float]:
    """Score ``model`` on the test split: ``{"test_<name>": value, "test_loss": loss}``.

    ``<name>`` is the objective without its ``val_`` prefix (``val_accuracy`` ->
    ``test_accuracy``).  Called by :func:`train_final` and by ``nas evaluate``.
    """
    ev = evaluate(model, test, spec, batch_size=batch_size)
    name = spec.objective.removeprefix("val_")
    out = {f"test_{name}": ev["objective"], "test_loss": ev["loss"]}
    bayes = getattr(test, "bayes_accuracy", None)
    if bayes is not None:
        out["test_bayes_accuracy"] = float(bayes)
    return out


@contextmanager
def _out_of_memory_fails() -> Iterator[None]:
    """A model too large for the device is the trial's fault: OOM becomes TrialFailed."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
        raise TrialFailed(f"out of memory: {first}") from exc
