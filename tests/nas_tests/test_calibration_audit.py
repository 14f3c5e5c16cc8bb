"""Recalibration of forecasts on a study's own trials, and the stop audit's false-stop estimate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from scipy import stats

from nas.bench import replay_group
from nas.calibration import CalibratedPredictor, PITCalibrator
from nas.interfaces import Curve
from nas.policies import PredictivePolicy, StopAudit, false_stop_summary, wilson_interval


class _Normal:
    """Row-wise normal forecasts (the synthetic forecasters' output)."""

    def __init__(self, mu: np.ndarray, sd: np.ndarray) -> None:
        self.mu, self.sd = np.asarray(mu, float), np.asarray(sd, float)

    def __len__(self) -> int:
        return int(self.mu.shape[0])

    def take(self, rows: Any) -> _Normal:
        return _Normal(self.mu[rows], self.sd[rows])

    @property
    def mean(self) -> np.ndarray:
        return self.mu

    def cdf(self, y: Any) -> np.ndarray:
        return stats.norm.cdf(y, self.mu, self.sd)

    def logpdf(self, y: Any) -> np.ndarray:
        return stats.norm.logpdf(y, self.mu, self.sd)

    def quantile(self, q: float) -> np.ndarray:
        return stats.norm.ppf(q, self.mu, self.sd)


class _LastValue:
    """Forecasts the final value as N(last value + gain, sd): a fixed (non-learning) predictor
    whose spread is wrong on purpose when ``sd`` differs from the data's noise."""

    learns_from_curves = False

    def __init__(self, sd: float, gain: float = 0.0) -> None:
        self.sd, self.gain = sd, gain

    def fit(self, curves: Sequence[Curve]) -> _LastValue:
        return self

    def predict(self, curves: Sequence[Curve], horizon: int) -> _Normal:
        last = np.array([float(np.asarray(c.values)[-1]) for c in curves])
        return _Normal(last + self.gain, np.full(last.shape, self.sd))


def _synthetic(n: int, horizon: int, noise: float, seed: int) -> list[Curve]:
    """Flat-ish curves whose final value is the running value plus N(0, noise)."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.3, 0.7, n)
    out = []
    for i in range(n):
        c = np.full(horizon, level[i])
        c[-1] = level[i] + rng.normal(0.0, noise)
        out.append(Curve(c))
    return out


def _coverage90(pred: Any, curves: list[Curve], horizon: int) -> float:
    prefixes = [Curve(np.asarray(c.values)[:t]) for c in curves for t in range(1, horizon)]
    finals = np.array([float(np.asarray(c.values)[-1]) for c in curves for _ in range(1, horizon)])
    fc = pred.predict(prefixes, horizon)
    lo, hi = np.asarray(fc.quantile(0.05)), np.asarray(fc.quantile(0.95))
    return float(np.mean((finals >= lo) & (finals <= hi)))


@pytest.mark.parametrize("sd, raw_lo, raw_hi", [(0.2, 0.99, 1.0),     # over-wide
                                                (0.02, 0.3, 0.6)])    # over-narrow
def test_calibrator_fixes_over_wide_and_over_narrow_forecasters(sd: float, raw_lo: float,
                                                                 raw_hi: float) -> None:
    T, noise = 10, 0.05
    study, fresh = _synthetic(200, T, noise, 0), _synthetic(300, T, noise, 1)
    raw = _LastValue(sd)
    cov_raw = _coverage90(raw, fresh, T)
    assert raw_lo <= cov_raw <= raw_hi  # the forecaster is miscalibrated as built
    cal = CalibratedPredictor(_LastValue(sd)).fit_study(study)
    assert cal.calibrator.active
    cov = _coverage90(cal, fresh, T)
    assert 0.85 <= cov <= 0.95, (cov_raw, cov)
    # and the PIT on fresh curves is close to uniform (Kolmogorov-Smirnov distance)
    prefixes = [Curve(np.asarray(c.values)[:5]) for c in fresh]
    finals = np.array([float(np.asarray(c.values)[-1]) for c in fresh])
    u_raw = np.asarray(raw.predict(prefixes, T).cdf(finals))
    u = np.asarray(cal.predict(prefixes, T).cdf(finals))
    # (two samples, 200 and 300: a KS distance of ~0.12 is sampling noise at the 5% level)
    assert stats.kstest(u_raw, "uniform").statistic > 0.2
    assert stats.kstest(u, "uniform").statistic < 0.15


def test_calibrator_is_the_identity_until_enough_trials() -> None:
    cal = PITCalibrator(min_trials=8)
    u = np.linspace(0, 1, 11)
    cal.fit(np.zeros(5, int), np.full(5, 0.5), np.full(5, 0.5), np.ones(5), n_trials=5)
    assert not cal.active and np.allclose(cal.apply(u, np.zeros(11, int)), u)
    # a few heavily weighted audited trials are not enough evidence either
    cal.fit(np.zeros(5, int), np.full(5, 0.5), np.full(5, 0.5), np.full(5, 20.0),
            n_trials=100, trial_weight=np.full(5, 20.0))
    assert not cal.active
    cal.fit(np.zeros(40, int), np.full(40, 0.5), np.full(40, 0.5), np.ones(40), n_trials=40)
    assert cal.active
    got = cal.apply(u, np.zeros(11, int))
    assert got[2] < 0.2 and got[8] > 0.8  # the PITs all sit at 0.5: a steep map there
    assert np.all(np.diff(got) >= 0) and got[0] == 0.0 and got[-1] == 1.0


def test_stop_audit_draws_are_deterministic_and_at_the_rate() -> None:
    a, b = StopAudit(0.2, seed=7), StopAudit(0.2, seed=7)
    draws = [a.draw(n) for n in range(4000)]
    assert draws == [b.draw(n) for n in range(4000)]
    assert 0.17 < np.mean(draws) < 0.23
    assert draws != [StopAudit(0.2, seed=8).draw(n) for n in range(4000)]


def test_wilson_interval_and_summary() -> None:
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2
    lo, hi = wilson_interval(5, 50)
    assert lo < 0.1 < hi
    doc = false_stop_summary(50, 5, 2)
    assert doc["rate"] == pytest.approx(0.1) and doc["pending"] == 2 and doc["ci95"] == [lo, hi]
    assert false_stop_summary(0, 0)["rate"] is None


def test_audit_false_stop_estimate_is_unbiased_on_a_replay_with_known_answers() -> None:
    """Curves whose finals are known: the audited stops' false-stop share estimates the share
    of all would-be stops that were wrong (which a replay knows from the file)."""
    rng = np.random.default_rng(3)
    n, T = 120, 8
    level = rng.uniform(0.2, 0.8, n)
    jump = rng.normal(0.0, 0.2, n)  # the finals move away from the running value
    curves = np.repeat(level[:, None], T, axis=1)
    curves[:, -1] = np.clip(level + jump, 0, 1)
    audited = audited_false = stops = true_false = 0
    for seed in range(30):
        order = np.random.default_rng(seed).permutation(n)
        run = replay_group(curves, None, "g", PredictivePolicy(delta=0.3, epsilon=0.0), order,
                           _LastValue(0.03), audit=StopAudit(0.5, seed=seed))
        audited += run.audited
        audited_false += run.audited_false
        stops += run.stops
        true_false += run.true_false
    true_rate, est = true_false / stops, audited_false / audited
    assert 0.02 < true_rate < 0.6  # the policy does make wrong stops here
    assert audited > 500
    se = np.sqrt(true_rate * (1 - true_rate) / audited)
    assert abs(est - true_rate) < 3 * se, (est, true_rate, se, audited)
    assert se < true_rate / 3  # precise enough that an estimate of 0 would fail
