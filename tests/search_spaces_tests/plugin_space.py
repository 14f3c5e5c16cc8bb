"""A third-party search space, as a user would ship it: a plain class that nas loads by
``"module:attr"`` (here ``"plugin_space:TinyGRUSpace"``) or by an entry point in the user's
own package (group ``nas.search_spaces``).  It reuses the ``seq_cells`` cell library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nas.errors import ConfigError
from nas.interfaces import TaskSpec
from search_spaces import SeqCellsSpace


class TinyGRUSpace:
    """One or two GRU layers of width ``width``; only the learning rate and depth are searched."""

    name = "tiny_gru"

    def __init__(self, width: int = 16) -> None:
        if isinstance(width, bool) or not isinstance(width, int) or width < 8 or width % 8:
            raise ConfigError(f"space tiny_gru: option width is {width!r}, but must be a "
                              "multiple of 8")
        self.width = width
        self._inner = SeqCellsSpace(cells=["gru"], hypernets=["none"], hidden=[width])

    def sample(self, trial: Any) -> dict[str, Any]:
        depth = trial.suggest_int("depth", 1, 2)
        return {"hidden": self.width, "norm": "pre", "residual": True, "loops": 1,
                "layers": [{"cell": "gru", "hypernet": "none", "mip": False}] * depth,
                "optimizer": "adam", "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
                "weight_decay": 0.0, "dropout": 0.0, "grad_clip": 1.0, "curriculum": "none",
                "prune_sparsity": 0.0}

    def build(self, config: Mapping[str, Any], task: TaskSpec) -> torch.nn.Module:
        return self._inner.build(config, task)

    def features(self, config: Mapping[str, Any]) -> dict[str, float]:
        return {"depth": float(len(config["layers"])), "lr": float(config["lr"])}
