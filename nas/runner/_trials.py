"""The engine's record of a trial it has handed to Tune and not finished yet."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.runner._writer import TrialRef

__all__ = ["LiveTrial"]


@dataclass
class LiveTrial:
    """A trial the engine has handed to Tune and not finished yet."""

    number: int
    ref: TrialRef
    optuna_trial: Any
    config: dict[str, Any]
    features: np.ndarray | None
    raw: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    reported: bool = False  # ``started`` was corrected from the worker's own clock
