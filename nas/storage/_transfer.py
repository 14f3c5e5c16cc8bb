"""Curve files in and out of the study database (``nas import`` / ``nas export``).

:func:`import_curves` is how users bring recorded results in and how benchmarks and tests get
realistic studies; :func:`export_curves` writes a study back in the curve-file format, so that
an import followed by an export gives back the same curves, configs, task names, features and
direction.  :func:`export_rows` gives the flat listings of ``nas export --format csv|json``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.interfaces import DIRECTIONS, Action, StudyStatus, TrialState
from nas.names import check_study_name
from nas.storage._records import TrialImport, TrialRecord
from nas.storage._storage import Storage

__all__ = ["ImportResult", "export_curves", "export_rows", "import_curves", "study_curveset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_curves` stored."""

    study: str
    study_id: int
    trials: int
    points: int
    missing: int  # NaN/inf values stored as NULL
    direction: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "study_id": self.study_id, "trials": self.trials,
                "points": self.points, "missing": self.missing, "direction": self.direction,
                "seconds": round(self.seconds, 3)}


def import_curves(
    storage: Storage,
    path: str | os.PathLike[str],
    study: str,
    *,
    direction: str | None = None,
) -> ImportResult:
    """Import a curve file as a new study, in one transaction.  Each trial is in the file's
    ``state`` (COMPLETE without one); a STOPPED trial with a ``stop_step`` gets a STOP decision
    at that step (policy ``imported``), which :func:`study_curveset` reads back.

    Trial ``i`` gets number ``i``, ``configs[i]`` as config, ``config_features[i]`` as features
    (name -> value), ``task[i]`` as group, steps 1..``lengths[i]`` as curve points, the curve's
    last value as final value and its length as epochs.  NaN/inf values are stored as missing
    and counted in a warning.  The study's space is ``"imported"``; its task is the file's task
    when there is one, else ``"imported"``.  ``direction`` defaults to the file's.  An existing
    study name is a :class:`ConfigError`; on any failure nothing is stored.
    """
    import time

    import numpy as np

    from nas.curvefile import load_curves

    t0 = time.perf_counter()
    check_study_name(study, "--study")
    cs = load_curves(path)
    d = direction or cs.direction
    if d not in DIRECTIONS:
        raise ConfigError(f"--direction = {d!r}: must be maximize or minimize")
    groups = [str(g) for g in cs.task] if cs.task is not None else None
    tasks = sorted(set(groups)) if groups else []
    study_task = tasks[0] if len(tasks) == 1 else "imported"
    names = list(cs.config_feature_names or [])
    config = {
        "source": str(Path(path)),
        "n_curves": cs.n,
        "horizon": cs.horizon,
        "tasks": tasks,
        "config_feature_names": names,
    }
    if cs.stopping is not None:  # the exported study's [stopping] table: kept for its export
        config["stopping"] = cs.stopping
    curves = np.asarray(cs.curves, dtype=np.float64)
    lengths = np.asarray(cs.lengths, dtype=np.int64)
    mask = np.arange(cs.horizon)[None, :] < lengths[:, None]
    finite = np.isfinite(curves)
    missing = int((mask & ~finite).sum())
    stored = np.where(finite, curves, np.nan)

    stop_name = Path(path).name
    trials = []
    for i in range(cs.n):
        L = int(lengths[i])
        last = float(stored[i, L - 1])
        feats = None
        if cs.config_features is not None:
            feats = {n: (float(v) if math.isfinite(float(v)) else None)
                     for n, v in zip(names, cs.config_features[i].tolist())}
        state = str(cs.states[i]) if cs.states is not None else TrialState.COMPLETE
        stop = int(cs.stop_steps[i]) if cs.stop_steps is not None else 0
        decisions: tuple[dict[str, Any], ...] = ()
        if stop > 0 and state == TrialState.STOPPED:  # the stop step survives the round trip
            decisions = ({"step": stop, "policy": "imported", "action": Action.STOP,
                          "reason": f"stopped at step {stop} (imported from {stop_name})"},)
        trials.append(TrialImport(
            number=i, state=state, group=groups[i] if groups else None,
            config=cs.configs[i] if cs.configs is not None else {}, features=feats,
            value=last if math.isfinite(last) else None, epochs=L,
            curve=stored[i, :L], decisions=decisions))

    study_id, n_points = storage.import_study(
        study, space="imported", task=study_task, objectives=[{"name": "value", "direction": d}],
        config=config, trials=trials, status=StudyStatus.COMPLETE,
        action=f"importing {cs.source} into study {study!r}")
    if missing:
        log.warning("%s: %d of %d curve values are NaN or inf; stored as missing (NULL)",
                    cs.source, missing, n_points)
    return ImportResult(study, study_id, cs.n, n_points, missing, d, time.perf_counter() - t0)


def study_curveset(storage: Storage, name: str) -> Any:
    """The study as a :class:`nas.curvefile.CurveSet` (curves of every trial, by number, with
    the study's ``[stopping]`` settings as stored in its config, when it has them)."""
    import numpy as np

    from nas.curvefile import CurveSet

    rec = storage.get_study(name)
    trials = storage.trials(rec.id, with_curves=True)
    if not trials:
        raise ConfigError(f"study {name!r} has no trials to export")
    T = max(1, max(len(t.curve or []) for t in trials))
    curves = np.full((len(trials), T), np.nan)
    lengths = np.zeros(len(trials), dtype=np.int64)
    for i, t in enumerate(trials):
        c = [np.nan if v is None else v for v in (t.curve or [])]
        curves[i, : len(c)] = c
        lengths[i] = max(1, len(c))
    groups = [t.group for t in trials]
    task = np.asarray([g or "" for g in groups], dtype=object) if any(g is not None for g in groups) else None
    names = list(rec.config.get("config_feature_names") or [])
    if not names:
        for t in trials:
            if t.features:
                names = list(t.features)
                break
    feats = None
    if names:
        feats = np.asarray([[np.nan if (t.features or {}).get(n) is None else float((t.features or {})[n])
                             for n in names] for t in trials], dtype=np.float64)
    states = np.asarray([t.state for t in trials], dtype=object)
    stop_steps = np.zeros(len(trials), dtype=np.int64)
    for i, t in enumerate(trials):
        if t.state == TrialState.STOPPED:
            stop = [d.step for d in storage.decisions(t.id) if d.action == Action.STOP]
            stop_steps[i] = min(stop[-1], lengths[i]) if stop else lengths[i]
    stopping = (rec.config or {}).get("stopping")
    return CurveSet(curves, lengths, [dict(t.config) for t in trials], task, feats,
                    names or None, rec.direction, f"study {name!r}", states=states,
                    stop_steps=stop_steps,
                    stopping=dict(stopping) if isinstance(stopping, dict) else None)


def export_curves(storage: Storage, name: str, path: str | os.PathLike[str]) -> int:
    """Write study ``name`` as a curve file at ``path``; returns the number of curves."""
    from nas.curvefile import save_curves

    cs = study_curveset(storage, name)
    try:
        save_curves(path, cs)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return int(cs.n)


def export_rows(trials: list[TrialRecord], *, curves: bool) -> list[dict[str, Any]]:
    """Flat per-trial rows for ``nas export --format csv|json`` (``curve`` with ``--curves``)."""
    rows = []
    for t in trials:
        row: dict[str, Any] = {
            "number": t.number, "state": t.state, "value": t.value, "values": t.values,
            "epochs": t.epochs, "group": t.group, "params": t.config, "features": t.features,
            "distributions": t.distributions, "node": t.node, "error": t.error,
            "started": t.started, "finished": t.finished,
        }
        if curves:
            row["curve"] = t.curve
        rows.append(row)
    return rows
