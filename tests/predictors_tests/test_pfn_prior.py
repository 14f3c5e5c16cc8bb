"""The PFN prior: finite, in range, deterministic under a seed, every family and effect works."""

from __future__ import annotations

import pytest
import torch

from nas.errors import ConfigError
from predictors.pfn.prior import FAMILIES, PriorConfig, sample_prior

torch.set_num_threads(1)


def test_samples_are_finite_in_range_and_shaped() -> None:
    b = sample_prior(2000, 37, seed=1)
    assert b.y.shape == (2000, 37) and b.x.shape == (37,)
    assert torch.isfinite(b.y).all()
    assert b.y.min() >= 0.0 and b.y.max() <= 1.0
    assert torch.allclose(b.x, torch.arange(1, 38) / 37.0)
    # clipping leaves point masses at the bounds: some runs sit exactly at 0, some end at 1
    assert (b.y.max(dim=1).values == 0).any()
    assert (b.y[:, -1] == 1).any()
    # and most runs are not constant
    assert (b.y.std(dim=1) > 1e-3).float().mean() > 0.5


def test_deterministic_under_seed() -> None:
    a = sample_prior(300, 20, seed=5)
    b = sample_prior(300, 20, seed=5)
    c = sample_prior(300, 20, seed=6)
    assert torch.equal(a.y, b.y) and torch.equal(a.family, b.family)
    assert not torch.equal(a.y, c.y)
    g1 = torch.Generator().manual_seed(3)
    g2 = torch.Generator().manual_seed(3)
    assert torch.equal(sample_prior(50, 10, generator=g1).y, sample_prior(50, 10, generator=g2).y)


@pytest.mark.parametrize("family", list(range(len(FAMILIES))) + [-1])
def test_every_family(family: int) -> None:
    b = sample_prior(200, 50, seed=0, family=family)
    assert torch.isfinite(b.y).all() and b.y.min() >= 0 and b.y.max() <= 1
    assert (b.family == family).all()
    if family >= 0:  # learning curves rise on average
        assert (b.y[:, -5:].mean() - b.y[:, :3].mean()) > 0.05


def test_horizons_of_the_whole_range() -> None:
    for T in (2, 10, 100):
        y = sample_prior(64, T, seed=T).y
        assert y.shape == (64, T) and torch.isfinite(y).all()


def test_config_validation_and_round_trip() -> None:
    cfg = PriorConfig(p_flat=0.5)
    assert PriorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="p_flat"):
        PriorConfig(p_flat=1.5)
    with pytest.raises(ConfigError, match="noise"):
        PriorConfig(noise_min=0.0)
    with pytest.raises(ConfigError, match="horizon"):
        PriorConfig(min_horizon=50, max_horizon=10)
    with pytest.raises(ConfigError, match="unknown"):
        PriorConfig.from_dict({"p_flt": 0.1})
    with pytest.raises(ConfigError, match="family"):
        sample_prior(4, 10, family=99)
