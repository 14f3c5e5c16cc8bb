"""The curve file format (docs/storage.md): read and write ``.npz`` files of learning curves.

Arrays: ``curves`` (N x T float, NaN after each curve's end), optional ``lengths`` (N),
``configs`` (N JSON strings), ``task`` (N strings), ``config_features`` (N x D float) with
``config_feature_names`` (D), ``direction`` ("maximize" by default), ``state`` (N strings:
COMPLETE, STOPPED, FAILED or INTERRUPTED; COMPLETE when absent: a STOPPED curve is truncated,
not finished), ``stop_step`` (N integers: the step a STOPPED trial was stopped after, 0 for
the others) and ``stopping`` (one JSON string: the ``[stopping]`` settings of the study the file
was exported from, which ``nas bench replay`` uses when ``--policy`` is not given).  No pickle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas._json import MAX_DEPTH, too_deep
from nas.errors import CurveFileError
from nas.interfaces import DIRECTIONS, ENDED_STATES, Direction

__all__ = ["CurveSet", "load_curves", "save_curves"]



@dataclass
class CurveSet:
    """Curves of N trials, padded with NaN to a common length T."""

    curves: np.ndarray
    lengths: np.ndarray
    configs: list[dict[str, Any]] | None = None
    task: np.ndarray | None = None
    config_features: np.ndarray | None = None
    config_feature_names: list[str] | None = None
    direction: str = Direction.MAXIMIZE.value
    source: str = ""
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    states: np.ndarray | None = None
    stop_steps: np.ndarray | None = None
    #: the ``[stopping]`` table of the study the file was exported from (None: not known)
    stopping: dict[str, Any] | None = None

    @property
    def n(self) -> int:
        return int(self.curves.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.curves.shape[1])

    def groups(self) -> np.ndarray:
        """The task name of every curve (``"all"`` when the file has none)."""
        if self.task is None:
            return np.full(self.n, "all", dtype=object)
        return self.task

    def curve(self, i: int) -> np.ndarray:
        return self.curves[i, : int(self.lengths[i])]

    def require_unit_range(self) -> None:
        """Benchmarks expect values in [0, 1], higher better: reject anything else."""
        if self.direction != Direction.MAXIMIZE:
            raise CurveFileError(
                f"{self.source}: direction is {self.direction!r}; the benchmarks need curves "
                "normalised to [0, 1] with higher better (direction 'maximize')"
            )
        inf = np.isinf(self.curves)
        if inf.any():
            row, col = (int(x) for x in np.argwhere(inf)[0])
            raise CurveFileError(
                f"{self.source}: row {row} of 'curves' is {self.curves[row, col]} at step "
                f"{col + 1}; the benchmarks need finite values in [0, 1] (NaN = missing)"
            )
        finite = self.curves[np.isfinite(self.curves)]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            raise CurveFileError(
                f"{self.source}: values range over [{finite.min():.4g}, {finite.max():.4g}]; the "
                "benchmarks need curves normalised to [0, 1] with higher better"
            )


def _str_array(arr: np.ndarray, key: str, n: int, source: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != (n,):
        raise CurveFileError(f"{source}: '{key}' has shape {arr.shape}, expected ({n},)")
    return np.asarray([str(x) for x in arr.tolist()], dtype=object)


def load_curves(path: str | os.PathLike[str]) -> CurveSet:
    """Read and validate a curve file; every problem is a :class:`CurveFileError`."""
    p = Path(path)
    src = str(p)
    if not p.exists():
        raise CurveFileError(f"{src}: no such file")
    if p.is_dir():
        raise CurveFileError(f"{src}: is a directory, not a curve file")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except ValueError as exc:
        raise CurveFileError(f"{src}: not a curve file (arrays need pickle or are corrupt: {exc})") from exc
    except Exception as exc:
        raise CurveFileError(f"{src}: not a curve file (.npz expected): {exc}") from exc
    if "curves" not in data:
        raise CurveFileError(f"{src}: no 'curves' array (found: {', '.join(sorted(data)) or 'none'})")
    curves = np.asarray(data.pop("curves"))
    if curves.ndim != 2 or curves.shape[0] == 0 or curves.shape[1] == 0:
        raise CurveFileError(f"{src}: 'curves' must be a non-empty N x T array, got shape {curves.shape}")
    if not np.issubdtype(curves.dtype, np.number) or np.iscomplexobj(curves):
        raise CurveFileError(f"{src}: 'curves' must be real numbers, got dtype {curves.dtype}")
    curves = curves.astype(np.float64)
    n, t = curves.shape
    if "lengths" in data:
        lengths = np.asarray(data.pop("lengths"))
        if lengths.shape != (n,) or not np.issubdtype(lengths.dtype, np.number) or \
                np.iscomplexobj(lengths) or np.issubdtype(lengths.dtype, np.bool_):
            raise CurveFileError(f"{src}: 'lengths' must be {n} integers, got shape "
                                 f"{lengths.shape} and dtype {lengths.dtype}")
        whole = np.isfinite(lengths) & (lengths == np.floor(lengths)) \
            if np.issubdtype(lengths.dtype, np.floating) else np.ones(n, dtype=bool)
        if not whole.all():
            bad = int(np.argmin(whole))
            raise CurveFileError(f"{src}: lengths[{bad}] = {float(lengths[bad])!r}: must be "
                                 "a whole number of steps")
        lengths = lengths.astype(np.int64)
        if lengths.min() < 1 or lengths.max() > t:
            raise CurveFileError(f"{src}: 'lengths' must lie in 1..{t}")
    else:  # length = position after the last non-NaN value
        notnan = ~np.isnan(curves)
        lengths = np.where(notnan.any(1), t - np.argmax(notnan[:, ::-1], axis=1), 0).astype(np.int64)
        if (lengths < 1).any():
            bad = int(np.argmin(lengths))
            raise CurveFileError(f"{src}: curve {bad} has no values")
    configs = None
    if "configs" in data:
        raw = _str_array(data.pop("configs"), "configs", n, src)
        configs = []
        for i, s in enumerate(raw):
            configs.append(_json_object(s, f"configs[{i}]", src))
    task = _str_array(data.pop("task"), "task", n, src) if "task" in data else None
    feats = names = None
    if "config_features" in data:
        raw_feats = np.asarray(data.pop("config_features"))
        if not (np.issubdtype(raw_feats.dtype, np.number) or raw_feats.dtype == np.bool_):
            raise CurveFileError(f"{src}: 'config_features' must be numeric, got dtype "
                                 f"{raw_feats.dtype}")
        feats = raw_feats.astype(np.float64)
        if feats.ndim != 2 or feats.shape[0] != n:
            raise CurveFileError(f"{src}: 'config_features' must be {n} x D, got {feats.shape}")
        if "config_feature_names" in data:
            names = [str(x) for x in np.asarray(data.pop("config_feature_names")).tolist()]
            if len(names) != feats.shape[1]:
                raise CurveFileError(
                    f"{src}: {len(names)} config_feature_names for {feats.shape[1]} features"
                )
        else:
            names = [f"f{i}" for i in range(feats.shape[1])]
    direction = Direction.MAXIMIZE.value
    if "direction" in data:
        flat = np.asarray(data.pop("direction")).reshape(-1)
        if flat.size != 1:
            raise CurveFileError(f"{src}: 'direction' must be one string, got {flat.size} values")
        direction = str(flat[0])
        if direction not in DIRECTIONS:
            raise CurveFileError(f"{src}: direction = {direction!r}: must be maximize or minimize")
    states = stop_steps = None
    if "state" in data:
        states = _str_array(data.pop("state"), "state", n, src)
        # the states of ended trials (a curve file records no RUNNING ones)
        unknown = sorted({str(x) for x in states} - set(ENDED_STATES))
        if unknown:
            raise CurveFileError(f"{src}: 'state' holds {', '.join(map(repr, unknown))}; each must "
                                 f"be one of {', '.join(ENDED_STATES)}")
    if "stop_step" in data:
        raw_steps = np.asarray(data.pop("stop_step"))
        if raw_steps.shape != (n,) or not np.issubdtype(raw_steps.dtype, np.integer):
            raise CurveFileError(f"{src}: 'stop_step' must be {n} integers, got shape "
                                 f"{raw_steps.shape} of {raw_steps.dtype}")
        stop_steps = raw_steps.astype(np.int64)
        if (stop_steps < 0).any() or (stop_steps > lengths).any():
            raise CurveFileError(f"{src}: 'stop_step' must lie in 0..lengths[i]")
    stopping = _stopping(data.pop("stopping"), src) if "stopping" in data else None
    return CurveSet(curves, lengths, configs, task, feats, names, direction, src, data,
                    states, stop_steps, stopping)


def _stopping(arr: np.ndarray, src: str) -> dict[str, Any]:
    """The file's ``stopping`` entry: one JSON object (a study's ``[stopping]`` table)."""
    flat = np.asarray(arr).reshape(-1)
    if flat.size != 1 or not isinstance(flat[0], str):
        raise CurveFileError(f"{src}: 'stopping' must be one JSON string, got {flat.size} "
                             f"value(s) of dtype {flat.dtype}")
    return _json_object(str(flat[0]), "'stopping'", src)


def _json_object(text: str, what: str, src: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
        deep = too_deep(doc)
    except json.JSONDecodeError as exc:
        raise CurveFileError(f"{src}: {what} is not JSON: {exc}") from exc
    except RecursionError:
        deep = True
    if deep:
        raise CurveFileError(f"{src}: {what} nests deeper than {MAX_DEPTH} levels")
    if not isinstance(doc, dict):
        raise CurveFileError(f"{src}: {what} is not a JSON object")
    return doc


def save_curves(path: str | os.PathLike[str], cs: CurveSet) -> None:
    """Write ``cs`` in the curve file format (compressed)."""
    arrays: dict[str, Any] = {"curves": cs.curves.astype(np.float64), "lengths": cs.lengths}
    if cs.configs is not None:
        arrays["configs"] = np.asarray([json.dumps(c, sort_keys=True) for c in cs.configs], dtype=str)
    if cs.task is not None:
        arrays["task"] = np.asarray([str(x) for x in cs.task], dtype=str)
    if cs.config_features is not None:
        arrays["config_features"] = cs.config_features
        arrays["config_feature_names"] = np.asarray(cs.config_feature_names or [], dtype=str)
    arrays["direction"] = np.asarray(cs.direction)
    if cs.states is not None:
        arrays["state"] = np.asarray([str(x) for x in cs.states], dtype=str)
    if cs.stop_steps is not None:
        arrays["stop_step"] = np.asarray(cs.stop_steps, dtype=np.int64)
    if cs.stopping is not None:
        arrays["stopping"] = np.asarray(json.dumps(cs.stopping, sort_keys=True))
    with open(Path(path), "wb") as f:  # exactly ``path``: numpy would add ".npz" to a name
        np.savez_compressed(f, **arrays)
