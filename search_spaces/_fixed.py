"""``FixedSpace``: one given configuration of another space, so that a study runs it as it is.

``nas best STUDY -o best.toml`` writes a study file with this space: the best trial's config,
the study's task, training and objectives, one trial, no stopping.  ``nas run best.toml`` then
retrains that configuration under the same conditions (the same task splits: the same study
seed; the training seed is the study seed plus the trial number, so the value matches the
original trial's within training noise, exactly when that trial was number 0).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    import torch

    from nas.interfaces import TaskSpec

__all__ = ["FixedSpace"]


class FixedSpace:
    """Always samples ``config``; ``build`` and ``features`` are those of ``space`` (any space
    name or ``"module:attr"``) built with ``space_options``.

    Study file::

        [search]
        space = "search_spaces:FixedSpace"
        trials = 1
        [search.space_options]
        space = "seq_cells"
        config = { hidden = 32, layers = [{ cell = "gru", hypernet = "none" }], ... }
    """

    name = "fixed"

    def __init__(self, config: Mapping[str, Any], space: str = "seq_cells",
                 space_options: Mapping[str, Any] | None = None) -> None:
        if not isinstance(config, Mapping) or not config:
            raise ConfigError(f"space fixed: config = {config!r}: must be a non-empty table "
                              "(the configuration to run)")
        if not isinstance(space, str) or not space or space == "fixed":
            raise ConfigError(f"space fixed: space = {space!r}: must name the space the "
                              "configuration belongs to")
        try:
            self.config: dict[str, Any] = json.loads(json.dumps(dict(config)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"space fixed: config is not JSON-able: {exc}") from None
        from nas.registry import create

        self.space = space
        self.inner = create("space", space, dict(space_options or {}))

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        return copy.deepcopy(self.config)

    def build(self, config: Mapping[str, Any], task: TaskSpec) -> torch.nn.Module:
        return self.inner.build(config, task)

    def features(self, config: Mapping[str, Any]) -> dict[str, float]:
        return dict(self.inner.features(config))
