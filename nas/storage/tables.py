"""The study database's tables as SQLAlchemy Core ``Table`` objects, for read queries written
outside ``nas.storage`` (the dashboard's paged views, :mod:`nas.dashboard._queries`).  Their
definitions are in ``_models``; run such queries through :meth:`nas.storage.Storage.read`."""

from __future__ import annotations

from nas.storage._models import (
    CURVE_POINTS,
    DECISIONS,
    EVALUATIONS,
    FORECASTS,
    STUDIES,
    STUDY_LEASES,
    TRIAL_VALUES,
    TRIALS,
)

__all__ = ["CURVE_POINTS", "DECISIONS", "EVALUATIONS", "FORECASTS", "STUDIES", "STUDY_LEASES",
           "TRIALS", "TRIAL_VALUES"]
