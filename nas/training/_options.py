"""The options of training: the worker's :class:`TrainingOptions`, a config's :class:`HyperParams`
and the one home of the names they accept (:data:`DEVICES`, :data:`OPTIMIZERS`, :data:`CURRICULA`).

Plain Python without torch: the study-file checks (:mod:`nas.config`) and the command line take
these names from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from nas.errors import ConfigError

__all__ = [
    "CURRICULA",
    "DEFAULT_TRAINER",
    "DEVICES",
    "OPTIMIZERS",
    "HyperParams",
    "TrainingOptions",
]

#: ``training.device`` (study file) and :attr:`TrainingOptions.device`
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: the ``optimizer`` key of a sampled configuration (``sgd`` has momentum 0.9)
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd", "rmsprop")
#: the ``curriculum`` key of a sampled configuration (see :func:`curriculum_fraction`)
CURRICULA: tuple[str, ...] = ("none", "easy_to_hard", "cyclical")
#: the ``training.trainer`` a study runs when it names none (:func:`nas.training.train`)
DEFAULT_TRAINER = "nas.training:train"


@dataclass(frozen=True)
class TrainingOptions:
    """How a worker trains one trial (the study file's ``[training]`` table); the ``options``
    every trainer gets (:class:`nas.interfaces.Trainer`), the default one and custom ones.

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
        if self.device not in DEVICES:
            raise ConfigError(f"training.device is {self.device!r}, but must be one of "
                              f"{', '.join(DEVICES)}")
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
    """The training keys of a sampled configuration (see :mod:`nas.training`), validated."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None
    curriculum: str = "none"
    prune_sparsity: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"config optimizer is {self.optimizer!r}, but must be one of "
                              f"{', '.join(OPTIMIZERS)}")
        if not _is_number(self.lr) or not self.lr > 0:
            raise ConfigError(f"config lr is {self.lr!r}, but must be a number > 0")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            raise ConfigError(f"config weight_decay is {self.weight_decay!r}, but must be a "
                              "number >= 0")
        if self.grad_clip is not None and (not _is_number(self.grad_clip)
                                           or not self.grad_clip >= 0):
            raise ConfigError(f"config grad_clip is {self.grad_clip!r}, but must be a number "
                              ">= 0 (0 or null = off)")
        if self.curriculum not in CURRICULA:
            raise ConfigError(f"config curriculum is {self.curriculum!r}, but must be one of "
                              f"{', '.join(CURRICULA)}")
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
