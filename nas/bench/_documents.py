"""Checks that a ``nas bench predict`` / ``nas bench replay`` JSON document is well formed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["check_predict_document", "check_replay_document"]


def _require(condition: Any, message: str) -> None:
    # an explicit raise, not ``assert``: the checks must hold under ``python -O`` too
    if not condition:
        raise AssertionError(message)


def check_predict_document(doc: dict[str, Any], cutoffs: Sequence[str]) -> None:
    """The JSON of ``nas bench predict`` has the documented keys and sane values."""
    for key in ("predictor", "file", "n", "cutoffs", "threads"):
        _require(key in doc, f"predict JSON lacks {key!r}")
    _require(sorted(doc["cutoffs"]) == sorted(cutoffs), f"cutoffs {sorted(doc['cutoffs'])}")
    for k, m in doc["cutoffs"].items():
        _require(set(m) >= {"loglik", "mse", "coverage90", "us_per_curve", "mse_last_value"},
                 f"cutoff {k} keys {sorted(m)}")
        _require(0.0 <= m["coverage90"] <= 1.0 and m["mse"] >= 0 and m["mse_last_value"] >= 0,
                 f"cutoff {k}: coverage90 outside [0, 1] or a negative MSE: {m}")
        _require(np.isfinite(m["loglik"]) and m["us_per_curve"] > 0,
                 f"cutoff {k}: loglik not finite or us_per_curve <= 0: {m}")


def check_replay_document(doc: dict[str, Any], groups: Sequence[str]) -> None:
    """The JSON of ``nas bench replay`` has the documented keys and sane values."""
    for key in ("policy", "predictor", "delta", "speedup", "regret", "worst_regret", "groups"):
        _require(key in doc, f"replay JSON lacks {key!r}")
    _require(sorted(doc["groups"]) == sorted(groups), f"groups {sorted(doc['groups'])}")
    for g, m in doc["groups"].items():
        _require(set(m) >= {"speedup", "regret"}, f"group {g} keys {sorted(m)}")
        _require(m["speedup"] >= 1.0 - 1e-9 and m["regret"] >= -1e-12,
                 f"group {g}: speedup < 1 or negative regret: {m}")
    means = [m["speedup"] for m in doc["groups"].values()]
    _require(abs(doc["speedup"] - float(np.mean(means))) < 1e-9, "speedup is not the group mean")
    _require(doc["worst_regret"] >= doc["regret"] - 1e-12, "worst_regret < regret")
