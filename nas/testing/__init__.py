"""Conformance checks that every space, task, predictor and storage must pass.

Third parties call them from their own test suites, e.g. ``assert check_task(MyTask()).ok``, or
subclass :class:`SpaceTestCase`, :class:`PredictorTestCase` or :class:`StorageTestCase`.  A
failed check raises :class:`ConformanceError` naming the check.
"""

from __future__ import annotations

from nas.testing._cases import PredictorTestCase, SpaceTestCase, StorageTestCase
from nas.testing._conformance import ConformanceError
from nas.testing.predictors import (
    check_forecast,
    check_policy,
    check_predictor,
    synthetic_curve_set,
    synthetic_curves,
)
from nas.testing.spaces import SpaceCheck, TaskCheck, check_space, check_task
from nas.testing.storage import (
    check_concurrent_writers,
    check_storage,
    postgres_database,
    synthetic_study_curves,
)
from nas.testing.toy import ToySpace

__all__ = [
    "ConformanceError",
    "PredictorTestCase",
    "SpaceCheck",
    "SpaceTestCase",
    "StorageTestCase",
    "TaskCheck",
    "ToySpace",
    "check_concurrent_writers",
    "check_forecast",
    "check_policy",
    "check_predictor",
    "check_space",
    "check_storage",
    "check_task",
    "postgres_database",
    "synthetic_curve_set",
    "synthetic_curves",
    "synthetic_study_curves",
]
