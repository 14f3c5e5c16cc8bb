"""The training loop of one trial: :func:`train` (a trial on a worker) and :func:`train_final`
(``nas evaluate``'s retrain on train + validation, scored once on test).

The contract (the keys read from a config, curricula, pruning, the model's shapes, the metrics
reported) is described in :mod:`nas.training`.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import ConfigError, NasError
from nas.training._metrics import _difficulty, _tensors, compute_loss, evaluate, evaluate_test
from nas.training._options import DEVICES, HyperParams, TrainingOptions
from nas.training._pruning import _Pruner
from nas.training._schedules import curriculum_fraction, prune_schedule

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

    from nas.interfaces import SearchSpace, Task, TaskSpec

__all__ = ["FinalResult", "Report", "TrialFailed", "resolve_device", "train", "train_final"]

logger = logging.getLogger(__name__)

#: what a trainer calls after every epoch: ``report(epoch, metrics)``; True means stop now
Report = Callable[[int, dict[str, float]], "bool | None"]


class TrialFailed(NasError):
    """The trial itself is at fault: a NaN/inf loss or objective, or its time limit ran out.

    Raised by :func:`train`; the runner records the trial as FAILED with this message.
    """


@dataclass(frozen=True)
class FinalResult:
    """What :func:`train_final` returns: the trained model and its test metrics."""

    model: torch.nn.Module
    metrics: dict[str, float]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu.  ``cuda`` without a GPU is a ConfigError."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device is 'cuda', but no CUDA device is available")
    if device not in DEVICES:
        raise ConfigError(f"training.device = {device!r}: must be one of "
                          f"{', '.join(DEVICES)}")
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
                raise ConfigError(f"NAS_NUM_THREADS = {env!r}: must be an integer") \
                    from None
    if n is not None and n >= 1 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


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
            loss = compute_loss(out, yb, spec, label_smoothing=options.label_smoothing)
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


@contextmanager
def _out_of_memory_fails() -> Iterator[None]:
    """A model too large for the device is the trial's fault: OOM becomes TrialFailed."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
        raise TrialFailed(f"out of memory: {first}") from exc
