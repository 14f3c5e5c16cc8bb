"""A synthetic space, task and trainer for exercising the runner without real training.

Used by the runner's tests, by ``nas bench overhead`` (trivial trials) and by users who want to
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

from nas.errors import ConfigError
from nas.interfaces import TaskSpec

__all__ = ["MODES", "ToySpace", "ToyTask", "toy_train"]

MODES = ("ok", "raise", "nan", "hang", "die")


class ToySpace:
    """Three parameters: ``ceiling`` in [0.2, 1], ``rate`` in [0.05, 2] (log), ``mode``."""

    name = "toy"

    def __init__(self, modes: Sequence[str] = ("ok",), epoch_s: float = 0.0,
                 marker_dir: str | None = None) -> None:
        bad = [m for m in modes if m not in MODES]
        if not modes or bad:
            raise ConfigError(f"toy space: modes = {list(modes)!r}: must be a non-empty list of "
                              f"{', '.join(MODES)}")
        if not (isinstance(epoch_s, (int, float)) and epoch_s >= 0):
            raise ConfigError(f"toy space: epoch_s = {epoch_s!r}: must be a number >= 0")
        self.modes = tuple(modes)
        self.epoch_s = float(epoch_s)
        self.marker_dir = marker_dir

    def sample(self, trial: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "ceiling": trial.suggest_float("ceiling", 0.2, 1.0),
            "rate": trial.suggest_float("rate", 0.05, 2.0, log=True),
            "mode": trial.suggest_categorical("mode", list(self.modes)),
            "epoch_s": self.epoch_s,
        }
        if self.marker_dir is not None:
            cfg["marker_dir"] = self.marker_dir
        return cfg

    def build(self, config: Mapping[str, Any], task: TaskSpec) -> Any:
        import torch

        width = 1 + int(8 * float(config["ceiling"]))
        return torch.nn.Sequential(torch.nn.Linear(task.input_size, width),
                                   torch.nn.Linear(width, task.output_size))

    def features(self, config: Mapping[str, Any]) -> dict[str, float]:
        return {"ceiling": float(config["ceiling"]), "rate": math.log(float(config["rate"]))}


class ToyTask:
    """A task whose data is a few random tensors (only ``nas evaluate`` on it uses them)."""

    name = "toy"

    def __init__(self, n: int = 64) -> None:
        self.n = int(n)

    def spec(self) -> TaskSpec:
        return TaskSpec(name="toy", input_size=2, output_size=2, seq_len=4,
                        objective="val_accuracy", direction="maximize")

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
        metrics = {"val_accuracy": value, "params": 10.0 + 100.0 * float(config["ceiling"])}
        if report(epoch, metrics):
            break
    return metrics
