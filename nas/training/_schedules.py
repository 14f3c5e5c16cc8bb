"""The per-epoch schedules of training: the curriculum's data fraction and the pruning ramp.

Pure functions of the epoch, unit-tested; :func:`nas.training.train` calls them every epoch.
"""

from __future__ import annotations

from nas.errors import ConfigError
from nas.training._options import CURRICULA

__all__ = ["curriculum_fraction", "prune_schedule"]


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
    raise ConfigError(f"curriculum {kind!r} is unknown; use one of {', '.join(CURRICULA)}")


def prune_schedule(target: float, epoch: int, max_epochs: int) -> float:
    """Sparsity to reach after ``epoch`` (1-based): cubic ramp (Zhu & Gupta 2017)."""
    if target <= 0:
        return 0.0
    ramp = max(1, max_epochs // 2)
    t = min(1.0, epoch / ramp)
    return float(target * (1.0 - (1.0 - t) ** 3))
