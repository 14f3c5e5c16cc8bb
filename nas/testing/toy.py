"""The toy plug-ins of :mod:`nas.testing`: a synthetic space, task and trainer.

Used by the runner's tests, by ``nas bench overhead`` (trivial trials), by ``nas spaces check``'s
tests (with ``cells`` given, :class:`ToySpace` searches a tiny RNN) and by users who want to
see the engine work in seconds.  Study-file usage::

    [search]
    space = "nas.testing.toy:ToySpace"
    space_options = { modes = ["ok", "raise", "nan"], epoch_s = 0.0 }
    [task]
    name = "nas.testing.toy:ToyTask"
    [training]
    trainer = "nas.testing.toy:toy_train"

The curve of a configuration is ``ceiling * (1 - exp(-rate * epoch))`` (plus a little seeded
noise): deterministic, saturating, so stopping policies have something to decide about.
``mode`` makes a trial raise at epoch 2 (``raise``), report NaN at epoch 2 (``nan``), sleep
forever after epoch 1 (``hang``, for time limits and interruption tests) or kill its worker
process at epoch 2 the first time it runs (``die``: a worker death that a retry survives; the
marker file lives in the space option ``marker_dir``).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas._checks import Checker
from nas.interfaces import Direction, TaskSpec

__all__ = ["MODES", "ToySpace", "ToyTask", "toy_train"]

MODES = ("ok", "raise", "nan", "hang", "die")


class _ToyModel:  # namespace for the lazily created torch module class
    cls: Any = None


def _toy_model_class() -> Any:
    if _ToyModel.cls is not None:
        return _ToyModel.cls
    from torch import nn

    class ToyModel(nn.Module):
        """Stacked torch RNN layers, dropout between them, a linear head."""

        def __init__(self, layers: list[Mapping[str, Any]], hidden: int, dropout: float,
                     spec: TaskSpec) -> None:
            super().__init__()
            self.mode = spec.output_mode
            self.rnns = nn.ModuleList()
            d = spec.input_size
            for layer in layers:
                cell = layer["cell"]
                if cell == "lstm":
                    self.rnns.append(nn.LSTM(d, hidden, batch_first=True))
                elif cell == "gru":
                    self.rnns.append(nn.GRU(d, hidden, batch_first=True))
                else:
                    self.rnns.append(nn.RNN(d, hidden, batch_first=True,
                                            nonlinearity=layer.get("activation") or "tanh"))
                d = hidden
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(d, spec.output_size)

        def forward(self, x: Any) -> Any:
            h = x
            for rnn in self.rnns:
                h = self.drop(rnn(h)[0])
            out = self.head(h)
            return out[:, -1] if self.mode == "last" else out

    _ToyModel.cls = ToyModel
    return ToyModel


class ToySpace:
    """The toy space of :mod:`nas.testing`: a synthetic learning curve and a tiny torch RNN.

    Every config holds the curve that :func:`toy_train` reports (:func:`toy_curve`):
    ``ceiling`` in [0.2, 1], ``rate`` in [0.05, 2] (log scale) and ``mode`` (one of ``modes``;
    list one several times to weight it), plus ``epoch_s`` (seconds slept per epoch) and
    ``marker_dir``.  :meth:`build` makes a small torch RNN, so the same configs also train for
    real (``nas evaluate``) and pass ``nas spaces check``.

    The model is fixed (one GRU layer, width ``1 + int(8 * ceiling)``) unless ``cells`` is
    given; then it is searched too, with the config conventions of ``seq_cells``: ``layers``
    (1..``max_layers`` of ``{"cell", "hypernet", "activation"}``, cells among ``gru``, ``lstm``,
    ``rnn``; ``rnn`` layers sample activation ``tanh``/``relu``), ``hidden`` (one of
    ``hidden``), ``optimizer``, ``lr`` (log scale in ``lr``) and ``dropout``.
    """

    name = "toy"
    CELLS = ("gru", "lstm", "rnn")

    def __init__(self, modes: Sequence[str] = ("ok",), epoch_s: float = 0.0,
                 marker_dir: str | None = None, cells: Sequence[str] | None = None,
                 max_layers: int = 2, hidden: Sequence[int] = (16, 32),
                 lr: Sequence[float] = (1e-3, 3e-2)) -> None:
        c = Checker("space toy")
        if (isinstance(modes, (str, bytes)) or not isinstance(modes, Sequence) or not modes
                or any(m not in MODES for m in modes)):
            raise c.fail("modes", modes, f"must be a non-empty list of {', '.join(MODES)}")
        self.modes = tuple(modes)
        self.epoch_s = c.num(epoch_s, "epoch_s", lo=0.0)
        self.marker_dir = None if marker_dir is None else c.str_(marker_dir, "marker_dir")
        self.cells = None if cells is None else list(c.choices(cells, "cells", self.CELLS))
        self.max_layers = c.int_(max_layers, "max_layers", lo=1)
        self.hidden = list(c.choices(hidden, "hidden", kind="int", lo=1))
        self.lr = c.interval(lr, "lr", 0.0, 10.0, positive=True)

    def sample(self, trial: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "ceiling": trial.suggest_float("ceiling", 0.2, 1.0),
            "rate": trial.suggest_float("rate", 0.05, 2.0, log=True),
            "mode": trial.suggest_categorical("mode", list(self.modes)),
            "epoch_s": self.epoch_s,
        }
        if self.marker_dir is not None:
            cfg["marker_dir"] = self.marker_dir
        if self.cells is None:
            return cfg
        layers = []
        for i in range(trial.suggest_int("n_layers", 1, self.max_layers)):
            cell = trial.suggest_categorical(f"cell_{i}", self.cells)
            act = (trial.suggest_categorical(f"activation_{i}", ["tanh", "relu"])
                   if cell == "rnn" else None)
            layers.append({"cell": cell, "hypernet": "none", "activation": act})
        cfg.update({
            "layers": layers,
            "hidden": trial.suggest_categorical("hidden", self.hidden),
            "optimizer": trial.suggest_categorical("optimizer", ["adam", "adamw"]),
            "lr": trial.suggest_float("lr", self.lr[0], self.lr[1], log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.2),
        })
        return cfg

    def _layers(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        layers = config.get("layers") or [{"cell": "gru"}]
        for i, layer in enumerate(layers):
            Checker("space toy config").choice(layer.get("cell"), f"layers[{i}].cell", self.CELLS)
        return list(layers)

    def build(self, config: Mapping[str, Any], task: TaskSpec) -> Any:
        width = config.get("hidden", 1 + int(8 * float(config.get("ceiling", 1.0))))
        return _toy_model_class()(self._layers(config), int(width),
                                  float(config.get("dropout", 0.0)), task)

    def features(self, config: Mapping[str, Any]) -> dict[str, float]:
        feats = {"ceiling": float(config["ceiling"]), "rate": math.log(float(config["rate"]))}
        if self.cells is not None:
            layers = self._layers(config)
            feats.update({"depth": float(len(layers)), "width": float(config.get("hidden", 32)),
                          "log10_lr": float(np.log10(config.get("lr", 1e-3)))})
            for cell in self.CELLS:
                feats[f"cell_{cell}"] = float(sum(layer.get("cell") == cell for layer in layers))
        return feats


class ToyTask:
    """A task whose data is a few random tensors (only ``nas evaluate`` on it uses them).
    ``objective = "val_loss"`` makes the study minimise the toy's loss (1 - its accuracy)."""

    name = "toy"

    def __init__(self, n: int = 64, objective: str = "val_accuracy") -> None:
        self.n = int(n)
        self.objective = Checker("task toy").choice(objective, "objective",
                                                    ("val_accuracy", "val_loss"))

    def spec(self) -> TaskSpec:
        if self.objective == "val_loss":
            return TaskSpec(name="toy", input_size=2, output_size=2, seq_len=4,
                            objective="val_loss", direction=Direction.MINIMIZE)
        return TaskSpec(name="toy", input_size=2, output_size=2, seq_len=4,
                        objective="val_accuracy", direction=Direction.MAXIMIZE)

    def data(self, seed: int) -> tuple[Any, Any, Any]:
        import torch
        from torch.utils.data import TensorDataset

        g = torch.Generator().manual_seed(seed)

        def split(n: int) -> Any:
            x = torch.randn(n, 4, 2, generator=g)
            return TensorDataset(x, (x[:, -1, 0] > 0).long())

        return split(self.n), split(self.n // 2), split(self.n // 2)


def toy_curve(config: Mapping[str, Any], epoch: int, seed: int = 0) -> float:
    """The synthetic objective of ``config`` after ``epoch`` epochs."""
    rng = np.random.default_rng(seed * 1000 + epoch)
    v = float(config["ceiling"]) * (1.0 - math.exp(-float(config["rate"]) * epoch))
    return float(min(1.0, max(0.0, v + 0.005 * rng.standard_normal())))


def toy_train(space: Any, config: Mapping[str, Any], task: Any, options: Any,
              report: Callable[[int, dict[str, float]], bool | None],
              data: Any = None) -> dict[str, float]:
    """The trainer contract of :func:`nas.training.train`, with synthetic curves."""
    mode = config.get("mode", "ok")
    metrics: dict[str, float] = {}
    for epoch in range(1, options.max_epochs + 1):
        if config.get("epoch_s"):
            time.sleep(float(config["epoch_s"]))
        if mode == "raise" and epoch == 2:
            raise RuntimeError("toy trial raised on purpose at epoch 2")
        value = float("nan") if mode == "nan" and epoch == 2 else \
            toy_curve(config, epoch, options.seed)
        if mode == "die" and epoch == 2:
            marker = Path(config.get("marker_dir") or tempfile.gettempdir()) / \
                f"nas-toy-died-{options.seed}-{float(config['ceiling']):.12f}"
            if not marker.exists():
                marker.write_text("died once\n")
                os._exit(1)  # the worker process dies (no exception, no result)
        if mode == "hang" and epoch == 2:
            while True:
                time.sleep(1.0)
        metrics = {"val_accuracy": value, "val_loss": 1.0 - value,
                   "params": 10.0 + 100.0 * float(config["ceiling"])}
        if report(epoch, metrics):
            break
    return metrics
