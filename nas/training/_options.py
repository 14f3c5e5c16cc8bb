"""The options of training: the worker's :class:`TrainingOptions`, a config's :class:`HyperParams`
and the one home of the names they accept (:data:`DEVICES`, :data:`OPTIMIZERS`, :data:`CURRICULA`).

Plain Python without torch: the study-file checks (:mod:`nas.config`) and the command line take
these names from here.  :class:`TrainingOptions` and :data:`DEVICES` are part of the trainer
contract, so they live in :mod:`nas.interfaces` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from nas.errors import ConfigError
from nas.interfaces import DEVICES, MAX_EPOCHS, TrainingKeys, TrainingOptions

__all__ = [
    "CURRICULA",
    "DEFAULT_TRAINER",
    "DEVICES",
    "MAX_EPOCHS",
    "OPTIMIZERS",
    "HyperParams",
    "TrainingKeys",
    "TrainingOptions",
]

#: the ``optimizer`` key of a sampled configuration (``sgd`` has momentum 0.9)
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")
#: the ``curriculum`` key of a sampled configuration (see :func:`curriculum_fraction`)
CURRICULA: tuple[str, ...] = ("none", "easy_to_hard", "cyclical")
#: the ``training.trainer`` a study runs when it names none (:func:`nas.training.train`)
DEFAULT_TRAINER = "nas.training:train"


@dataclass(frozen=True)
class HyperParams:
    """The training keys of a sampled configuration (see :mod:`nas.training`), validated."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None
    curriculum: str = "none"
    prune_sparsity: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"config optimizer = {self.optimizer!r}: must be one of "
                              f"{', '.join(OPTIMIZERS)}")
        if not _is_number(self.lr) or not self.lr > 0:
            raise ConfigError(f"config lr = {self.lr!r}: must be a number > 0")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            raise ConfigError(f"config weight_decay = {self.weight_decay!r}: must be a "
                              "number >= 0")
        if self.grad_clip is not None and (not _is_number(self.grad_clip)
                                           or not self.grad_clip >= 0):
            raise ConfigError(f"config grad_clip = {self.grad_clip!r}: must be a number "
                              ">= 0 (0 or null = off)")
        if self.curriculum not in CURRICULA:
            raise ConfigError(f"config curriculum = {self.curriculum!r}: must be one of "
                              f"{', '.join(CURRICULA)}")
        if not _is_number(self.prune_sparsity) or not 0 <= self.prune_sparsity < 1:
            raise ConfigError(f"config prune_sparsity = {self.prune_sparsity!r}: must be "
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
