"""Our stopping policies for people who use plain Optuna or plain Ray Tune.

- :class:`PolicyPruner` (``nas.integrations._optuna``): an ``optuna.pruners.BasePruner``.
- :class:`PolicyScheduler` (``nas.integrations.tune``): a Ray Tune ``TrialScheduler``; loaded
  lazily so that ``import nas.integrations`` does not import ray.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PolicyPruner", "PolicyScheduler"]


def __getattr__(name: str) -> Any:
    if name == "PolicyPruner":
        from nas.integrations._optuna import PolicyPruner

        return PolicyPruner
    if name == "PolicyScheduler":
        from nas.integrations.tune import PolicyScheduler

        return PolicyScheduler
    raise AttributeError(f"module 'nas.integrations' has no attribute {name!r}")
