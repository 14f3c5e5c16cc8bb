"""The PFN network and its training: shapes, masking, bucket head, save/load, resume, learning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas.errors import ConfigError
from predictors.pfn.model import PFN, PFNConfig, fit_borders
from predictors.pfn.prior import PriorConfig, sample_prior
from predictors.pfn.train import TrainConfig, load_model, make_batch, train

torch.set_num_threads(1)

TINY = PFNConfig(d_model=32, n_layers=2, n_heads=2, mlp_ratio=2, n_buckets=64, edge_width=1e-3)


def _model(seed: int = 0) -> PFN:
    torch.manual_seed(seed)
    vals = sample_prior(500, 30, seed=seed).y
    return PFN(TINY, fit_borders(vals, TINY.n_buckets, TINY.edge_width)).eval()


def test_config_round_trip_and_validation() -> None:
    assert PFNConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ConfigError, match="d_model"):
        PFNConfig(d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match="edge_width"):
        PFNConfig(n_buckets=64, edge_width=0.2)
    with pytest.raises(ConfigError, match="unknown"):
        PFNConfig.from_dict({"width": 3})


def test_borders_cover_unit_interval_with_edge_buckets() -> None:
    b = _model().borders
    assert b.shape == (65,)
    assert b[0] == 0 and b[-1] == 1 and (b.diff() > 0).all()
    assert torch.isclose(b[1], torch.tensor(1e-3)) and torch.isclose(1 - b[-2], torch.tensor(1e-3))
    m = _model()
    idx = m.bucket_of(torch.tensor([0.0, 1e-4, 0.5, 1.0]))
    assert idx[0] == 0 and idx[1] == 0 and idx[-1] == 63


def test_shapes_and_query_independence() -> None:
    m = _model()
    B, C = 5, 7
    x = torch.arange(1, C + 1).float().div(20).expand(B, C)
    y = torch.rand(B, C)
    xq = torch.tensor([0.5, 0.8, 1.0]).expand(B, 3)
    hz = torch.full((B,), 20)
    out = m(x, y, xq, hz)
    assert out.shape == (B, 3, 64)
    alone = m(x, y, xq[:, 2:], hz)  # queries do not see each other
    torch.testing.assert_close(alone[:, 0], out[:, 2], rtol=1e-5, atol=1e-5)


def test_padding_with_mask_changes_nothing() -> None:
    m = _model()
    x = torch.arange(1, 5).float().div(10)[None]
    y = torch.tensor([[0.1, 0.2, 0.25, 0.3]])
    ref = m(x, y, torch.ones(1, 1), torch.tensor([10]))
    xp = torch.cat([x, torch.tensor([[0.5, 0.6]])], 1)
    yp = torch.cat([y, torch.tensor([[0.9, 0.0]])], 1)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    padded = m(xp, yp, torch.ones(1, 1), torch.tensor([10]), mask)
    torch.testing.assert_close(padded, ref, rtol=1e-5, atol=1e-5)


def test_batches_are_reproducible() -> None:
    cfg = TrainConfig(steps=10, batch=8, seed=4)
    a, b = make_batch(3, cfg, PriorConfig(), torch.device("cpu")), make_batch(3, cfg, PriorConfig(), torch.device("cpu"))
    for k in a:
        assert torch.equal(a[k], b[k])
    assert (a["x_qry"][:, -1] == 1).all()  # the horizon itself is always a query


def test_tiny_model_learns_and_beats_marginal(tmp_path: Path) -> None:
    """A few hundred steps: the conditional forecast beats the prior's marginal histogram."""
    cfg = TrainConfig(steps=300, batch=32, lr=3e-3, warmup=30, seed=0, border_samples=500,
                      log_every=50)
    res = train(tmp_path, cfg, TINY)
    assert res.step == 300 and res.curves_seen == 300 * 32
    model, doc = load_model(tmp_path)
    assert doc["step"] == 300
    # held-out prior curves (another seed), forecast the last value from the first half
    T = 30
    held = sample_prior(400, T, seed=12345).y
    c = 15
    with torch.no_grad():
        logits = model(torch.arange(1, c + 1).float().div(T).expand(400, c), held[:, :c],
                       torch.ones(400, 1), torch.full((400,), T))
        nll_model = float(model.loss(logits, held[:, -1:]))
        # trivial predictor: the marginal distribution of final values of the prior
        train_final = sample_prior(4000, T, seed=999).y[:, -1]
        counts = torch.bincount(model.bucket_of(train_final), minlength=TINY.n_buckets).float() + 0.5
        marginal = torch.log(counts / counts.sum()).expand(400, 1, -1)
        nll_marginal = float(model.loss(marginal, held[:, -1:]))
    assert nll_model < nll_marginal - 0.3, (nll_model, nll_marginal)


def test_resume_is_identical_to_one_run(tmp_path: Path) -> None:
    cfg = TrainConfig(steps=12, batch=8, warmup=2, seed=3, border_samples=200)
    train(tmp_path / "one", cfg, TINY)
    part = train(tmp_path / "two", cfg, TINY, until=6)
    assert part.step == 6
    res = train(tmp_path / "two", cfg, resume=True)
    assert res.step == 12 and res.curves_seen == 12 * 8
    m1, _ = load_model(tmp_path / "one")
    m2, _ = load_model(tmp_path / "two")
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        torch.testing.assert_close(v1, v2, rtol=0, atol=1e-6, msg=k)
