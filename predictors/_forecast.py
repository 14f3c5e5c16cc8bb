"""Batched predictive distributions on the unit interval, shared by every predictor family.

Predictors return one of these from ``predict``; the stopping policies, the replay benchmark and
the runner read them through the :class:`nas.interfaces.Forecast` protocol (``mean``,
``quantile``, ``cdf``, ``logpdf``; every result has shape (N,)).

Values live in [0, 1] and real curves pile up at the bounds (most runs of a random search never
leave chance level, i.e. exactly 0).  Both classes here therefore put *atoms* at the bounds:

* :class:`CensoredMixtureForecast` - a mixture of K Gaussians per row, *censored* to
  [lower, upper]: the mass a component puts below ``lower`` sits as a point mass at ``lower``
  (likewise above ``upper``).  ``cdf`` includes the atoms (so ``cdf(lower) > 0`` when there is an
  atom at 0), ``quantile`` returns ``lower`` for every q below that atom, and ``logpdf`` is the log
  density of the continuous part (finite on [lower, upper], -inf outside).
* :class:`HistogramForecast` - piecewise-uniform probabilities on fixed bins (a "Riemann" or bar
  distribution, the output of PFN-style models), optionally with point masses at the bounds.

Both support ``take(rows)`` (a cheap row subset); :func:`nas.forecasts.take_rows` (re-exported
here) works on any Forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import ndtr

from nas.forecasts import as_rows as _as_rows
from nas.forecasts import take_rows

__all__ = ["CensoredMixtureForecast", "HistogramForecast", "concat_forecasts", "take_rows"]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def _check_q(q: float) -> float:
    qf = float(q)
    if not 0.0 <= qf <= 1.0:
        raise ValueError(f"quantile level q={q!r} must lie in [0, 1]")
    return qf


class CensoredMixtureForecast:
    """Per row a mixture of Gaussians ``sum_k w[i,k] N(loc[i,k], scale[i,k]^2)``, censored.

    Censoring to [lower, upper] means the random variable is ``clip(X, lower, upper)``: the tails
    become point masses at the bounds.  ``loc``/``scale``/``weights`` have shape (N, K) (a (N,)
    array is one component); ``weights`` default to equal and are normalised per row.
    """

    def __init__(
        self,
        loc: np.ndarray,
        scale: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        lower: float = 0.0,
        upper: float = 1.0,
    ) -> None:
        loc_a = np.asarray(loc, dtype=np.float64)
        if loc_a.ndim == 1:
            loc_a = loc_a[:, None]
        scale_a = np.broadcast_to(np.asarray(scale, dtype=np.float64).reshape(
            loc_a.shape if np.ndim(scale) == 2 else (-1, 1) if np.ndim(scale) == 1 else ()
        ), loc_a.shape)
        if loc_a.ndim != 2:
            raise ValueError(f"loc must be (N,) or (N, K), got shape {loc_a.shape}")
        if not np.all(np.isfinite(loc_a)) or not np.all(np.isfinite(scale_a)):
            raise ValueError("loc and scale must be finite")
        if np.any(scale_a <= 0):
            raise ValueError("scale must be > 0")
        if weights is None:
            w = np.full(loc_a.shape, 1.0 / loc_a.shape[1])
        else:
            w = np.broadcast_to(np.asarray(weights, dtype=np.float64), loc_a.shape).copy()
            if np.any(w < 0):
                raise ValueError("weights must be >= 0")
            w = w / w.sum(axis=1, keepdims=True)
        if not upper > lower:
            raise ValueError(f"upper={upper} must exceed lower={lower}")
        self.loc = loc_a
        self.scale = np.ascontiguousarray(scale_a)
        self.weights = w
        self.lower = float(lower)
        self.upper = float(upper)

    def __len__(self) -> int:
        return int(self.loc.shape[0])

    def __repr__(self) -> str:
        return f"CensoredMixtureForecast(n={len(self)}, k={self.loc.shape[1]})"

    def take(self, rows: Any) -> CensoredMixtureForecast:
        """The forecast of a subset of rows (an index array, slice or int)."""
        idx = np.atleast_1d(np.arange(len(self))[rows])
        out = object.__new__(CensoredMixtureForecast)
        out.loc, out.scale, out.weights = self.loc[idx], self.scale[idx], self.weights[idx]
        out.lower, out.upper = self.lower, self.upper
        return out

    @property
    def mean(self) -> np.ndarray:
        m, s, lo, hi = self.loc, self.scale, self.lower, self.upper
        a, b = (lo - m) / s, (hi - m) / s
        pa, pb = ndtr(a), ndtr(b)
        phia = np.exp(-0.5 * a * a - _LOG_SQRT_2PI)
        phib = np.exp(-0.5 * b * b - _LOG_SQRT_2PI)
        comp = lo * pa + hi * (1.0 - pb) + m * (pb - pa) + s * (phia - phib)
        return np.clip(np.sum(self.weights * comp, axis=1), lo, hi)

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        yy = _as_rows(y, len(self))
        inner = np.sum(self.weights * ndtr((yy[:, None] - self.loc) / self.scale), axis=1)
        return np.where(yy < self.lower, 0.0, np.where(yy >= self.upper, 1.0, inner))

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        yy = _as_rows(y, len(self))
        z = (yy[:, None] - self.loc) / self.scale
        logc = np.log(np.maximum(self.weights, 1e-300)) - 0.5 * z * z - _LOG_SQRT_2PI - np.log(
            self.scale
        )
        mx = logc.max(axis=1)
        out = mx + np.log(np.sum(np.exp(logc - mx[:, None]), axis=1))
        out = np.maximum(out, -700.0)  # far tails: finite, as the protocol promises
        return np.where((yy < self.lower) | (yy > self.upper), -np.inf, out)

    def quantile(self, q: float) -> np.ndarray:
        qf = _check_q(q)
        n = len(self)
        lo = np.full(n, self.lower)
        hi = np.full(n, self.upper)
        # smallest y with F(y) >= q; the atom at `lower` answers every q <= F(lower)
        at_lower = self.cdf(lo) >= qf
        m_lo = np.min(self.loc - 9.0 * self.scale, axis=1)
        m_hi = np.max(self.loc + 9.0 * self.scale, axis=1)
        a = np.clip(m_lo, self.lower, self.upper)
        b = np.clip(m_hi, self.lower, self.upper)
        for _ in range(30):  # interval <= 1 wide: 2**-30 resolution
            mid = 0.5 * (a + b)
            ok = self.cdf(mid) >= qf
            b = np.where(ok, mid, b)
            a = np.where(ok, a, mid)
        return np.where(at_lower, lo, np.minimum(b, hi))


class HistogramForecast:
    """Piecewise-uniform probabilities on bins ``edges`` (B+1,), plus optional bound atoms.

    ``probs`` (N, B) is the mass of each bin; ``atom_lower``/``atom_upper`` (N,) are point masses
    at ``edges[0]`` and ``edges[-1]``.  Rows are normalised to total mass 1.
    """

    def __init__(
        self,
        edges: np.ndarray,
        probs: np.ndarray,
        atom_lower: np.ndarray | None = None,
        atom_upper: np.ndarray | None = None,
    ) -> None:
        e = np.asarray(edges, dtype=np.float64).reshape(-1)
        p = np.atleast_2d(np.asarray(probs, dtype=np.float64))
        if e.shape[0] < 2 or np.any(np.diff(e) <= 0):
            raise ValueError("edges must be strictly increasing with at least 2 entries")
        if p.shape[1] != e.shape[0] - 1:
            raise ValueError(f"probs has {p.shape[1]} bins for {e.shape[0] - 1} edges intervals")
        n = p.shape[0]
        a0 = np.zeros(n) if atom_lower is None else np.asarray(atom_lower, float).reshape(n)
        a1 = np.zeros(n) if atom_upper is None else np.asarray(atom_upper, float).reshape(n)
        if np.any(p < 0) or np.any(a0 < 0) or np.any(a1 < 0):
            raise ValueError("probabilities must be >= 0")
        total = p.sum(axis=1) + a0 + a1
        if np.any(total <= 0):
            raise ValueError("every row needs positive total mass")
        self.edges = e
        self.probs = p / total[:, None]
        self.atom_lower = a0 / total
        self.atom_upper = a1 / total
        self._cum = np.concatenate([np.zeros((n, 1)), np.cumsum(self.probs, axis=1)], axis=1)

    def __len__(self) -> int:
        return int(self.probs.shape[0])

    def __repr__(self) -> str:
        return f"HistogramForecast(n={len(self)}, bins={self.probs.shape[1]})"

    def take(self, rows: Any) -> HistogramForecast:
        idx = np.atleast_1d(np.arange(len(self))[rows])
        out = object.__new__(HistogramForecast)
        out.edges = self.edges
        out.probs, out.atom_lower, out.atom_upper = (
            self.probs[idx], self.atom_lower[idx], self.atom_upper[idx])
        out._cum = self._cum[idx]
        return out

    @property
    def mean(self) -> np.ndarray:
        mids = 0.5 * (self.edges[1:] + self.edges[:-1])
        return (self.probs @ mids + self.atom_lower * self.edges[0]
                + self.atom_upper * self.edges[-1])

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        yy = _as_rows(y, len(self))
        e = self.edges
        j = np.clip(np.searchsorted(e, yy, side="right") - 1, 0, len(e) - 2)
        rows = np.arange(len(self))
        frac = np.clip((yy - e[j]) / (e[j + 1] - e[j]), 0.0, 1.0)
        inner = self.atom_lower + self._cum[rows, j] + frac * self.probs[rows, j]
        return np.where(yy < e[0], 0.0, np.where(yy >= e[-1], 1.0, np.minimum(inner, 1.0)))

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        yy = _as_rows(y, len(self))
        e = self.edges
        j = np.clip(np.searchsorted(e, yy, side="right") - 1, 0, len(e) - 2)
        dens = self.probs[np.arange(len(self)), j] / (e[j + 1] - e[j])
        out = np.log(np.maximum(dens, 1e-300))
        return np.where((yy < e[0]) | (yy > e[-1]), -np.inf, out)

    def quantile(self, q: float) -> np.ndarray:
        qf = _check_q(q)
        n = len(self)
        e = self.edges
        c = self.atom_lower[:, None] + self._cum  # (N, B+1): F at each edge (left limit at top)
        # first bin whose upper-edge cdf reaches q
        j = np.argmax(c[:, 1:] >= qf - 1e-12, axis=1)
        reach = (c[:, 1:] >= qf - 1e-12).any(axis=1)
        rows = np.arange(n)
        p = self.probs[rows, j]
        frac = np.where(p > 0, (qf - c[rows, j]) / np.where(p > 0, p, 1.0), 0.0)
        y = e[j] + np.clip(frac, 0.0, 1.0) * (e[j + 1] - e[j])
        y = np.where(reach, y, e[-1])
        return np.where(self.atom_lower >= qf, e[0], y)


def concat_forecasts(parts: Sequence[Any]) -> Any:
    """Stack forecasts of the same class row-wise (used to merge batches of mixed lengths)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if all(isinstance(p, CensoredMixtureForecast) for p in parts):
        k = max(p.loc.shape[1] for p in parts)

        def pad(a: np.ndarray, fill: float) -> np.ndarray:
            return np.pad(a, ((0, 0), (0, k - a.shape[1])), constant_values=fill)

        loc = np.concatenate([pad(p.loc, 0.5) for p in parts])
        scale = np.concatenate([pad(p.scale, 1.0) for p in parts])
        w = np.concatenate([pad(p.weights, 0.0) for p in parts])
        return CensoredMixtureForecast(loc, scale, w, lower=first.lower, upper=first.upper)
    raise TypeError(f"cannot concatenate forecasts of types {sorted({type(p).__name__ for p in parts})}")
