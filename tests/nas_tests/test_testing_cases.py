"""nas.testing for third parties: the subclassable test cases, ConformanceError naming the check
(also under ``python -O``), and the one toy space."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import unittest
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from nas.interfaces import Curve
from nas.testing import (
    ConformanceError,
    PredictorTestCase,
    SpaceTestCase,
    StorageTestCase,
    ToySpace,
    check_predictor,
)
from nas.testing.predictors import synthetic_curves
from predictors import CensoredMixtureForecast

torch.set_num_threads(1)


class LastValue:
    """A predictor a third party might write: the last value, give or take 0.1."""

    name = "last_value"

    def fit(self, curves: Sequence[Curve]) -> LastValue:
        return self

    def predict(self, curves: Sequence[Curve], horizon: int) -> CensoredMixtureForecast:
        last = np.array([float(c.values[-1]) for c in curves])
        return CensoredMixtureForecast(last, np.full(len(curves), 0.1))


class ForgetfulFit(LastValue):
    def fit(self, curves: Sequence[Curve]) -> Any:  # breaks "fit returns self"
        return None


class Reversed(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.flip(x, dims=[1]))


class LeakySpace(ToySpace):
    """Reads the sequence backwards: not causal."""

    def build(self, config: Any, task: Any) -> Any:
        return Reversed(super().build(config, task))


# --- subclasses as a third party writes them: pytest collects and runs their test_* methods
class TestLastValuePredictor(PredictorTestCase):
    def make_predictor(self) -> Any:
        return LastValue()


class TestToySpace(SpaceTestCase):
    space = ToySpace(cells=["gru", "rnn"], max_layers=2, hidden=[8])
    samples = 2


class TestSQLiteStorage(StorageTestCase):
    pass


def _run(case: type[unittest.TestCase]) -> unittest.TestResult:
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    return result


def test_the_base_classes_are_not_collected_but_subclasses_are() -> None:
    for base in (SpaceTestCase, PredictorTestCase, StorageTestCase):
        assert base.__dict__["__test__"] is False
    for sub in (TestLastValuePredictor, TestToySpace, TestSQLiteStorage):
        assert sub.__test__ is True
    assert _run(TestLastValuePredictor).testsRun == 2


def test_a_broken_predictor_fails_with_the_check_named() -> None:
    class TestForgetful(PredictorTestCase):
        __test__ = False  # run by hand below, not collected

        def make_predictor(self) -> Any:
            return ForgetfulFit()

    result = _run(TestForgetful)
    assert result.testsRun == 2 and len(result.failures) == 1 and not result.errors
    case, text = result.failures[0]
    assert case.id().endswith("test_check_predictor")
    assert "ConformanceError: check_predictor: fit must return self" in text
    with pytest.raises(ConformanceError) as info:
        check_predictor(ForgetfulFit(), synthetic_curves(n=20, horizon=8))
    assert info.value.check == "check_predictor" and info.value.message == "fit must return self"


def test_a_broken_space_fails_with_the_check_named() -> None:
    class TestLeaky(SpaceTestCase):
        __test__ = False
        space = LeakySpace(cells=["gru"], max_layers=1, hidden=[8])
        samples = 1

    result = _run(TestLeaky)
    assert result.testsRun == 2 and len(result.failures) == 1
    case, text = result.failures[0]
    assert case.id().endswith("test_check_space")
    assert "ConformanceError: check_space: 1 of 1 samples failed" in text and "not causal" in text


def test_a_missing_factory_is_an_error_not_a_pass() -> None:
    class TestNothing(SpaceTestCase):
        __test__ = False

    result = _run(TestNothing)
    assert len(result.errors) == 2 and "must set `space`" in result.errors[0][1]


def test_checks_still_fail_under_python_dash_O() -> None:
    code = textwrap.dedent('''
        from nas.testing import ConformanceError
        from nas.testing.predictors import check_forecast
        from predictors import CensoredMixtureForecast
        import numpy as np
        try:
            check_forecast(CensoredMixtureForecast(np.full(3, 0.5), np.full(3, 0.1)), 4)
        except ConformanceError as exc:
            print("raised", exc.check)
    ''')
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "raised check_forecast"


def test_the_toy_space_keeps_its_curve_and_searches_a_model_on_request() -> None:
    import optuna

    from nas.testing.toy import ToyTask, toy_curve

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = ToyTask().spec()
    plain, rnn = ToySpace(), ToySpace(cells=["lstm"], max_layers=1)
    for space, params in ((plain, {"ceiling", "rate", "mode"}),
                          (rnn, {"ceiling", "rate", "mode", "n_layers", "cell_0", "hidden",
                                 "optimizer", "lr", "dropout"})):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        cfg = space.sample(trial)
        assert set(trial.params) == params
        assert 0.0 <= toy_curve(cfg, 3) <= 1.0
        assert space.build(cfg, spec)(torch.zeros(5, spec.seq_len, spec.input_size)).shape \
            == (5, spec.output_size)
    assert set(plain.features(cfg)) < set(rnn.features(cfg))
