"""The study-reading PFN: the study prior, the reader, its training, the predictor's
context path and ``nas bench predict``'s context protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nas.bench._predict import _context_for, median_rule_lengths
from nas.curvefile import CurveSet
from nas.errors import ConfigError
from nas.interfaces import Curve, StudyContext, predictor_caps
from predictors.pfn import PFNPredictor, StudyPFNPredictor
from predictors.pfn.model import PFN, PFNConfig, fit_borders
from predictors.pfn.study_model import StudyConfig, StudyPFN, config_distance
from predictors.pfn.study_prior import sample_studies
from predictors.pfn.study_train import (
    StudyTrainConfig,
    load_study_model,
    make_study_batch,
    train_study,
)

torch.set_num_threads(1)

TINY = PFNConfig(d_model=32, n_layers=1, n_heads=2, mlp_ratio=2, n_buckets=64, edge_width=1e-3,
                 max_horizon=30)
TINY_STUDY = StudyConfig(grid=8, n_layers=1, max_context=24)
TINY_TRAIN = StudyTrainConfig(steps=300, batch=32, targets=4, lr=3e-3, warmup=20, seed=3,
                              log_every=50, tune_base=True, min_horizon=10, max_horizon=30,
                              checkpoint_every_s=1e9)


def _tiny_base() -> PFN:
    torch.manual_seed(0)
    vals = sample_studies(8, 50, 30, seed=99).y
    return PFN(TINY, fit_borders(vals, TINY.n_buckets, TINY.edge_width))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("study_tiny")
    train_study(d, TINY_TRAIN, study_cfg=TINY_STUDY, base_model=_tiny_base())
    return d


# -- the prior ------------------------------------------------------------------------------------
def test_study_prior_is_deterministic_under_a_seed_and_in_range() -> None:
    a = sample_studies(6, 40, 25, seed=5)
    b = sample_studies(6, 40, 25, seed=5)
    c = sample_studies(6, 40, 25, seed=6)
    assert torch.equal(a.y, b.y) and torch.equal(a.z, b.z)
    assert not torch.equal(a.y, c.y)
    assert a.y.shape == (6, 40, 25) and a.z.shape == (6, 40, 8)
    assert float(a.y.min()) >= 0.0 and float(a.y.max()) <= 1.0
    assert float(a.z.min()) >= 0.0 and float(a.z.max()) <= 1.0
    big = sample_studies(64, 50, 40, seed=1)
    share_flat = big.flat.float().mean(1)
    assert 0.1 < float(share_flat.mean()) < 0.9
    assert float(share_flat.min()) < 0.2 and float(share_flat.max()) > 0.6  # studies differ
    assert 0.02 < float((big.delay > 0).float().mean()) < 0.5  # some runs take off late


def test_late_take_off_is_tied_to_the_config() -> None:
    """Late runs have lower 'learning rates' (coordinate 0) than the others of their study."""
    b = sample_studies(128, 60, 40, seed=2)
    late = b.delay > 0.1
    lr = b.z[..., 0]
    assert float(lr[late].mean()) < float(lr[~late & ~b.flat].mean()) - 0.1


# -- the model ------------------------------------------------------------------------------------
def test_config_distance_uses_ranks_and_ignores_constant_features() -> None:
    ctx = torch.tensor([[[0.0, 1e6, 5.0], [1.0, 2e6, 5.0], [2.0, 3e6, 5.0]]])
    qry = torch.tensor([[0.0, 1e6, 5.0], [2.0, 3e6, 7.0]])
    d, has = config_distance(ctx, qry, torch.zeros(2, dtype=torch.long), 3)
    assert has.tolist() == [[1.0], [1.0]]
    assert torch.allclose(d[0], d[1].flip(0))  # scale-free: both features ranked alike
    assert int(d[0].argmin()) == 0 and int(d[1].argmin()) == 2
    d0, has0 = config_distance(None, None, torch.zeros(2, dtype=torch.long), 3)
    assert d0.shape == (2, 3) and float(has0.sum()) == 0.0


def test_untrained_reader_leaves_the_prefix_forecast_unchanged() -> None:
    base = _tiny_base()
    model = StudyPFN(base, TINY_STUDY).eval()
    b = make_study_batch(7, TINY_TRAIN, TINY_STUDY.max_context, k=10)
    args = (b["x_ctx"], b["y_ctx"], b["x_qry"], b["horizon"])
    with torch.no_grad():  # the retrieval mixture starts at weight sigmoid(-8) = 3e-4
        p_study = torch.softmax(model(*args, None, b["study"], b["sidx"], b["qfeats"]), -1)
        assert torch.allclose(p_study, torch.softmax(base(*args), -1), atol=1e-3)


def test_tiny_model_uses_its_context(tiny_dir: Path) -> None:
    """Trained for 300 steps, the model forecasts held-out prior studies better with their
    context than the same model without it."""
    model, _ = load_study_model(tiny_dir)
    with_ctx, without = [], []
    with torch.no_grad():
        for step in range(10_000, 10_030):
            b = make_study_batch(step, TINY_TRAIN, TINY_STUDY.max_context, k=TINY_STUDY.max_context)
            args = (b["x_ctx"], b["y_ctx"], b["x_qry"], b["horizon"])
            with_ctx.append(float(model.loss(model(*args, None, b["study"], b["sidx"], b["qfeats"]),
                                             b["target"])))
            without.append(float(model.loss(model(*args), b["target"])))
    gain = np.mean(without) - np.mean(with_ctx)
    wins = np.mean(np.array(with_ctx) < np.array(without))
    assert gain > 0.03 and wins > 0.7, (np.mean(without), np.mean(with_ctx), wins)


def test_save_load_gives_identical_predictions(tiny_dir: Path, tmp_path: Path) -> None:
    from predictors.pfn.study_train import _save

    model, doc = load_study_model(tiny_dir)
    _save(tmp_path, model, {k: v for k, v in doc.items() if k not in ("model", "prior")}, None)
    again, _ = load_study_model(tmp_path)
    b = make_study_batch(123, TINY_TRAIN, TINY_STUDY.max_context, k=12)
    args = (b["x_ctx"], b["y_ctx"], b["x_qry"], b["horizon"], None, b["study"], b["sidx"],
            b["qfeats"])
    with torch.no_grad():
        assert torch.equal(model(*args), again(*args))
    p1, p2 = StudyPFNPredictor(tiny_dir), StudyPFNPredictor(tmp_path)
    q, ctx = _study(4)
    assert np.array_equal(p1.predict_probs(q, 25, ctx), p2.predict_probs(q, 25, ctx))


def test_resume_continues_the_run(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = StudyTrainConfig(**{**TINY_TRAIN.to_dict(), "steps": 6})
    train_study(tmp_path, cfg, study_cfg=TINY_STUDY, base_model=_tiny_base(), until=3)
    res = train_study(tmp_path, cfg, resume=True)
    assert res.step == 6 and res.curves_seen == 6 * cfg.batch


# -- the predictor --------------------------------------------------------------------------------
def _study(seed: int, n_ctx: int = 30, T: int = 25) -> tuple[list[Curve], StudyContext]:
    rng = np.random.default_rng(seed)
    b = sample_studies(1, n_ctx + 3, T, seed=seed)
    y, z = b.y[0].numpy().astype(np.float64), b.z[0, :, :3].numpy().astype(np.float64)
    lengths = rng.integers(1, T + 1, n_ctx)
    ctx = StudyContext(tuple(Curve(y[3 + k, :lengths[k]], z[3 + k]) for k in range(n_ctx)),
                       tuple(bool(L == T) for L in lengths), T, version=seed)
    return [Curve(y[i, :c], z[i]) for i, c in enumerate((2, 5, 9))], ctx


def test_context_order_does_not_change_the_forecast(tiny_dir: Path) -> None:
    p = StudyPFNPredictor(tiny_dir)
    q, ctx = _study(1)
    perm = np.random.default_rng(0).permutation(len(ctx))
    shuffled = StudyContext(tuple(ctx.curves[i] for i in perm), tuple(ctx.complete[i] for i in perm),
                            ctx.horizon, version=ctx.version + 1)
    a, b = p.predict_probs(q, 25, ctx), p.predict_probs(q, 25, shuffled)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, p.predict_probs(q, 25), atol=1e-4)  # the context does matter


def test_the_context_encoding_is_cached_under_its_version(tiny_dir: Path) -> None:
    p = StudyPFNPredictor(tiny_dir)
    q, ctx = _study(2)
    first = p.predict_probs(q, 25, ctx)
    assert p._tokens is not None
    tokens = p._tokens[2]
    p.predict_probs(q[:1], 25, ctx)
    assert p._tokens[2] is tokens  # same version: not re-encoded
    np.testing.assert_allclose(p.predict_probs(q[:1], 25, ctx), first[:1], atol=1e-6)


def test_no_context_is_the_prefix_network_alone(tiny_dir: Path) -> None:
    p = StudyPFNPredictor(tiny_dir)
    q, _ = _study(3)
    empty = StudyContext((), (), 25)
    assert np.array_equal(p.predict_probs(q, 25), p.predict_probs(q, 25, empty))
    assert predictor_caps(p) == {"learns_from_curves": False, "reads_study": True}


def test_shipped_weights_load_and_predict_on_cpu() -> None:
    p = PFNPredictor(device="cpu")
    q, ctx = _study(4, n_ctx=60, T=40)
    for c in (None, ctx):
        fc = p.predict(q, 40, context=c)
        m = np.asarray(fc.mean)
        assert m.shape == (3,) and np.all((m >= 0) & (m <= 1))
        assert np.allclose(np.asarray(fc.cdf(np.ones(3))), 1.0)


# -- nas bench predict's context protocol -----------------------------------------------------------
def test_median_rule_cuts_the_curves_below_the_running_median() -> None:
    T = 18  # rungs 2 and 6
    finals = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.95, 0.05])
    curves = np.repeat(finals[:, None], T, axis=1)
    ran = median_rule_lengths(curves, np.full(7, T), np.arange(7))
    # the first three run on (fewer than 3 earlier); 0.6 and 0.1 are below the running median
    # at rung 2; 0.95 passes rung 2 and rung 6 (median of the 3 that reached it); 0.05 stops
    assert ran.tolist() == [T, T, T, 2, 2, T, 2]


def test_a_curve_sees_only_earlier_curves_cut_where_they_stopped() -> None:
    n, T = 8, 9
    curves = np.tile(np.linspace(0, 1, n)[:, None], (1, T)).astype(np.float32)
    cs = CurveSet(curves=curves, lengths=np.full(n, T))
    order = np.array([3, 1, 7, 0, 2, 6, 5, 4])
    ran = np.array([T, 1, 3, T, T, 3, T, 1])
    ctx = _context_for(cs, np.arange(n), order, ran, 4, version=9)
    assert [float(c.values[0]) for c in ctx.curves] == [float(curves[i, 0]) for i in (3, 1, 7, 0)]
    assert [len(c) for c in ctx.curves] == [T, 1, 1, T]
    assert ctx.complete == (True, False, False, True) and ctx.version == 9


# -- the CLI --------------------------------------------------------------------------------------
def test_cli_export_and_sample_prior_studies(tiny_dir: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from nas.cli import app

    runner = CliRunner()
    dst = tmp_path / "weights"
    r = runner.invoke(app, ["pfn", "export", "--from", str(tiny_dir), "--to", str(dst)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in dst.iterdir()) == ["config.json", "model.safetensors"]
    assert StudyPFNPredictor(dst).reads_study
    r = runner.invoke(app, ["pfn", "export", "--from", str(tmp_path / "nothing"), "--to", str(dst)])
    assert isinstance(r.exception, ConfigError)  # a user error: `nas` exits 2 with one line
    pytest.importorskip("matplotlib")
    cs = CurveSet(curves=sample_studies(2, 10, 12, seed=0).y.reshape(20, 12).numpy(),
                  lengths=np.full(20, 12), task=np.repeat(np.array(["a", "b"]), 10))
    from nas.curvefile import save_curves

    save_curves(tmp_path / "real.npz", cs)
    png = tmp_path / "s.png"
    r = runner.invoke(app, ["pfn", "sample-prior", "--studies", "--plot", str(png), "--real",
                            str(tmp_path / "real.npz"), "--runs", "10"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert png.stat().st_size > 1000
    assert set(doc["prior"]) == {"share_flat", "take_off", "share_late", "crossing", "noise"}


def test_config_distance_weighs_the_features_that_go_with_the_outcome() -> None:
    rng = np.random.default_rng(0)
    K = 40
    ctx = torch.tensor(rng.uniform(size=(1, K, 2)), dtype=torch.float32)
    outcome = ctx[0, :, 0][None] * 2.0  # only feature 0 matters
    qry = torch.tensor([[0.5, 0.0]])
    d, _ = config_distance(ctx, qry, torch.zeros(1, dtype=torch.long), K, outcome)
    near0 = (ctx[0, :, 0] - 0.5).abs()
    # the distance follows feature 0, not feature 1 (on which the query is at the edge)
    corr = np.corrcoef(d[0].numpy(), near0.numpy() ** 2)[0, 1]
    assert corr > 0.9


def test_study_option_false_reads_the_prefix_alone(tiny_dir: Path) -> None:
    p = PFNPredictor(tiny_dir, study=False)
    q, ctx = _study(5)
    assert not predictor_caps(p)["reads_study"]
    assert np.array_equal(p.predict_probs(q, 25, ctx), p.predict_probs(q, 25))


def test_shipped_weights_are_a_study_reader_with_their_training_record() -> None:
    import json

    from predictors.pfn import default_weights_dir

    d = default_weights_dir()
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors"]
    assert (d / "model.safetensors").stat().st_size <= 20 * 2**20
    doc = json.loads((d / "config.json").read_text())
    for key in ("command_first", "command_last", "step", "curves_seen", "wall_s", "machine",
                "threads", "base_run"):
        assert doc.get(key), key
    assert StudyPFNPredictor().reads_study  # the shipped weights hold a study reader
    assert not PFNPredictor().reads_study  # the default pfn reads the prefix alone
