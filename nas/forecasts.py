"""Rows of any :class:`nas.interfaces.Forecast`, for nas and for the predictors alike.

A forecast is batched (every result has shape (N,)).  :func:`take_rows` selects rows of one:
through the forecast's own ``take`` when it has one (the predictors' forecasts do), else through
a lazy view that evaluates all rows and keeps the selected ones.  :func:`as_rows` is the shape
rule of a ``y`` argument: a scalar for every row, or one value per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_rows", "take_rows"]


def as_rows(y: float | np.ndarray, n: int) -> np.ndarray:
    """``y`` as an (n,) float array: a scalar repeated, or an array of n values."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"y has {arr.shape[0]} values for a forecast of {n} rows")
    return arr


def take_rows(forecast: Any, rows: Any) -> Any:
    """Rows of any Forecast: ``forecast.take`` when it has one, else a lazy row view."""
    if hasattr(forecast, "take"):
        return forecast.take(rows)
    return _RowView(forecast, np.atleast_1d(np.arange(len(forecast.mean))[rows]))


class _RowView:
    """A subset of rows of a forecast without ``take`` (computes on all rows, then selects)."""

    def __init__(self, base: Any, idx: np.ndarray) -> None:
        self._base, self._idx = base, idx
        self._n = len(np.asarray(base.mean))

    def _full(self, y: float | np.ndarray) -> np.ndarray:
        full = np.full(self._n, np.nan)
        full[self._idx] = as_rows(y, len(self._idx))
        return np.where(np.isnan(full), 0.5, full)

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self._base.mean)[self._idx]

    def quantile(self, q: float) -> np.ndarray:
        return np.asarray(self._base.quantile(q))[self._idx]

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(self._base.cdf(self._full(y)))[self._idx]

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(self._base.logpdf(self._full(y)))[self._idx]
