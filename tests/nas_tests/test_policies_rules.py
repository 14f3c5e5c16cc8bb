"""Stopping policies on hand-made curves: Optuna's median rule, Ray's ASHA rule (ties included),
the predictive rule, the refit schedule, option validation, and agreement with the originals."""

from __future__ import annotations

import numpy as np
import pytest

from nas.bench import add_trial, replay_group
from nas.errors import ConfigError
from nas.interfaces import Curve, TrialView
from nas.policies import (
    ASHAPolicy,
    MedianPolicy,
    NoStopping,
    PredictivePolicy,
    StudyCurves,
    make_policy,
    should_refit,
)
from nas.testing.predictors import check_policy, synthetic_curve_set
from predictors import CensoredMixtureForecast


def study_of(complete: list[list[float]], stopped: list[list[float]] = (),  # type: ignore[assignment]
             predictor: object = None) -> StudyCurves:
    s = StudyCurves()
    s.set_predictor(predictor)  # type: ignore[arg-type]
    for c in complete:
        add_trial(s, np.array(c, float), complete=True)
    for c in stopped:
        add_trial(s, np.array(c, float), complete=False)
    return s


def tv(values: list[float], horizon: int = 4) -> TrialView:
    return TrialView(999, np.array(values, float), horizon)  # a trial not in the study


# ----------------------------------------------------------------------------- median
def test_median_stops_strictly_below_median_of_complete_trials() -> None:
    s = study_of([[0.1, 0.2, 0.3, 0.4], [0.3, 0.4, 0.5, 0.6], [0.5, 0.6, 0.7, 0.8]])
    pol = MedianPolicy(n_startup_trials=3)
    assert pol.decide(tv([0.2]), s).stop  # 0.2 < median 0.3 at step 1
    assert not pol.decide(tv([0.3]), s).stop  # tie continues
    assert pol.decide(tv([0.35, 0.1]), s).stop  # best so far 0.35 < median 0.4 at step 2
    assert not pol.decide(tv([0.45, 0.1]), s).stop  # best so far 0.45 >= 0.4 (last is 0.1)


def test_median_uses_best_value_so_far_and_only_complete_trials() -> None:
    s = study_of([[0.1, 0.1], [0.1, 0.1], [0.2, 0.2]], stopped=[[0.9, 0.9]] * 5)
    pol = MedianPolicy(n_startup_trials=1)
    assert not pol.decide(tv([0.5, 0.0]), s).stop  # best 0.5 >= median 0.1; stopped ignored
    assert MedianPolicy(n_startup_trials=1, complete_only=False).decide(tv([0.5, 0.0]), s).stop


def test_median_startup_warmup_interval_and_nan() -> None:
    s = study_of([[0.5, 0.5, 0.5, 0.5]] * 2)
    assert not MedianPolicy(n_startup_trials=3).decide(tv([0.0]), s).stop
    assert MedianPolicy(n_startup_trials=2).decide(tv([0.0]), s).stop
    assert not MedianPolicy(n_startup_trials=0).decide(tv([0.0]), study_of([])).stop
    assert not MedianPolicy(1, n_warmup_steps=2).decide(tv([0.0]), s).stop
    assert MedianPolicy(1, n_warmup_steps=2).decide(tv([0.0, 0.0]), s).stop
    pol = MedianPolicy(1, n_warmup_steps=1, interval_steps=2)  # pruning steps 1, 3, 5, ...
    assert [pol.decide(tv([0.0] * t), s).stop for t in (1, 2, 3)] == [True, False, True]
    assert MedianPolicy(1).decide(tv([float("nan")]), s).stop


def test_median_matches_optuna_median_pruner() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cs = synthetic_curve_set(60, 12, 1, seed=3)
    y = np.round(cs.curves, 2)  # coarse values: many ties
    order = np.random.default_rng(1).permutation(60)
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
    expected = 0
    for i in order:
        trial = study.ask()
        stop = 12
        for t in range(1, 12):
            trial.report(float(y[i, t - 1]), t)
            if trial.should_prune():
                stop = t
                break
        expected += stop
        if stop < 12:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(y[i, -1]))
    consumed = replay_group(y, None, "g", MedianPolicy(n_startup_trials=5), order).consumed
    assert consumed == expected
    assert consumed < 60 * 12


# ------------------------------------------------------------------------------- asha
def test_asha_rungs_follow_ray() -> None:
    assert ASHAPolicy().rungs(51) == [1, 3, 9, 27]
    assert ASHAPolicy(grace_period=2, reduction_factor=2).rungs(20) == [2, 4, 8, 16]
    assert ASHAPolicy(grace_period=1, reduction_factor=3).rungs(27) == [1, 3, 9]
    assert ASHAPolicy(grace_period=5).rungs(4) == []


def test_asha_cutoff_quantile_and_ties() -> None:
    pol = ASHAPolicy(grace_period=1, reduction_factor=3)
    s = study_of([[0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2]], stopped=[[0.3]])
    # rung 1 holds 0.1, 0.2, 0.3 (stopped trials count); cutoff = 66.7th percentile = 0.2333
    assert pol.decide(tv([0.2]), s).stop
    assert not pol.decide(tv([0.24]), s).stop
    assert not pol.decide(tv([0.0, 0.0]), s).stop  # step 2 is not a rung
    ties = study_of([[0.5] * 4] * 3)
    assert not pol.decide(tv([0.5]), ties).stop  # equal to the cutoff: continue
    assert pol.decide(tv([0.49]), ties).stop
    assert not pol.decide(tv([0.0]), study_of([])).stop  # empty rung: continue
    # rung 3 holds only the 2 trials that got there (0.1, 0.2): cutoff 0.1667
    assert not pol.decide(tv([0.0, 0.0, 0.17]), s).stop
    assert pol.decide(tv([0.0, 0.0, 0.16]), s).stop


def test_asha_matches_ray_bracket() -> None:
    async_hb = pytest.importorskip("ray.tune.schedulers.async_hyperband")
    cs = synthetic_curve_set(50, 15, 1, seed=5)
    y = np.round(cs.curves, 2)
    order = np.random.default_rng(2).permutation(50)
    bracket = async_hb._Bracket(1, 15, 3, 0)

    class _T:
        def __init__(self, tid: str) -> None:
            self.trial_id = tid

    expected = 0
    for i in order:
        trial, stop = _T(str(i)), 15
        for t in range(1, 15):
            if bracket.on_result(trial, t, float(y[i, t - 1])) == "STOP":
                stop = t
                break
        expected += stop
    consumed = replay_group(y, None, "g", ASHAPolicy(1, 3), order).consumed
    assert consumed == expected
    assert consumed < 50 * 15


# ------------------------------------------------------------------------- predictive
class LastValue:
    """A real (if naive) predictor: the final value is the last one plus Gaussian noise."""

    name = "last"

    def fit(self, curves: list[Curve]) -> LastValue:
        return self

    def predict(self, curves: list[Curve], horizon: int) -> CensoredMixtureForecast:
        return CensoredMixtureForecast(np.array([c.values[-1] for c in curves]), 0.05)


def test_predictive_rule() -> None:
    pol = PredictivePolicy(delta=0.05, min_epochs=2)
    empty = study_of([], predictor=LastValue())
    assert not pol.decide(tv([0.0, 0.0]), empty).stop  # nothing completed yet
    s = study_of([[0.5, 0.6, 0.7, 0.8]], predictor=LastValue())
    assert not pol.decide(tv([0.0]), s).stop  # before min_epochs
    d = pol.decide(tv([0.0, 0.1]), s)
    f = d.forecast
    assert d.stop and f is not None and f.p_improve is not None and f.p_improve < 0.05
    assert f.q05 is not None and f.q05 <= f.q50 <= f.q95  # type: ignore[operator]
    assert f.predictor == "last" and f.horizon == 4
    d = pol.decide(tv([0.0, 0.79]), s)
    f = d.forecast
    assert not d.stop and f is not None and f.p_improve is not None and 0.3 < f.p_improve < 0.5
    assert not pol.decide(tv([0.0, 0.1]), study_of([[0.5] * 4])).stop  # no predictor


def test_options_are_validated() -> None:
    for name, opts in [("median", {"n_startup_trials": -1}), ("median", {"interval_steps": 0}),
                       ("asha", {"reduction_factor": 1}), ("asha", {"grace_period": 0}),
                       ("predictive", {"delta": 0.0}), ("predictive", {"delta": 1.5}),
                       ("predictive", {"min_epochs": 0}), ("median", {"bogus": 1})]:
        with pytest.raises(ConfigError):
            make_policy(name, opts)
    assert isinstance(make_policy("none"), NoStopping)


def test_refit_schedule() -> None:
    assert [n for n in range(700) if should_refit(n)] == [5, 10, 20, 40, 80, 160, 320, 640]


@pytest.mark.parametrize("name", ["none", "median", "asha", "predictive"])
def test_policies_pass_conformance(name: str) -> None:
    check_policy(make_policy(name))
