"""The Python API for notebooks and scripts: :func:`run` and :class:`Study`.

``nas.run(config_or_path)`` does what ``nas run FILE`` does (without the live view) and returns
a :class:`Study`: the study's database handle (trials, curves, best trial, pandas) plus the
run's :class:`~nas.runner.RunSummary` and :meth:`Study.evaluate`.  ``nas.Study("name")``
opens an existing study.  Both are imported lazily by ``import nas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.config import StudyConfig
from nas.storage import Storage, StudyHandle

__all__ = ["Study", "run"]


class Study(StudyHandle):
    """A study in a database: ``trials``, ``curves``, ``best_trial``, ``to_pandas()`` (the
    :class:`nas.storage.StudyHandle`, opened the same way: ``Study(name, storage=None)``),
    and :meth:`evaluate`.

    ``summary`` is set when the study came from :func:`run` in this process.
    """

    summary: Any = None

    def evaluate(self, *, top: int = 3, seeds: int = 3, out_dir: str | Path = "nas-models",
                 max_epochs: int | None = None) -> dict[str, Any]:
        """Retrain the best configurations and report the test metric (``nas evaluate``)."""
        from nas.evaluate import evaluate_study

        return evaluate_study(self.name, storage=self.storage.url, top=top, seeds=seeds,
                              out_dir=out_dir, max_epochs=max_epochs)


def run(config_or_path: StudyConfig | str | Path | Mapping[str, Any], *,
        storage: str | None = None, address: str | None = None, trials: int | None = None,
        timeout: float | None = None, cpus: int | None = None, resume: bool = False,
        verbose: bool = False, ray_storage: str | None = None) -> Study:
    """Run (or resume) a study from a study file, a dict of its shape or a StudyConfig.

    Same semantics as ``nas run`` (see :func:`nas.runner.run_study`); returns the study.
    """
    from nas.config import load_config
    from nas.runner import run_study

    cfg = load_config(config_or_path)
    opened: list[Storage] = []  # the one storage of the run (run_study opens it)
    summary = run_study(cfg, storage=storage, address=address, trials=trials, timeout=timeout,
                        cpus=cpus, resume=resume, verbose=verbose, ray_storage=ray_storage,
                        on_open=opened.append)
    study = Study(cfg.name, opened[0])
    study.summary = summary
    return study
