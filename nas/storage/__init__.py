"""The study database: schema, write API (the engine), read API (users), URL handling.

Import-light on purpose (SQLAlchemy only; no torch, ray or Alembic until ``nas db upgrade``):
the query CLI loads this.

- :meth:`Storage.open` -- the one way to open the study database (it resolves the URL:
  :func:`resolve_url`; :func:`mask_url` prints it);
- :class:`Storage` -- connect (creating or checking the schema) and read/write studies;
  :class:`StepRecord` -- one result (point, forecast, decision) of the engine;
- :func:`open_study` -- the user's read API (trials, curves, best trial, pandas);
- :func:`import_curves` / :func:`export_curves` -- curve files in and out (``nas import/export``),
  :func:`export_rows` -- the flat listings of ``nas export --format csv|json``;
- :meth:`Storage.schema_info` / :meth:`Storage.upgrade_schema` -- ``nas db info|upgrade``;
  :meth:`Storage.import_study` -- a study with its trials in one bulk transaction;
- ``nas.storage.tables`` -- the tables, for read queries outside storage (the dashboard's).
"""

from __future__ import annotations

from nas.interfaces import DIRECTIONS
from nas.storage._engine import transient
from nas.storage._lease import LeaseHolder
from nas.storage._read import StudyHandle, best_of, open_study, ranked
from nas.storage._records import (
    AuditRecord,
    DecisionRecord,
    EvaluationRecord,
    ForecastRecord,
    StepRecord,
    StudyRecord,
    TrialImport,
    TrialRecord,
)
from nas.storage._schema import HEAD, REVISIONS, SchemaInfo
from nas.storage._storage import Storage
from nas.storage._transfer import (
    ImportResult,
    export_curves,
    export_rows,
    import_curves,
    study_curveset,
)
from nas.storage._types import UNREADABLE
from nas.storage._url import (
    DEFAULT_URL,
    ENV_VAR,
    mask_url,
    require_existing,
    resolve_url,
    validate_url,
)

__all__ = [
    "DEFAULT_URL",
    "DIRECTIONS",
    "ENV_VAR",
    "HEAD",
    "REVISIONS",
    "UNREADABLE",
    "AuditRecord",
    "DecisionRecord",
    "EvaluationRecord",
    "ForecastRecord",
    "ImportResult",
    "LeaseHolder",
    "SchemaInfo",
    "StepRecord",
    "Storage",
    "StudyHandle",
    "StudyRecord",
    "TrialImport",
    "TrialRecord",
    "best_of",
    "export_curves",
    "export_rows",
    "import_curves",
    "mask_url",
    "open_study",
    "ranked",
    "require_existing",
    "resolve_url",
    "study_curveset",
    "transient",
    "validate_url",
]
