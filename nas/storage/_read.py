"""The user's read API: ``nas.open_study(name, storage)``, the one study handle.

For notebooks and scripts, after (or during) a study.  Reads once when an attribute is first
used and keeps the result; call :meth:`StudyHandle.refresh` to read again.  ``nas.Study``
(:mod:`nas.api`) is this handle with ``evaluate()`` and the summary of a run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nas._format import layer_params
from nas.errors import ConfigError
from nas.interfaces import TrialState, best_first
from nas.storage._records import StudyRecord, TrialRecord
from nas.storage._storage import Storage

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["StudyHandle", "best_of", "open_study", "ranked"]


def ranked(trials: list[TrialRecord], direction: str) -> list[TrialRecord]:
    """The COMPLETE trials with a finite ``value``, best first (ties: lowest number)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and math.isfinite(t.value)]
    return sorted(done, key=lambda t: best_first(float(t.value or 0.0), t.number, direction))


def best_of(trials: list[TrialRecord], direction: str) -> TrialRecord | None:
    """The COMPLETE trial with the best finite ``value`` for ``direction`` (ties: lowest number)."""
    done = ranked(trials, direction)
    return done[0] if done else None


class StudyHandle:
    """A stored study: ``record``, ``trials``, ``curves``, ``best_trial``, ``to_pandas()``.

    ``storage`` is an open :class:`Storage` or a URL; when None it resolves like the CLI
    (``$NAS_STORAGE``, else ``sqlite:///nas.db``).  Unknown names raise
    :class:`~nas.errors.StudyNotFoundError` listing the known ones."""

    def __init__(self, name: str, storage: Storage | str | None = None) -> None:
        self.storage = storage if isinstance(storage, Storage) else \
            Storage.open(storage, create=True)
        self.record: StudyRecord = self.storage.get_study(name)
        self._trials: list[TrialRecord] | None = None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def direction(self) -> str:
        return self.record.direction

    def refresh(self) -> StudyHandle:
        """Forget what was read; the next access reads the database again."""
        self.record = self.storage.get_study(self.record.name)
        self._trials = None
        return self

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial, by number, each with its curve."""
        if self._trials is None:
            self._trials = self.storage.trials(self.record.id, with_curves=True)
        return self._trials

    @property
    def curves(self) -> dict[int, np.ndarray]:
        """Trial number -> its curve as a float array (NaN where a value is missing)."""
        import numpy as np

        return {t.number: np.asarray([np.nan if v is None else v for v in (t.curve or [])],
                                     dtype=np.float64) for t in self.trials}

    @property
    def best_trial(self) -> TrialRecord | None:
        """The best COMPLETE trial for the study's direction, or None when there is none."""
        return best_of(self.trials, self.direction)

    def to_pandas(self) -> pd.DataFrame:
        """One row per trial: number, state, value, epochs, group, node, started, finished,
        ``values_<i>`` for multi-objective studies, ``params_<name>`` per config key, and the
        ``layers`` list flattened to ``layer<i>.<key>`` (``layer0.cell``: filter by cell)."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError(
                "to_pandas() needs pandas, which is not installed: pip install pandas"
            ) from None
        rows = []
        for t in self.trials:
            row: dict[str, Any] = {
                "number": t.number, "state": t.state, "value": t.value, "epochs": t.epochs,
                "group": t.group, "node": t.node, "started": t.started, "finished": t.finished,
            }
            for i, v in enumerate(t.values or []):
                row[f"values_{i}"] = v
            layers = layer_params(t.config)  # layer0.cell, layer0.hypernet, ...
            for k, v in t.config.items():
                if k == "layers" and layers is not None:
                    row.update(layers)
                else:
                    row[f"params_{k}"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.record.name!r}, "
                f"storage={self.storage.masked_url!r})")


def open_study(name: str, storage: str | None = None) -> StudyHandle:
    """Open the stored study ``name``.  ``storage`` is a URL; when None it resolves like the
    CLI (``$NAS_STORAGE``, else ``sqlite:///nas.db``).  Unknown names raise
    :class:`~nas.errors.StudyNotFoundError` listing the known ones."""
    return StudyHandle(name, storage)
