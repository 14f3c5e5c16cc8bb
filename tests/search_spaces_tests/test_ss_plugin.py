"""A third-party space in its own module loads through the registry by "module:attr"."""

from __future__ import annotations

import optuna
import pytest
import torch
from _ss_helpers import PARITY_SPEC

from nas import registry
from nas.errors import ConfigError, PluginError
from nas.interfaces import SearchSpace


def test_plugin_space_loads_by_module_attr_and_works() -> None:
    cls = registry.load("space", "plugin_space:TinyGRUSpace")
    space = registry.create("space", "plugin_space:TinyGRUSpace", {"width": 8})
    assert isinstance(space, cls) and isinstance(space, SearchSpace)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    cfg = space.sample(study.ask())
    model = space.build(cfg, PARITY_SPEC)
    assert model(torch.randn(2, 3, 1)).shape == (2, 2)
    assert set(space.features(cfg)) == {"depth", "lr"}


def test_plugin_errors() -> None:
    with pytest.raises(PluginError):
        registry.load("space", "plugin_space:NoSuchSpace")
    with pytest.raises(ConfigError, match="width"):
        registry.create("space", "plugin_space:TinyGRUSpace", {"width": 7})
