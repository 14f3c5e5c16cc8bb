"""Subclassable unittest cases that run the conformance checks on a third party's plug-in.

Subclass one, say how to make the plug-in, and each ``test_*`` method runs one named check::

    from nas.testing import PredictorTestCase, SpaceTestCase

    class TestMyPredictor(PredictorTestCase):
        def make_predictor(self):
            return MyPredictor(seed=0)

    class TestMySpace(SpaceTestCase):
        space = MySpace(max_layers=2)

A failed check raises :class:`~nas.testing.ConformanceError` naming it.  The base classes set
``__test__ = False`` so that pytest does not collect them where they are imported; every
subclass is collected (it gets ``__test__ = True`` unless it sets ``__test__`` itself).
"""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path
from typing import Any, ClassVar

from nas.testing._conformance import ConformanceError, require

__all__ = ["PredictorTestCase", "SpaceTestCase", "StorageTestCase"]


class _ConformanceCase(unittest.TestCase):
    __test__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True


class SpaceTestCase(_ConformanceCase):
    """Conformance of a search space: set ``space`` (or override :meth:`make_space`); the task
    (:meth:`make_task`, a small parity task by default) and ``samples`` may be changed too."""

    __test__ = False

    space: Any = None
    samples: int = 3
    seed: int = 0

    def make_space(self) -> Any:
        if self.space is None:
            raise TypeError(f"{type(self).__name__} must set `space` or define make_space()")
        return self.space

    def make_task(self) -> Any:
        from nas.tasks import ParityTask

        return ParityTask(bits=4, n_train=32, n_val=8, n_test=8)

    def test_space_protocol(self) -> None:
        from nas.interfaces import SearchSpace

        space = self.make_space()
        require("space_protocol", isinstance(space, SearchSpace),
                f"{type(space).__name__} lacks sample/build/features (nas.interfaces.SearchSpace)")

    def test_check_space(self) -> None:
        from nas.testing.spaces import check_space

        report = check_space(self.make_space(), self.make_task(), samples=self.samples,
                             seed=self.seed, batch_size=8, timing_steps=1)
        bad = [(i, s.error) for i, s in enumerate(report.samples) if not s.ok]
        if bad:
            i, error = bad[0]
            raise ConformanceError("check_space", f"{len(bad)} of {len(report.samples)} samples "
                                                  f"failed; sample {i}: {error}")


class PredictorTestCase(_ConformanceCase):
    """Conformance of a learning-curve predictor: override :meth:`make_predictor` (a fresh,
    unfitted predictor each call); :meth:`make_curves` gives the synthetic training curves."""

    __test__ = False

    horizon: int = 12

    def make_predictor(self) -> Any:
        raise TypeError(f"{type(self).__name__} must define make_predictor()")

    def make_curves(self) -> list[Any]:
        from nas.testing.predictors import synthetic_curves

        return synthetic_curves(n=40, horizon=self.horizon, seed=0)

    def test_predictor_protocol(self) -> None:
        from nas.interfaces import LearningCurvePredictor

        p = self.make_predictor()
        require("predictor_protocol", isinstance(p, LearningCurvePredictor),
                f"{type(p).__name__} lacks fit/predict (nas.interfaces.LearningCurvePredictor)")

    def test_check_predictor(self) -> None:
        from nas.testing.predictors import check_predictor

        check_predictor(self.make_predictor(), self.make_curves(), horizon=self.horizon)


class StorageTestCase(_ConformanceCase):
    """Conformance of a storage back end: override :meth:`make_url` (a database URL; by
    default a fresh SQLite file in a temporary directory)."""

    __test__ = False

    writers: int = 2

    def make_url(self) -> str:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        return f"sqlite:///{Path(tmp.name) / 'nas.db'}"

    def test_check_storage(self) -> None:
        from nas.testing.storage import check_storage

        check_storage(self.make_url())

    def test_check_concurrent_writers(self) -> None:
        from nas.testing.storage import check_concurrent_writers

        check_concurrent_writers(self.make_url(), processes=self.writers, steps=20, batch=7)
