"""Conformance checks that every space, task, predictor and storage must pass.

Third parties call them from their own test suites, e.g. ``assert check_task(MyTask()).ok``.
"""

from __future__ import annotations

from nas.testing.predictors import (
    check_forecast,
    check_policy,
    check_predict_document,
    check_predictor,
    check_replay_document,
    synthetic_curve_set,
    synthetic_curves,
)
from nas.testing.spaces import SpaceCheck, TaskCheck, ToySpace, check_space, check_task
from nas.testing.storage import (
    check_concurrent_writers,
    check_storage,
    postgres_database,
    synthetic_study_curves,
)

__all__ = ["check_space", "check_task", "SpaceCheck", "TaskCheck", "ToySpace",
           "check_forecast", "check_predictor", "check_policy", "check_predict_document",
           "check_replay_document", "synthetic_curve_set", "synthetic_curves",
           "check_storage", "check_concurrent_writers", "postgres_database",
           "synthetic_study_curves"]
