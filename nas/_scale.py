"""The min-max scaling of objective values to [0, 1], higher better (and back), once."""

from __future__ import annotations

import math

__all__ = ["denormalise", "normalise"]


def normalise(value: float, lo: float, hi: float, direction: str = "maximize") -> float:
    """``value`` mapped from [lo, hi] to [0, 1] (flipped for ``"minimize"``), clipped; NaN for
    a non-finite value."""
    if not math.isfinite(value):
        return float("nan")
    if hi <= lo:
        raise ValueError(f"objective range ({lo}, {hi}) is empty")
    x = (float(value) - lo) / (hi - lo)
    if direction == "minimize":
        x = 1.0 - x
    return float(min(1.0, max(0.0, x)))


def denormalise(x: float, lo: float, hi: float, direction: str = "maximize") -> float:
    """Inverse of :func:`normalise` (inside the range)."""
    if direction == "minimize":
        x = 1.0 - x
    return float(lo + x * (hi - lo))
