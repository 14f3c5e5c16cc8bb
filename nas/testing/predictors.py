"""Conformance checks for learning-curve predictors, forecasts and stopping policies.

Third-party plug-ins call these from their own tests (plain functions that raise
:class:`~nas.testing.ConformanceError` naming the check and saying what is wrong, also under
``python -O``), or subclass :class:`~nas.testing.PredictorTestCase`::

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
from nas.interfaces import Action, Curve, Decision, Direction, Forecast, StoppingPolicy, TrialView
from nas.policies import StudyCurves
from nas.testing._conformance import require

__all__ = [
    "check_forecast",
    "check_policy",
    "check_predictor",
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
                    Direction.MAXIMIZE.value, "synthetic")


def synthetic_curves(n: int = 80, horizon: int = 20, seed: int = 0) -> list[Curve]:
    """The complete curves of :func:`synthetic_curve_set` as :class:`Curve` objects."""
    cs = synthetic_curve_set(n, horizon, 1, seed)
    feats = cs.config_features
    if feats is None:  # pragma: no cover - synthetic_curve_set always makes features
        raise RuntimeError("synthetic_curve_set made no features")
    return [Curve(cs.curves[i], feats[i], "g0") for i in range(n)]


def check_forecast(fc: Forecast, n: int, *, atol: float = 0.02) -> None:
    """A valid batched distribution on [0, 1]: shapes (n,), quantiles ordered and inside [0, 1],
    cdf monotone in [0, 1], cdf(quantile(q)) >= q - atol (and close for interior quantiles),
    logpdf finite inside (0, 1)."""
    mean = np.asarray(fc.mean, dtype=np.float64)
    require("check_forecast", mean.shape == (n,), f"mean has shape {mean.shape}, expected ({n},)")
    require("check_forecast",
            np.all(np.isfinite(mean)) and np.all((mean >= -1e-9) & (mean <= 1 + 1e-9)),
            "mean must be finite and inside [0, 1]")
    qs = np.stack([np.asarray(fc.quantile(q), dtype=np.float64) for q in QUANTILES])
    require("check_forecast", qs.shape == (len(QUANTILES), n),
            f"quantile shape {qs.shape[1:]} != ({n},)")
    require("check_forecast", np.all(np.diff(qs, axis=0) >= -1e-9),
            "quantiles must be ordered in q")
    require("check_forecast", np.all((qs >= -1e-9) & (qs <= 1 + 1e-9)),
            "quantiles must lie in [0, 1]")
    grid = np.linspace(-0.05, 1.05, 45)
    cd = np.stack([np.asarray(fc.cdf(np.full(n, y)), dtype=np.float64) for y in grid])
    require("check_forecast",
            np.all(np.isfinite(cd)) and np.all((cd >= -1e-9) & (cd <= 1 + 1e-9)),
            "cdf values must lie in [0, 1]")
    require("check_forecast", np.all(np.diff(cd, axis=0) >= -1e-9), "cdf must be non-decreasing")
    require("check_forecast",
            np.allclose(cd[0], 0.0, atol=1e-9) and np.allclose(cd[-1], 1.0, atol=1e-9),
            "cdf must be 0 below 0 and 1 above 1")
    for q, row in zip(QUANTILES, qs):
        back = np.asarray(fc.cdf(row), dtype=np.float64)
        require("check_forecast", np.all(back >= q - atol),
                f"cdf(quantile({q})) < {q} - {atol}: {back.min():.4f}")
        inner = (row > 1e-6) & (row < 1 - 1e-6)  # away from atoms F jumps over q
        if inner.any():
            below = np.asarray(fc.cdf(np.maximum(row - 1e-4, 0.0)), dtype=np.float64)
            require("check_forecast", np.all(below[inner] <= q + atol),
                    f"quantile({q}) is not the smallest y with cdf(y) >= q")
    lp = np.stack([np.asarray(fc.logpdf(np.full(n, y)), dtype=np.float64)
                   for y in (0.01, 0.3, 0.7, 0.99)])
    require("check_forecast", np.all(np.isfinite(lp)), "logpdf must be finite inside (0, 1)")


def check_predictor(predictor: Any, curves: Sequence[Curve], *, horizon: int | None = None) -> None:
    """``fit`` returns self; ``predict`` returns valid forecasts for a batch of mixed prefix
    lengths; a curve's forecast is the same alone as inside the batch."""
    curves = list(curves)
    horizon = horizon or len(curves[0])
    half = len(curves) // 2
    require("check_predictor", predictor.fit(curves[:half]) is predictor, "fit must return self")
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
            require("check_predictor", abs(a - b) < 1e-6,
                    f"quantile({q}) of curve {i}: {a} alone, {b} in batch")
        for y in (0.0, 0.25, 0.5):
            a = float(np.asarray(alone.cdf(np.array([y])))[0])
            b = float(np.asarray(fc.cdf(np.full(len(batch), y)))[i])
            require("check_predictor", abs(a - b) < 1e-6,
                    f"cdf({y}) of curve {i}: {a} alone, {b} in batch")


def _view(done: np.ndarray, others: np.ndarray) -> StudyCurves:
    """A study of complete trials ``done`` and unfinished ones ``others`` (rows of values)."""
    view = StudyCurves()
    for row in done:
        view.curves[len(view.curves)] = [float(v) for v in row]
        view.complete[len(view.curves) - 1] = float(row[-1])
    for row in others:
        view.curves[len(view.curves)] = [float(v) for v in row]
    return view


def check_policy(policy: StoppingPolicy, horizon: int = 10) -> None:
    """``decide`` returns a Decision with action CONTINUE or STOP for every step, also on an
    empty study, and does not change its inputs (policies keep no hidden state)."""
    curves = synthetic_curve_set(12, horizon, 1, 0).curves
    for view in (_view(curves[:0], curves[:0]), _view(curves[:6], curves[6:9])):
        for i in (9, 10, 11):
            for t in range(1, horizon):
                vals = curves[i, :t].copy()
                d = policy.decide(TrialView(i, vals, horizon), view)
                require("check_policy", isinstance(d, Decision),
                        f"decide returned {type(d).__name__}")
                require("check_policy", d.action in (Action.CONTINUE, Action.STOP),
                        f"action {d.action!r}")
                require("check_policy", np.array_equal(vals, curves[i, :t]),
                        "decide modified the trial values")
