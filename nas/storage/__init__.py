"""The study database: schema, write API (the engine), read API (users), URL handling.

Import-light on purpose (SQLAlchemy only; no torch, ray or Alembic until ``nas db upgrade``):
the query CLI loads this.

- :func:`resolve_url` / :func:`mask_url` -- which database, and how to print its URL;
- :class:`Storage` -- connect (creating or checking the schema) and read/write studies;
- :func:`open_study` -- the user's read API (trials, curves, best trial, pandas);
- :func:`import_curves` / :func:`export_curves` -- curve files in and out (``nas import/export``);
"""

from __future__ import annotations

from nas.storage._read import StudyHandle, best_of, open_study
from nas.storage._records import (
    FINISHED_STATES,
    STATES,
    DecisionRecord,
    ForecastRecord,
    StudyRecord,
    TrialRecord,
)
from nas.storage._schema import HEAD, REVISIONS
from nas.storage._storage import DIRECTIONS, Storage
from nas.storage._transfer import ImportResult, export_curves, import_curves, study_curveset
from nas.storage._url import (DEFAULT_URL, ENV_VAR, mask_url, require_existing, resolve_url,
                              validate_url)

__all__ = [
    "DEFAULT_URL",
    "DIRECTIONS",
    "ENV_VAR",
    "FINISHED_STATES",
    "HEAD",
    "REVISIONS",
    "STATES",
    "DecisionRecord",
    "ForecastRecord",
    "ImportResult",
    "Storage",
    "StudyHandle",
    "StudyRecord",
    "TrialRecord",
    "best_of",
    "export_curves",
    "import_curves",
    "mask_url",
    "require_existing",
    "open_study",
    "resolve_url",
    "study_curveset",
    "validate_url",
]
