"""Helpers shared by the runner and the replay benchmark: the refit schedule and policy lookup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.errors import ConfigError, PluginError
from nas.interfaces import StoppingPolicy

__all__ = ["REFIT_FIRST", "make_policy", "should_refit"]

#: First refit point; later ones double: 5, 10, 20, 40, 80, ... completed trials.
REFIT_FIRST = 5


def should_refit(n_complete: int) -> bool:
    """True when a study's learning predictor is refit after its ``n_complete``-th completion.

    The schedule is 5, 10, 20, 40, 80, ... (5 * 2**k): the cost of all refits of a study stays
    within twice the last one, and the fitted set never lags the study by more than half.  The
    runner calls this after each COMPLETE trial (and fits off the hook's path); ``nas bench
    replay`` uses the same schedule.
    """
    n = int(n_complete)
    if n < REFIT_FIRST or n % REFIT_FIRST:
        return False
    k = n // REFIT_FIRST
    return k & (k - 1) == 0


def make_policy(name: str, options: Mapping[str, Any] | None = None) -> StoppingPolicy:
    """Create a stopping policy by entry-point name (``none``, ``median``, ``asha``,
    ``predictive``) or ``"module:attr"`` with validated keyword ``options``."""
    from nas import registry

    try:
        policy = registry.create("policy", name, dict(options or {}))
    except PluginError as exc:
        cause = exc.__cause__
        if isinstance(cause, TypeError):  # unknown keyword: say which options exist
            raise ConfigError(f"policy {name!r}: {cause}") from exc
        raise
    if not hasattr(policy, "decide"):
        raise PluginError(f"policy {name!r} has no decide(trial, study) method")
    return policy  # type: ignore[no-any-return]
