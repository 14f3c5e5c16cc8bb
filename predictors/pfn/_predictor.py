"""The ``pfn`` predictor: forecasts of a curve's value at its horizon from the trained PFN.

Who calls what: the engine creates it by name (``nas.registry.create("predictor", "pfn",
options)``) on the driver; the stopping policy calls :meth:`PFNPredictor.predict` from the
scheduler hook (one curve, must be fast) and the benchmarks call it batched.  ``fit`` learns
nothing: the network was trained on the prior and conditions on the observed prefix alone.

The forecast is the network's bar distribution over [0, 1] as a
:class:`predictors.HistogramForecast`: the interior buckets are its bins, the two narrow edge
buckets its point masses at exactly 0 and exactly 1 (see :meth:`PFNPredictor.forecast_from_probs`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas._checks import Checker
from nas.errors import PredictorError
from nas.interfaces import Curve
from predictors._forecast import HistogramForecast

if TYPE_CHECKING:
    import torch

    from predictors.pfn.model import PFN

__all__ = ["PFNPredictor", "default_weights_dir"]

log = logging.getLogger(__name__)


def default_weights_dir() -> Path:
    """The directory of the weights shipped in the package."""
    return Path(__file__).resolve().parent / "weights"


class PFNPredictor:
    """LC-PFN-style predictor (see the package docstring for the model and the prior).

    ``weights``: a checkpoint directory written by ``nas pfn train`` (default: the shipped
    weights).  ``device``: ``"cpu"`` or ``"cuda[:N]"``.  ``batch_size``: curves per forward pass.
    ``threads``: if given, ``torch.set_num_threads`` (process-wide) when the model loads.
    """

    name = "pfn"
    #: ``fit`` learns nothing: the engine and ``nas bench replay`` need never refit it, and
    #: forecasts of a (curve, prefix) can be cached across a whole study.
    learns_from_curves = False

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 1024,
        threads: int | None = None,
    ) -> None:
        c = Checker("predictor pfn")
        batch_size = c.int_(batch_size, "batch_size", lo=1)
        threads = c.int_(threads, "threads", lo=1, none=True)
        if not (device == "cpu" or str(device).startswith("cuda")):
            raise c.fail("device", device, "must be 'cpu' or 'cuda[:N]'")
        self.weights = Path(weights) if weights is not None else default_weights_dir()
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        from predictors.pfn.train import CONFIG_FILE, WEIGHTS_FILE

        if not (self.weights / WEIGHTS_FILE).is_file() or not (self.weights / CONFIG_FILE).is_file():
            raise c.fail("weights", str(self.weights), f"holds no PFN checkpoint ({WEIGHTS_FILE} + "
                         f"{CONFIG_FILE}); train one with `nas pfn train --out DIR`")
        self._model: PFN | None = None
        if weights is not None:  # a user's checkpoint: a bad one fails here, not mid-study
            from predictors.pfn.train import load_model

            model, _ = load_model(self.weights, "cpu")
            if device == "cpu":
                self._model = model

    def __repr__(self) -> str:
        return f"PFNPredictor(weights={str(self.weights)!r}, device={self.device!r})"

    # -- the model ---------------------------------------------------------------------------
    @property
    def model(self) -> PFN:
        """The network, loaded on first use (safetensors; no pickle)."""
        if self._model is None:
            import torch

            from predictors.pfn.train import load_model

            if self.threads is not None:
                torch.set_num_threads(self.threads)
            self._model, _ = load_model(self.weights, self.device)
        return self._model

    @property
    def max_horizon(self) -> int:
        return int(self.model.cfg.max_horizon)

    @property
    def borders(self) -> np.ndarray:
        return self.model.borders.detach().cpu().double().numpy()

    # -- the interface -----------------------------------------------------------------------
    def fit(self, curves: Sequence[Curve]) -> PFNPredictor:
        """No-op: the PFN conditions on each curve's own prefix (returns ``self``)."""
        return self

    def _check(self, curves: Sequence[Curve], horizon: Any) -> list[np.ndarray]:
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
            raise PredictorError(f"horizon is {horizon!r}, but must be an integer")
        h = int(horizon)
        if not 1 <= h <= self.max_horizon:
            raise PredictorError(
                f"horizon is {h}, but this PFN was trained for horizons 1..{self.max_horizon}"
            )
        out = []
        for i, c in enumerate(curves):
            v = np.asarray(c.values if isinstance(c, Curve) else c, dtype=np.float64).reshape(-1)
            if v.size == 0:
                raise PredictorError(f"curve {i} is empty; a curve needs at least one value")
            bad = ~np.isfinite(v) | (v < 0.0) | (v > 1.0)
            if bad.any():
                j = int(np.argmax(bad))
                raise PredictorError(
                    f"curve {i} has value {float(v[j])} at step {j + 1}; predictors take values in "
                    "[0, 1] (the engine normalises them)"
                )
            out.append(v)
        return out

    def predict_probs(self, curves: Sequence[Curve], horizon: int) -> np.ndarray:
        """Bucket probabilities (N, n_buckets) of each curve's value at ``horizon``."""
        import torch

        values = self._check(curves, horizon)
        model = self.model
        nb = model.cfg.n_buckets
        probs = np.zeros((len(values), nb), dtype=np.float64)
        if not values:
            return probs
        h = int(horizon)
        lengths = np.array([len(v) for v in values])
        known = np.flatnonzero(lengths >= h)  # the value at the horizon is observed already
        if known.size:
            y = torch.tensor([values[i][h - 1] for i in known], dtype=torch.float32)
            probs[known, model.bucket_of(y.to(model.borders.device)).cpu().numpy()] = 1.0
        todo = np.flatnonzero(lengths < h)
        order = todo[np.argsort(lengths[todo], kind="stable")]  # similar lengths: little padding
        dev = model.borders.device
        with torch.inference_mode():
            for s in range(0, order.size, self.batch_size):
                idx = order[s : s + self.batch_size]
                probs[idx] = self._forward(model, [values[i] for i in idx], h, dev)
        return probs

    @staticmethod
    def _forward(model: PFN, values: list[np.ndarray], h: int, dev: torch.device) -> np.ndarray:
        import torch

        B = len(values)
        C = max(len(v) for v in values)
        y = np.zeros((B, C), dtype=np.float32)
        mask = np.zeros((B, C), dtype=bool)
        for r, v in enumerate(values):
            y[r, : len(v)] = v
            mask[r, : len(v)] = True
        x = torch.arange(1, C + 1, dtype=torch.float32, device=dev).div(h).expand(B, C)
        m = torch.from_numpy(mask).to(dev)
        logits = model(
            x, torch.from_numpy(y).to(dev), torch.ones(B, 1, device=dev),
            torch.full((B,), h, device=dev), None if mask.all() else m,
        )
        return torch.softmax(logits[:, 0].float(), dim=-1).double().cpu().numpy()

    def predict(self, curves: Sequence[Curve], horizon: int) -> HistogramForecast:
        """Predictive distribution of each curve's value at step ``horizon`` (batched).

        Curves may have any prefix length >= 1; a curve already at or past ``horizon`` gets a
        (bucket-wide) point mass at its observed value there.  Raises
        :class:`~nas.errors.PredictorError` for values outside [0, 1] or a horizon beyond the
        trained maximum.
        """
        probs = self.predict_probs(curves, horizon)
        return self.forecast_from_probs(probs)

    def forecast_from_probs(self, probs: np.ndarray) -> HistogramForecast:
        """The forecast of bucket probabilities: the two edge buckets become point masses.

        The model's first and last buckets (``[0, edge_width]``, ``[1 - edge_width, 1]``) hold
        the runs clipped to exactly 0 or 1; they become atoms at 0 and 1, and the interior
        buckets the bins (the first and last bin stretched to 0 and 1 over the edge width).
        So ``cdf(0)`` is the probability of exactly 0 and ``quantile(q)`` is 0 for every q
        below it, as for the clipped values the engine produces.
        """
        b = self.borders
        edges = np.concatenate([[0.0], b[2:-2], [1.0]])
        return HistogramForecast(edges, probs[:, 1:-1], probs[:, 0], probs[:, -1])
