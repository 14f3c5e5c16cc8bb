"""The ``pfn`` predictor: interface, validation, batching, save -> load, shipped weights, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nas.errors import ConfigError, PredictorError
from nas.interfaces import Curve, LearningCurvePredictor
from nas.registry import create
from predictors.pfn import PFNPredictor, default_weights_dir
from predictors.pfn.model import PFNConfig
from predictors.pfn.train import TrainConfig, load_model, train

torch.set_num_threads(1)

TINY = PFNConfig(d_model=32, n_layers=2, n_heads=2, mlp_ratio=2, n_buckets=64, edge_width=1e-3,
                 max_horizon=60)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pfn_tiny")
    train(d, TrainConfig(steps=30, batch=16, warmup=5, seed=1, border_samples=300), TINY)
    return d


def _curves(seed: int = 0) -> list[Curve]:
    rng = np.random.default_rng(seed)
    out = []
    for n in (1, 3, 7, 12, 30):
        t = np.arange(1, n + 1)
        out.append(Curve(np.clip(0.8 * (1 - np.exp(-t / 8)) + rng.normal(0, 0.01, n), 0, 1)))
    out.append(Curve(np.zeros(9)))
    return out


def _check_forecast(fc: object, n: int) -> None:
    mean = np.asarray(fc.mean)  # type: ignore[attr-defined]
    assert mean.shape == (n,) and np.all((mean >= 0) & (mean <= 1))
    qs = np.stack([fc.quantile(q) for q in (0.05, 0.25, 0.5, 0.75, 0.95)])  # type: ignore[attr-defined]
    assert np.all(np.diff(qs, axis=0) >= -1e-12)
    grid = np.linspace(-0.1, 1.1, 25)
    cdfs = np.stack([fc.cdf(y) for y in grid])  # type: ignore[attr-defined]
    assert np.all(np.diff(cdfs, axis=0) >= -1e-12) and np.allclose(cdfs[0], 0) and np.allclose(cdfs[-1], 1)
    for q in (0.3, 0.6, 0.9):
        c = fc.cdf(fc.quantile(q))  # type: ignore[attr-defined]
        assert np.all(c >= q - 1e-6)
    lp = fc.logpdf(np.full(n, 0.5))  # type: ignore[attr-defined]
    assert np.all(np.isfinite(lp))


def test_predicts_valid_batched_forecasts(tiny_dir: Path) -> None:
    p = PFNPredictor(weights=tiny_dir)
    assert isinstance(p, LearningCurvePredictor)
    assert p.fit(_curves()) is p
    curves = _curves()
    fc = p.predict(curves, 50)
    _check_forecast(fc, len(curves))


def test_alone_equals_in_batch(tiny_dir: Path) -> None:
    p = PFNPredictor(weights=tiny_dir, batch_size=4)  # several chunks, mixed lengths
    curves = _curves(3)
    batch = p.predict_probs(curves, 40)
    for i, c in enumerate(curves):
        np.testing.assert_allclose(p.predict_probs([c], 40)[0], batch[i], rtol=1e-4, atol=1e-6)


def test_save_load_gives_identical_predictions(tiny_dir: Path) -> None:
    model, _ = load_model(tiny_dir)
    curves = _curves(1)
    a = PFNPredictor(weights=tiny_dir).predict_probs(curves, 45)
    with torch.no_grad():
        v = torch.tensor(curves[3].values, dtype=torch.float32)[None]
        x = torch.arange(1, v.shape[1] + 1).float().div(45)[None]
        direct = torch.softmax(model(x, v, torch.ones(1, 1), torch.tensor([45])), -1)[0, 0]
    np.testing.assert_allclose(a[3], direct.double().numpy(), rtol=1e-5, atol=1e-7)
    b = PFNPredictor(weights=tiny_dir).predict_probs(curves, 45)
    np.testing.assert_array_equal(a, b)


def test_known_horizon_is_a_point_mass(tiny_dir: Path) -> None:
    p = PFNPredictor(weights=tiny_dir)
    fc = p.predict([Curve(np.array([0.1, 0.4, 0.5, 0.52]))], 3)
    assert abs(float(fc.mean[0]) - 0.5) < 0.02
    assert float(fc.cdf(0.47)[0]) < 1e-9 and float(fc.cdf(0.53)[0]) > 1 - 1e-9


@pytest.mark.parametrize(
    ("values", "horizon", "match"),
    [
        ([0.2, 1.3], 10, "value 1.3"),
        ([0.2, -0.1], 10, "value -0.1"),
        ([0.2, float("nan")], 10, "nan"),
        ([], 10, "empty"),
        ([0.2], 61, "horizon is 61"),
        ([0.2], 0, "horizon is 0"),
        ([0.2], 2.5, "integer"),
    ],
)
def test_input_validation(tiny_dir: Path, values: list[float], horizon: object, match: str) -> None:
    p = PFNPredictor(weights=tiny_dir)
    with pytest.raises(PredictorError, match=match):
        p.predict([Curve(np.array(values, dtype=float))], horizon)  # type: ignore[arg-type]


def test_constructor_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no PFN checkpoint"):
        PFNPredictor(weights=tmp_path)
    with pytest.raises(ConfigError, match="batch_size"):
        PFNPredictor(batch_size=0)
    with pytest.raises(ConfigError, match="device"):
        PFNPredictor(device="tpu")


def test_shipped_weights_load_and_predict_on_cpu() -> None:
    p = create("predictor", "pfn", {})
    assert isinstance(p, PFNPredictor) and p.weights == default_weights_dir()
    curves = _curves(2)
    fc = p.predict(curves, 50)
    _check_forecast(fc, len(curves))
    # a run flat at exactly 0 for 20 of 50 epochs most likely stays there
    flat = p.predict([Curve(np.zeros(20))], 50)
    assert float(flat.cdf(0.0)[0]) > 0.5
    # a run that has plateaued at 0.8 most likely ends near 0.8
    noisy = 0.8 + np.random.default_rng(0).normal(0, 0.01, 30)
    plateau = p.predict([Curve(noisy)], 50)
    assert 0.7 < float(plateau.quantile(0.5)[0]) < 0.9


def test_cli_train_resume_and_info(tmp_path: Path) -> None:
    from nas.cli import app

    out = tmp_path / "ck"
    runner = CliRunner()
    args = ["pfn", "train", "--out", str(out), "--steps", "4", "--batch", "4", "--d-model", "16",
            "--layers", "1", "--no-progress", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["step"] == 4 and doc["curves_seen"] == 16
    r = runner.invoke(app, args)  # exists already, no --resume: a user error
    assert r.exit_code != 0
    r = runner.invoke(app, ["pfn", "train", "--out", str(out), "--steps", "6", "--batch", "4",
                            "--resume", "--no-progress", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["step"] == 6
    r = runner.invoke(app, ["pfn", "info", "--weights", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["d_model"] == 16


def test_passes_the_predictor_conformance_checks(tiny_dir: Path) -> None:
    from nas.testing.predictors import check_predictor, synthetic_curves

    check_predictor(PFNPredictor(weights=tiny_dir), synthetic_curves(n=40, horizon=20, seed=0))
    assert PFNPredictor.learns_from_curves is False
