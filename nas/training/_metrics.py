"""Scoring a model on a split: the loss, the task's objective, and :func:`evaluate` /
:func:`evaluate_test` built on them.

Objective: ``cross_entropy`` tasks score accuracy; ``mse`` tasks score the skill
``max(0, 1 - MSE / reference_mse)`` where ``reference_mse`` is an attribute of the evaluated
dataset, else ``-MSE``.  Sequence targets equal to :data:`IGNORE_INDEX` are ignored.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from nas.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

    from nas.interfaces import TaskSpec

__all__ = ["IGNORE_INDEX", "compute_loss", "evaluate", "evaluate_test"]

#: sequence targets with this value count neither in the loss nor in the accuracy
IGNORE_INDEX = -100


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
    """The dataset's per-example ``difficulty`` attribute (for curricula), or None."""
    d = getattr(ds, "difficulty", None)
    if d is None:
        return None
    return np.asarray(d.cpu() if hasattr(d, "cpu") else d, dtype=np.float64).reshape(-1)


def _head(out: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """The model's output in the shape the loss expects (last step for ``last`` tasks)."""
    if spec.output_mode == "last" and out.dim() == 3:
        return out[:, -1]
    return out


def compute_loss(out: torch.Tensor, y: torch.Tensor, spec: TaskSpec,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean loss of a batch; ``out`` as the model returns it (see :mod:`nas.training`);
    ``label_smoothing`` applies to ``cross_entropy`` tasks (the training loss only)."""
    import torch.nn.functional as F

    out = _head(out, spec)
    if spec.loss == "cross_entropy":
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1).long(),
                               ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing)
    return F.mse_loss(out, y.to(out.dtype))


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

    Called by :func:`~nas.training.train` on the validation split after every epoch, by
    :func:`~nas.training.train_final` on the test split, and by ``nas.testing``.  Runs in eval
    mode without gradients and puts the model back into training mode afterwards if it was.
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


def evaluate_test(model: torch.nn.Module, spec: TaskSpec, test: Dataset, *,
                  batch_size: int = 512) -> dict[str, float]:
    """Score ``model`` on the test split: ``{"test_<name>": value, "test_loss": loss}``.

    ``<name>`` is the objective without its ``val_`` prefix (``val_accuracy`` ->
    ``test_accuracy``).  Called by :func:`~nas.training.train_final` and by ``nas evaluate``.
    """
    ev = evaluate(model, test, spec, batch_size=batch_size)
    name = spec.objective.removeprefix("val_")
    out = {f"test_{name}": ev["objective"], "test_loss": ev["loss"]}
    bayes = getattr(test, "bayes_accuracy", None)
    if bayes is not None:
        out["test_bayes_accuracy"] = float(bayes)
    return out
