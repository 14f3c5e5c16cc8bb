"""Conformance checks for learning-curve predictors, forecasts and stopping policies.

Third-party plug-ins call these from their own tests (plain functions that raise
``AssertionError`` with a message saying what is wrong)::

    from nas.testing.predictors import check_predictor, synthetic_curves
    def test_my_predictor():
        check_predictor(MyPredictor(), synthetic_curves(n=60, horizon=20, seed=0))

Everything here runs offline on CPU in well under a minute with the default sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.curvefile import CurveSet
from nas.interfaces import Curve, Decision, Forecast, StoppingPolicy, TrialView

__all__ = [
    "check_forecast",
    "check_policy",
    "check_predict_document",
    "check_predictor",
    "check_replay_document",
    "synthetic_curve_set",
    "synthetic_curves",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def synthetic_curve_set(n: int = 80, horizon: int = 20, groups: int = 2, seed: int = 0,
                        at_zero: float = 0.5) -> CurveSet:
    """Saturating curves in [0, 1] with noise; a share ``at_zero`` stays exactly at 0 (chance
    level) like most runs of a real random search; two config features drive the plateau."""
    rng = np.random.default_rng(seed)
    lr = rng.uniform(-4, -1, n)
    width = rng.uniform(0, 1, n)
    plateau = np.clip(0.9 - 0.25 * (lr + 2.5) ** 2 + 0.1 * width + rng.normal(0, 0.05, n), 0, 1)
    rate = rng.uniform(0.1, 0.6, n)
    t = np.arange(1, horizon + 1)
    curves = plateau[:, None] * (1 - np.exp(-rate[:, None] * (t[None, :] - 1)))
    curves = np.clip(curves + rng.normal(0, 0.01, (n, horizon)), 0, 1)
    dead = rng.uniform(size=n) < at_zero
    curves[dead] = 0.0
    task = np.array([f"g{i % groups}" for i in range(n)], dtype=object)
    feats = np.column_stack([lr, width])
    return CurveSet(curves, np.full(n, horizon), None, task, feats, ["log_lr", "width"],
                    "maximize", "synthetic")


def synthetic_curves(n: int = 80, horizon: int = 20, seed: int = 0) -> list[Curve]:
    """The complete curves of :func:`synthetic_curve_set` as :class:`Curve` objects."""
    cs = synthetic_curve_set(n, horizon, 1, seed)
    assert cs.config_features is not None
    return [Curve(cs.curves[i], cs.config_features[i], "g0") for i in range(n)]


def check_forecast(fc: Forecast, n: int, *, atol: float = 0.02) -> None:
    """A valid batched distribution on [0, 1]: shapes (n,), quantiles ordered and inside [0, 1],
    cdf monotone in [0, 1], cdf(quantile(q)) >= q - atol (and close for interior quantiles),
    logpdf finite inside (0, 1)."""
    mean = np.asarray(fc.mean, dtype=np.float64)
    assert mean.shape == (n,), f"mean has shape {mean.shape}, expected ({n},)"
    assert np.all(np.isfinite(mean)) and np.all((mean >= -1e-9) & (mean <= 1 + 1e-9)), \
        "mean must be finite and inside [0, 1]"
    qs = np.stack([np.asarray(fc.quantile(q), dtype=np.float64) for q in QUANTILES])
    assert qs.shape == (len(QUANTILES), n), f"quantile shape {qs.shape[1:]} != ({n},)"
    assert np.all(np.diff(qs, axis=0) >= -1e-9), "quantiles must be ordered in q"
    assert np.all((qs >= -1e-9) & (qs <= 1 + 1e-9)), "quantiles must lie in [0, 1]"
    grid = np.linspace(-0.05, 1.05, 45)
    cd = np.stack([np.asarray(fc.cdf(np.full(n, y)), dtype=np.float64) for y in grid])
    assert np.all(np.isfinite(cd)) and np.all((cd >= -1e-9) & (cd <= 1 + 1e-9)), \
        "cdf values must lie in [0, 1]"
    assert np.all(np.diff(cd, axis=0) >= -1e-9), "cdf must be non-decreasing"
    assert np.allclose(cd[0], 0.0, atol=1e-9) and np.allclose(cd[-1], 1.0, atol=1e-9), \
        "cdf must be 0 below 0 and 1 above 1"
    for q, row in zip(QUANTILES, qs):
        back = np.asarray(fc.cdf(row), dtype=np.float64)
        assert np.all(back >= q - atol), f"cdf(quantile({q})) < {q} - {atol}: {back.min():.4f}"
        inner = (row > 1e-6) & (row < 1 - 1e-6)  # away from atoms F jumps over q
        if inner.any():
            below = np.asarray(fc.cdf(np.maximum(row - 1e-4, 0.0)), dtype=np.float64)
            assert np.all(below[inner] <= q + atol), \
                f"quantile({q}) is not the smallest y with cdf(y) >= q"
    lp = np.stack([np.asarray(fc.logpdf(np.full(n, y)), dtype=np.float64)
                   for y in (0.01, 0.3, 0.7, 0.99)])
    assert np.all(np.isfinite(lp)), "logpdf must be finite inside (0, 1)"


def check_predictor(predictor: Any, curves: Sequence[Curve], *, horizon: int | None = None) -> None:
    """``fit`` returns self; ``predict`` returns valid forecasts for a batch of mixed prefix
    lengths; a curve's forecast is the same alone as inside the batch."""
    curves = list(curves)
    horizon = horizon or len(curves[0])
    half = len(curves) // 2
    assert predictor.fit(curves[:half]) is predictor, "fit must return self"
    rng = np.random.default_rng(0)
    test = curves[half:]
    cuts = rng.integers(1, horizon, size=len(test))
    batch = [Curve(c.values[:k], c.features, c.group) for c, k in zip(test, cuts)]
    fc = predictor.predict(batch, horizon)
    check_forecast(fc, len(batch))
    for i in (0, len(batch) // 2, len(batch) - 1):
        alone = predictor.predict([batch[i]], horizon)
        check_forecast(alone, 1)
        for q in (0.05, 0.5, 0.95):
            a = float(np.asarray(alone.quantile(q))[0])
            b = float(np.asarray(fc.quantile(q))[i])
            assert abs(a - b) < 1e-6, f"quantile({q}) of curve {i}: {a} alone, {b} in batch"
        for y in (0.0, 0.25, 0.5):
            a = float(np.asarray(alone.cdf(np.array([y])))[0])
            b = float(np.asarray(fc.cdf(np.full(len(batch), y)))[i])
            assert abs(a - b) < 1e-6, f"cdf({y}) of curve {i}: {a} alone, {b} in batch"


class _View:
    def __init__(self, done: np.ndarray, others: np.ndarray) -> None:
        self._done, self._others = done, others

    @property
    def best_value(self) -> float | None:
        return float(self._done[:, -1].max()) if len(self._done) else None

    @property
    def n_complete(self) -> int:
        return len(self._done)

    def values_at(self, step: int, *, complete_only: bool = False) -> np.ndarray:
        src = self._done if complete_only else np.vstack([self._done, self._others])
        return src[:, step - 1] if src.shape[1] >= step else np.zeros(0)

    @property
    def predictor(self) -> Any:
        return None


def check_policy(policy: StoppingPolicy, horizon: int = 10) -> None:
    """``decide`` returns a Decision with action CONTINUE or STOP for every step, also on an
    empty study, and does not change its inputs (policies keep no hidden state)."""
    curves = synthetic_curve_set(12, horizon, 1, 0).curves
    for view in (_View(curves[:0], curves[:0]), _View(curves[:6], curves[6:9])):
        for i in (9, 10, 11):
            for t in range(1, horizon):
                vals = curves[i, :t].copy()
                d = policy.decide(TrialView(i, vals, horizon), view)  # type: ignore[arg-type]
                assert isinstance(d, Decision), f"decide returned {type(d).__name__}"
                assert d.action in ("CONTINUE", "STOP"), f"action {d.action!r}"
                assert np.array_equal(vals, curves[i, :t]), "decide modified the trial values"


def check_predict_document(doc: dict[str, Any], cutoffs: Sequence[str]) -> None:
    """The JSON of ``nas bench predict`` has the documented keys and sane values."""
    for key in ("predictor", "file", "n", "cutoffs", "threads"):
        assert key in doc, f"predict JSON lacks {key!r}"
    assert sorted(doc["cutoffs"]) == sorted(cutoffs), f"cutoffs {sorted(doc['cutoffs'])}"
    for k, m in doc["cutoffs"].items():
        assert set(m) >= {"loglik", "mse", "coverage90", "us_per_curve", "mse_last_value"}, \
            f"cutoff {k} keys {sorted(m)}"
        assert 0.0 <= m["coverage90"] <= 1.0 and m["mse"] >= 0 and m["mse_last_value"] >= 0
        assert np.isfinite(m["loglik"]) and m["us_per_curve"] > 0


def check_replay_document(doc: dict[str, Any], groups: Sequence[str]) -> None:
    """The JSON of ``nas bench replay`` has the documented keys and sane values."""
    for key in ("policy", "predictor", "delta", "speedup", "regret", "worst_regret", "groups"):
        assert key in doc, f"replay JSON lacks {key!r}"
    assert sorted(doc["groups"]) == sorted(groups), f"groups {sorted(doc['groups'])}"
    for g, m in doc["groups"].items():
        assert set(m) >= {"speedup", "regret"}, f"group {g} keys {sorted(m)}"
        assert m["speedup"] >= 1.0 - 1e-9 and m["regret"] >= -1e-12
    means = [m["speedup"] for m in doc["groups"].values()]
    assert abs(doc["speedup"] - float(np.mean(means))) < 1e-9, "speedup is not the group mean"
    assert doc["worst_regret"] >= doc["regret"] - 1e-12
