"""Forecast classes and the Baker regressor: valid distributions (nas.testing), atoms at the
bounds, batch/alone equality, fallback, learning on synthetic curves, option validation."""

from __future__ import annotations

import numpy as np
import pytest

from nas.bench import binned_loglik
from nas.errors import ConfigError, PredictorError
from nas.interfaces import Curve
from nas.testing.predictors import check_forecast, check_predictor, synthetic_curves
from predictors import CensoredMixtureForecast, HistogramForecast, concat_forecasts, take_rows
from predictors.regression import MODELS, BakerPredictor


def test_censored_mixture_is_a_valid_distribution_with_atoms() -> None:
    loc = np.array([[0.0, 0.3], [0.5, 0.6], [1.2, 0.9], [-0.5, -0.4]])
    scale = np.array([[0.01, 0.1], [0.05, 0.05], [0.1, 0.2], [0.01, 0.3]])
    fc = CensoredMixtureForecast(loc, scale, np.array([[0.7, 0.3]] * 4))
    check_forecast(fc, 4)
    assert fc.cdf(0.0)[0] > 0.3  # atom at 0
    assert fc.quantile(0.05)[0] == 0.0 and fc.quantile(0.05)[3] == 0.0
    assert fc.quantile(0.99)[2] == 1.0  # atom at 1
    assert abs(fc.mean[1] - 0.53) < 1e-3  # 0.7 * 0.5 + 0.3 * 0.6
    sub = fc.take([1, 3])
    assert np.allclose(sub.cdf(0.5), fc.cdf(0.5)[[1, 3]])
    assert np.allclose(take_rows(fc, 2).mean, fc.mean[2])
    both = concat_forecasts([fc.take([0]), CensoredMixtureForecast(np.array([0.4]), 0.1)])
    check_forecast(both, 2)


def test_histogram_forecast_is_valid() -> None:
    rng = np.random.default_rng(0)
    atom = np.array([0.0, 0.5, 0.0, 0.2, 0.9])
    probs = rng.uniform(size=(5, 20))
    probs = probs / probs.sum(axis=1, keepdims=True) * (1 - atom)[:, None]
    fc = HistogramForecast(np.linspace(0, 1, 21), probs, atom_lower=atom)
    check_forecast(fc, 5)
    assert fc.quantile(0.5)[1] == 0.0 and fc.cdf(0.0)[4] > 0.8


def test_binned_loglik_rewards_mass_at_the_truth_and_is_floored() -> None:
    sharp = CensoredMixtureForecast(np.array([-0.1, 0.5]), 0.01)
    assert binned_loglik(sharp, np.array([0.0, 0.5]))[0] == pytest.approx(np.log(1 / 0.01), 1e-6)
    far = binned_loglik(sharp, np.array([0.9, 0.9]))
    assert np.allclose(far, np.log(1e-9 / 0.01))


def test_baker_conformance_fallback_and_fitted() -> None:
    curves = synthetic_curves(n=80, horizon=20, seed=1)
    check_predictor(BakerPredictor(), curves)  # 40 curves: fitted
    p = BakerPredictor(min_curves=50)
    check_predictor(p, curves)  # below min_curves: the wide fallback
    assert p.model_ is None
    fc = p.predict([Curve(np.zeros(3))], 20)
    assert 1.0 - fc.cdf(np.array([0.99]))[0] > 0.05  # the fallback never justifies a stop


def test_baker_learns_and_records_cv_scores() -> None:
    curves = synthetic_curves(n=160, horizon=20, seed=2)
    train, test = curves[:120], curves[120:]
    p = BakerPredictor(seed=0).fit(train)
    assert set(p.cv_scores_) == set(MODELS) and p.model_name_ in MODELS
    assert p.cv_scores_[p.model_name_] == min(p.cv_scores_.values())
    y = np.array([c.values[-1] for c in test])
    prefixes = [Curve(c.values[:4], c.features) for c in test]
    fc = p.predict(prefixes, 20)
    mse = np.mean((fc.mean - y) ** 2)
    mse_last = np.mean((np.array([c.values[-1] for c in prefixes]) - y) ** 2)
    assert mse < mse_last
    cover = np.mean((fc.quantile(0.05) <= y) & (y <= fc.quantile(0.95)))
    assert 0.75 <= cover <= 1.0
    dead = [i for i, c in enumerate(test) if c.values.max() == 0.0]
    assert dead and np.median(fc.cdf(np.zeros(len(test)))[dead]) > 0.3  # atom at 0 when flat
    q = BakerPredictor(model=p.model_name_).fit(train)  # fixed model, no selection
    assert q.cv_scores_ == {} and q.model_name_ == p.model_name_
    assert p.refit(train).model_name_ == p.model_name_


def test_baker_mixed_lengths_and_horizon() -> None:
    curves = synthetic_curves(n=60, horizon=12, seed=3)
    p = BakerPredictor().fit(curves)
    batch = [Curve(c.values[: 1 + i % 11], c.features) for i, c in enumerate(curves[:22])]
    check_forecast(p.predict(batch, 12), 22)
    full = p.predict([curves[0]], 12)  # the horizon value is observed
    assert abs(float(full.mean[0]) - float(curves[0].values[-1])) < 1e-3
    with pytest.raises(PredictorError):
        p.predict([curves[0]], 5)
    with pytest.raises(PredictorError):
        p.predict([Curve(np.array([0.2, 1.5]))], 12)


@pytest.mark.parametrize("opts", [{"model": "gbm"}, {"min_curves": 1}, {"max_rows": 10},
                                  {"components": True}])
def test_baker_validates_options(opts: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BakerPredictor(**opts)  # type: ignore[arg-type]


def _takeoff_curves(n: int, horizon: int, seed: int) -> list[Curve]:
    """Every curve sits at exactly 0 for 3 epochs; it then takes off only when its first config
    feature exceeds 0.7 (the second is noise), like optimiser settings on TaskSet."""
    rng = np.random.default_rng(seed)
    feats = rng.uniform(0, 1, (n, 2))
    t = np.arange(horizon)
    out = []
    for f in feats:
        v = np.zeros(horizon)
        if f[0] > 0.7:
            v = np.clip((0.4 + 0.5 * f[0]) * (1 - np.exp(-0.3 * np.maximum(t - 2, 0)))
                        + rng.normal(0, 0.01, horizon), 0, 1)
            v[:3] = 0.0
        out.append(Curve(v, f))
    return out


def test_baker_tail_at_zero_follows_the_config() -> None:
    p = BakerPredictor(seed=0).fit(_takeoff_curves(300, 20, seed=3))
    assert p.hurdle_ is not None
    probe = [Curve(np.zeros(1), np.array([x, 0.5])) for x in (0.05, 0.3, 0.85, 0.95)]
    fc = p.predict(probe, 20)
    check_forecast(fc, 4)
    tail = 1.0 - fc.cdf(np.full(4, 0.5))
    assert tail[2] > 0.3 and tail[3] > 0.3  # configs that take off: the tail is substantial
    assert tail[0] < 0.01 and tail[1] < 0.01  # configs that never did: stop at delta 0.01
    atom = fc.cdf(np.zeros(4))
    assert atom[0] > 0.9 and atom[3] < 0.5  # exact 0 is an atom, not a kernel around 0
