"""nas.integrations: our policies inside plain Optuna (pruner) and plain Ray Tune (scheduler)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
import pytest
from scipy import stats

from nas.errors import ConfigError
from nas.integrations import PolicyPruner
from nas.interfaces import Curve
from nas.testing.toy import toy_curve

HORIZON = 8


class _NormalForecast:
    def __init__(self, mean: np.ndarray, sd: float) -> None:
        self._mean, self.sd = mean, sd

    @property
    def mean(self) -> np.ndarray:
        return self._mean

    def quantile(self, q: float) -> np.ndarray:
        return np.asarray(stats.norm.ppf(q, self._mean, self.sd))

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(stats.norm.cdf(y, self._mean, self.sd))

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(stats.norm.logpdf(y, self._mean, self.sd))


class LastValuePredictor:
    """A real (if naive) predictor: the final value is the last one, +- 0.02."""

    name = "last_value"

    def __init__(self) -> None:
        self.fits = 0

    def fit(self, curves: Sequence[Curve]) -> LastValuePredictor:
        self.fits += 1
        return self

    def predict(self, curves: Sequence[Curve], horizon: int) -> _NormalForecast:
        return _NormalForecast(np.array([c.values[-1] for c in curves]), 0.02)


def _objective(trial: optuna.Trial) -> float:
    cfg = {"ceiling": trial.suggest_float("ceiling", 0.2, 1.0),
           "rate": trial.suggest_float("rate", 0.05, 2.0, log=True)}
    v = 0.0
    for epoch in range(1, HORIZON + 1):
        v = toy_curve(cfg, epoch)
        trial.report(v, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return v


@pytest.mark.parametrize("policy,options", [("asha", {"grace_period": 1}),
                                            ("median", {"n_startup_trials": 3})])
def test_pruner_in_plain_optuna(policy: str, options: dict) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = PolicyPruner(policy, horizon=HORIZON, policy_options=options)
    study = optuna.create_study(direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective, n_trials=25)
    states = [t.state for t in study.trials]
    n_pruned = states.count(optuna.trial.TrialState.PRUNED)
    assert 0 < n_pruned < 25
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 1
    # pruned trials ran fewer steps than the horizon
    for t in study.trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            assert len(t.intermediate_values) < HORIZON


def test_pruner_predictive_with_a_predictor_and_minimize() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pred = LastValuePredictor()
    pruner = PolicyPruner("predictive", horizon=HORIZON, value_range=(0.0, 1.0),
                          policy_options={"delta": 0.05, "min_epochs": 2}, predictor=pred)

    def loss(trial: optuna.Trial) -> float:  # minimise 1 - accuracy
        cfg = {"ceiling": trial.suggest_float("ceiling", 0.2, 1.0), "rate": 1.0}
        v = 0.0
        for epoch in range(1, HORIZON + 1):
            v = 1.0 - toy_curve(cfg, epoch)
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return v

    study = optuna.create_study(direction="minimize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(loss, n_trials=20)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and pred.fits >= 1
    best = study.best_value
    for t in pruned:  # stopped when clearly worse than the best at that time
        assert t.intermediate_values[max(t.intermediate_values)] > best
        assert len(t.intermediate_values) >= 2  # min_epochs
    assert "P(y_T > best" in pruner.last_decision.reason or pruner.last_decision.action


def test_pruner_validates_at_construction() -> None:
    with pytest.raises(ConfigError, match="horizon"):
        PolicyPruner("asha", horizon=0)
    with pytest.raises(ConfigError, match="value_range"):
        PolicyPruner("asha", horizon=5, value_range=(1.0, 1.0))
    with pytest.raises(ConfigError, match="grace"):
        PolicyPruner("asha", horizon=5, policy_options={"grace": 1})


@pytest.mark.usefixtures("ray_runtime")
def test_scheduler_in_plain_tune(tmp_path) -> None:
    from ray import tune

    from nas.integrations.tune import PolicyScheduler

    def trainable(config: dict) -> None:
        for epoch in range(1, HORIZON + 1):
            tune.report({"acc": toy_curve(config, epoch), "epoch": epoch})

    sched = PolicyScheduler("asha", metric="acc", mode="max", horizon=HORIZON,
                            policy_options={"grace_period": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"ceiling": tune.uniform(0.2, 1.0), "rate": tune.loguniform(0.05, 2.0)},
        tune_config=tune.TuneConfig(num_samples=10, scheduler=sched, reuse_actors=True,
                                    max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    results = tuner.fit()
    iters = [r.metrics["training_iteration"] for r in results]
    assert len(iters) == 10
    assert sched.stopped and all("rung" in r or r for r in sched.stopped.values())
    assert sum(i < HORIZON for i in iters) == len(sched.stopped)
    assert any(i == HORIZON for i in iters)
    assert not math.isnan(max(r.metrics["acc"] for r in results))
