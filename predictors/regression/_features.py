"""Fixed-size features of learning-curve prefixes of any length (Baker et al. 2017, section 3).

A batch may mix prefix lengths, so instead of one model per length every prefix is summarised by
the same columns, with the prefix length among them; one regressor then serves every length and
shares statistical strength across them (early in a study there are few complete curves, and
splitting them over per-length models would starve each).  Columns, for a prefix y_1..y_c of a
curve whose horizon is T:

====================  =====================================================================
``frac``              c / T (how far the curve is)
``steps``             c
``last``              y_c
``v25, v50, v75``     observed values at 25/50/75% of the prefix (resampled, nearest below)
``first``             y_1
``mean3``             mean of the last 3 values
``max, min3``         best value so far, lowest of the last 3
``d1``                mean first difference over the last 3 steps (0 when c = 1)
``d2``                mean second difference over the last 3 steps (0 when c < 3)
``at_floor``          1 when every value so far is 0 (chance level: the atom of real curves)
config features       the curve's ``features`` when the batch has them (NaN filled by the fit)
====================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.errors import PredictorError
from nas.interfaces import Curve

__all__ = ["CURVE_FEATURES", "config_matrix", "pad_curves", "prefix_features"]

CURVE_FEATURES = ("frac", "steps", "last", "v25", "v50", "v75", "first", "mean3", "max", "min3",
                  "d1", "d2", "at_floor")


def pad_curves(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """(N, max length) matrix padded with NaN, and the lengths; values checked to lie in [0, 1]."""
    n = len(curves)
    lengths = np.array([len(c) for c in curves], dtype=np.int64)
    if n and lengths.min() < 1:
        raise PredictorError("every curve needs at least one observed value")
    width = int(lengths.max()) if n else 1
    mat = np.full((n, width), np.nan)
    for i, c in enumerate(curves):
        mat[i, : lengths[i]] = c.values
    obs = mat[~np.isnan(mat)]
    if obs.size and (obs.min() < 0.0 or obs.max() > 1.0):
        raise PredictorError(
            f"curve values must be normalised to [0, 1] (got [{obs.min():.4g}, {obs.max():.4g}])"
        )
    return mat, lengths


def prefix_features(mat: np.ndarray, c: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    """Curve-shape features of the prefixes ``mat[i, :c[i]]`` (vectorised over rows).

    ``mat`` may hold more values than the prefix (training uses full curves with several c).
    Missing values inside a prefix (NaN) are carried forward from the previous value (0 first).
    """
    m = mat.copy()
    if np.isnan(m[:, 0]).any():
        m[np.isnan(m[:, 0]), 0] = 0.0
    # forward fill NaN (only matters for gaps inside prefixes; padding is never read)
    idx = np.where(np.isnan(m), 0, np.arange(m.shape[1])[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    m = m[np.arange(m.shape[0])[:, None], idx]
    rows = np.arange(m.shape[0])
    c = np.asarray(c, dtype=np.int64)
    last_i = c - 1
    last = m[rows, last_i]
    cols = np.arange(m.shape[1])[None, :]
    inside = cols < c[:, None]
    masked = np.where(inside, m, np.nan)
    vmax = np.nanmax(masked, axis=1)
    win = inside & (cols >= (c - 3)[:, None])
    mean3 = np.nanmean(np.where(win, m, np.nan), axis=1)
    min3 = np.nanmin(np.where(win, m, np.nan), axis=1)
    k1 = np.maximum(np.minimum(3, c - 1), 0)
    d1 = np.where(k1 > 0, (last - m[rows, np.maximum(last_i - k1, 0)]) / np.maximum(k1, 1), 0.0)
    k2 = np.maximum(np.minimum(3, c - 2), 0)
    # sum of the last k2 second differences telescopes to d(c) - d(c - k2)

    def diff_at(j: np.ndarray) -> np.ndarray:
        return m[rows, j] - m[rows, np.maximum(j - 1, 0)]

    d2 = np.where(k2 > 0, (diff_at(last_i) - diff_at(np.maximum(last_i - k2, 0)))
                  / np.maximum(k2, 1), 0.0)
    res = [m[rows, np.floor(r * last_i).astype(np.int64)] for r in (0.25, 0.5, 0.75)]
    h = np.asarray(horizon, dtype=np.float64)
    return np.column_stack([c / h, c.astype(np.float64), last, *res, m[:, 0], mean3, vmax, min3,
                            d1, d2, (vmax <= 0.0).astype(np.float64)])


def config_matrix(curves: Sequence[Curve]) -> np.ndarray | None:
    """Config features of a batch as an (N, D) matrix (NaN rows where a curve has none)."""
    dims = {int(c.features.shape[0]) for c in curves if c.features is not None}
    if not dims:
        return None
    if len(dims) > 1:
        raise PredictorError(f"curves of one batch carry different numbers of features: {sorted(dims)}")
    d = dims.pop()
    out = np.full((len(curves), d), np.nan)
    for i, c in enumerate(curves):
        if c.features is not None:
            out[i] = c.features
    return out
