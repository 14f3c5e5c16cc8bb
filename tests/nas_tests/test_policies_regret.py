"""The regret policy: EI in regret units, and late bloomers kept by what the study has seen.

A synthetic study: ordinary trials rise at once to a plateau near 0.5; planted *late bloomers*
(config feature 1.0, the others 0.0, so their configs mark them) sit at 0 for 8 epochs and then
climb to 0.90-0.92; the study's first trial is a slow starter that ends at 0.55.  The predictor reads only the prefix: a flat prefix gets a small tail (12% of
its mass spread over [0.5, 1]), so against a best of 0.9 its expected improvement is 1.2e-3, in
between the policy's tolerance_min (8e-4) and tolerance (1.5e-3).  A prefix-only EI rule at the
same tolerance stops every later bloomer and loses the best one; the regret policy keeps them,
because the study has contenders (the slow starter, then the first bloomer, completed while the
best was still about 0.55) that were just as flat at those steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from nas.bench._replay import replay_group
from nas.errors import ConfigError
from nas.interfaces import CONTINUE, STOP, Decision, TrialView
from nas.policies import RegretPolicy, StudyCurves, make_policy
from nas.policies._regret import expected_improvement
from predictors import HistogramForecast

T = 20
EDGES = np.linspace(0.0, 1.0, 201)


def _hist(rows: list[tuple[float, float, float]]) -> HistogramForecast:
    """Rows of (atom at 0, tail mass uniform on [lo, hi]) as a bar distribution; ``lo`` = -1
    means the tail sits uniformly on [0.5, 1] next to the atom."""
    probs = np.zeros((len(rows), EDGES.size - 1))
    a0 = np.zeros(len(rows))
    mids = 0.5 * (EDGES[1:] + EDGES[:-1])
    for r, (atom, lo, hi) in enumerate(rows):
        a0[r] = atom
        sel = (mids >= lo) & (mids <= hi)
        probs[r, sel] = (1.0 - atom) / sel.sum()
    return HistogramForecast(EDGES, probs, a0, np.zeros(len(rows)))


class PrefixOnly:
    """A pretrained-style predictor that reads only the prefix."""

    name = "prefix-only"
    learns_from_curves = False

    def fit(self, curves):
        return self

    def predict(self, curves, horizon):
        rows = []
        for c in curves:
            v = np.asarray(c.values, dtype=float)
            if v.max() <= 0.0:  # flat: mostly stays at 0, a 12% tail on [0.5, 1]
                rows.append((0.88, 0.5, 1.0))
            else:  # rising: extrapolates its last slope, +-0.03
                slope = float(v[-1] - v[-2]) if v.size > 1 else float(v[-1])
                m = min(max(float(v[-1]) + max(slope, 0.0) * (horizon - v.size), 0.03), 0.97)
                rows.append((0.0, m - 0.03, m + 0.03))
        return _hist(rows)


class PrefixEI:
    """The plain rule the regret policy improves on: stop when the prefix-only EI < tolerance."""

    name = "prefix-ei"
    needs_predictor = True  # declared: the stopping session hands it the study's predictor

    def __init__(self, tolerance: float = 1.5e-3) -> None:
        self.tolerance = tolerance

    def decide(self, trial: TrialView, study) -> Decision:
        if study.best_value is None or trial.step >= trial.horizon:
            return Decision(CONTINUE)
        fc = study.predictor.predict([trial.curve()], trial.horizon)
        ei = expected_improvement(fc, study.best_value)
        return Decision(STOP if ei < self.tolerance else CONTINUE, f"EI {ei:.2g}")


def _study() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curves, features and the replay order: 30 ordinary trials, 4 planted late bloomers."""
    rng = np.random.default_rng(0)
    t = np.arange(1, T + 1)
    rows, feats, bloom = [], [], []
    for _ in range(30):
        a = rng.uniform(0.40, 0.55)
        rows.append(a * (1.0 - np.exp(-t / 2.0)))
        feats.append([0.0, rng.normal()])
        bloom.append(False)
    for final in (0.90, 0.905, 0.91, 0.92, 0.55):  # the last: a slow starter, mediocre
        c = np.where(t <= 8, 0.0, final * (t - 8) / (T - 8))
        rows.append(c)
        feats.append([1.0, rng.normal()])
        bloom.append(True)
    curves = np.clip(np.array(rows), 0.0, 1.0)
    # the study's first trial starts slowly (it shows that flat runs take off here); then
    # ordinary trials, the bloomers (the best one last) interleaved with the rest
    order = [34] + list(range(10)) + [30] + list(range(10, 20)) + [31, 32] \
        + list(range(20, 30)) + [33]
    return curves, np.array(feats), np.array(order)


def test_expected_improvement_exact_for_bars_and_generic() -> None:
    fc = _hist([(0.88, 0.5, 1.0)])
    # 12% uniform on [0.5, 1]: E[(y - b)+] = 0.12 * (1 - b)^2 / (2 * 0.5)
    assert expected_improvement(fc, 0.9) == pytest.approx(0.12 * 0.01, rel=1e-9)
    assert expected_improvement(fc, 1.0) == 0.0

    class NoBars:  # no edges/probs: the trapezoid rule on cdf
        def __init__(self, f: HistogramForecast) -> None:
            self.f = f

        def cdf(self, y):
            return self.f.cdf(y)

        def take(self, rows):
            return NoBars(self.f.take(rows))

    assert expected_improvement(NoBars(fc), 0.9) == pytest.approx(1.2e-3, rel=1e-3)


def test_planted_late_bloomers_are_kept_and_prefix_ei_loses_them() -> None:
    curves, feats, order = _study()
    best_all = float(curves[:, -1].max())
    pred = PrefixOnly()
    run = replay_group(curves, feats, "synthetic", RegretPolicy(), order, pred)
    plain = replay_group(curves, feats, "synthetic", PrefixEI(1.5e-3), order, pred)
    assert best_all - run.best == 0.0  # the best bloomer (0.92) completed
    assert best_all - plain.best > 0.015  # the prefix-only rule stopped it
    # and the regret policy still stops the ordinary trials early
    assert run.consumed < 0.75 * curves.shape[0] * T


def test_decision_of_a_flat_trial_next_to_a_flat_contender() -> None:
    study = StudyCurves()
    study.set_predictor(PrefixOnly())  # type: ignore[arg-type]
    t = np.arange(1, T + 1)
    for n in range(5):
        c = 0.5 * (1.0 - np.exp(-t / 2.0))
        study.curves[n] = list(c)
        study.complete[n] = float(c[-1])
    bloomer = np.where(t <= 8, 0.0, 0.9 * (t - 8) / (T - 8))
    study.curves[5] = list(bloomer)
    study.complete[5] = 0.9
    trial = TrialView(6, np.zeros(5), T, np.array([1.0, 0.0]))
    pol = RegretPolicy()
    d = pol.decide(trial, study)
    assert d.action == CONTINUE and "contender" in d.reason
    assert d.forecast is not None and d.forecast.p_improve == pytest.approx(0.12 * 0.2, rel=1e-6)
    assert d.threshold == 0.9
    # without the flat contender the same prefix stops (EI 1.2e-3 < tolerance 1.5e-3) once the
    # study has min_contenders (3) contenders; with fewer it does not trust the forecast yet
    del study.complete[5], study.curves[5]
    for n, a in ((5, 0.9), (20, 0.89)):
        study.curves[n] = list(a * (1.0 - np.exp(-t / 2.0)))
        study.complete[n] = float(study.curves[n][-1])
    d = pol.decide(trial, study)
    assert d.action == CONTINUE
    study.curves[21] = list(0.88 * (1.0 - np.exp(-t / 2.0)))
    study.complete[21] = float(study.curves[21][-1])
    d = pol.decide(trial, study)
    assert d.action == STOP and d.reason.startswith("EI ") and "< tolerance" in d.reason
    # below tolerance_min nothing protects: a contender flat at step 5 does not help
    pol2 = RegretPolicy(tolerance=2e-3, tolerance_min=1.5e-3)
    study.curves[6] = list(bloomer)
    study.complete[6] = 0.9
    d = pol2.decide(TrialView(7, np.zeros(5), T), study)
    assert d.action == STOP and "tolerance_min" in d.reason


def test_rung_rank_stop_needs_ei_below_rung_tolerance() -> None:
    study = StudyCurves()
    study.set_predictor(PrefixOnly())  # type: ignore[arg-type]
    t = np.arange(1, T + 1)
    for n, a in enumerate((0.3, 0.5, 0.6, 0.62)):
        study.curves[n] = list(a * (1.0 - np.exp(-t / 2.0)))
        study.complete[n] = float(study.curves[n][-1])
    pol = RegretPolicy(tolerance=0.0, tolerance_min=0.0, rung_tolerance=0.05, margin=0.0,
                       contender_gap=0.0)
    # step 4 is a rung (eta 2: 1, 2, 4, 8, 16); 0.09 is below the median of the values there
    low = TrialView(9, 0.1 * (1.0 - np.exp(-np.arange(1, 5) / 2.0)), T)
    d = pol.decide(low, study)
    assert d.action == STOP and d.reason.startswith("rung 4")
    off_rung = TrialView(9, low.values[:3], T)
    assert pol.decide(off_rung, study).action == CONTINUE
    # the same prefix with EI above rung_tolerance goes on
    assert RegretPolicy(tolerance=0.0, tolerance_min=0.0, rung_tolerance=0.0, margin=0.0,
                        contender_gap=0.0).decide(low, study).action == CONTINUE


@pytest.mark.parametrize("opts", [
    {"tolerance": -1e-3}, {"tolerance": 1.0}, {"tolerance_min": 2e-3, "tolerance": 1e-3},
    {"rung_tolerance": "x"}, {"reduction_factor": 1.0}, {"grace_period": 0},
    {"contender_gap": 1.5}, {"margin": -0.1}, {"min_epochs": 0}, {"summarise": "yes"},
    {"min_contenders": -1}, {"min_contenders": 2.5},
])
def test_options_are_validated(opts: dict) -> None:
    with pytest.raises(ConfigError):
        RegretPolicy(**opts)


def test_declared_capabilities_and_lookup() -> None:
    pol = make_policy("nas.policies:RegretPolicy", {"tolerance": 2e-3})
    assert isinstance(pol, RegretPolicy) and pol.tolerance == 2e-3
    assert RegretPolicy.needs_predictor is True
    assert set(RegretPolicy.options) <= set(RegretPolicy.__init__.__code__.co_varnames)
    assert pol.rungs(20) == [1, 2, 4, 8, 16]
    with pytest.raises(ConfigError):
        make_policy("nas.policies:RegretPolicy", {"delta": 0.1})


def test_analogs_that_plateaued_stop_a_trial_the_forecast_keeps() -> None:
    """A task whose runs saturate: the prefix-only forecast extrapolates a rising prefix far above
    the best, but every completed run that stood where this one stands gained almost nothing."""
    study = StudyCurves()
    study.set_predictor(PrefixOnly())  # type: ignore[arg-type]
    t = np.arange(1, T + 1)
    for n in range(3):  # contenders: fast to 0.69, end at 0.70
        study.curves[n] = list(np.minimum(0.69 + 0.01 * (t >= T), 0.7))
        study.complete[n] = 0.7
    for n in range(3, 6):  # analogs: 0.6 at step 5, end at 0.61
        study.curves[n] = list(np.minimum(0.12 * t, 0.6) + 0.01 * (t >= T))
        study.complete[n] = 0.61
    trial = TrialView(9, np.array([0.2, 0.3, 0.4, 0.5, 0.6]), T)
    pol = RegretPolicy(contender_gap=0.05)
    d = pol.decide(trial, study)
    assert d.action == STOP and "no analog" in d.reason
    assert RegretPolicy(contender_gap=0.05, analogs=4).decide(trial, study).action == CONTINUE
    assert RegretPolicy(contender_gap=0.05, analogs=0).decide(trial, study).action == CONTINUE
