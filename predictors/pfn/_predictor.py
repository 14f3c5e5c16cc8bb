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

from nas import Checker
from nas.errors import PredictorError
from nas.interfaces import Curve, StudyContext
from predictors._forecast import HistogramForecast

if TYPE_CHECKING:
    import torch

    from predictors.pfn.model import PFN
    from predictors.pfn.study_model import StudyPFN, StudyTensors

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
    ``study``: read the study context when the weights hold a study reader (``false``, the
    default of ``pfn``: the prefix alone, whatever context is passed, and ``reads_study`` is
    False; :class:`StudyPFNPredictor`, entry point ``pfn-study``, reads it).
    """

    name = "pfn"
    #: ``fit`` learns nothing: the engine and ``nas bench replay`` need never refit it, and
    #: forecasts of a (curve, prefix) can be cached across a whole study.
    learns_from_curves = False
    #: ``predict(..., context=StudyContext)`` reads the study's other curves: set per instance
    #: (``study=true`` and weights that hold a study reader, as the shipped ones do).
    reads_study = False

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 1024,
        threads: int | None = None,
        study: bool = False,
    ) -> None:
        c = Checker(f"predictor {self.name}")
        study = c.bool_(study, "study")
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
        from predictors.pfn.train import read_config

        self._is_study = "study" in read_config(self.weights)
        self.reads_study = study and self._is_study
        self._model: PFN | None = None
        self._study: StudyPFN | None = None
        self._tokens: tuple[Any, StudyTensors, Any] | None = None  # (key, tensors, tokens)
        self._borders: np.ndarray | None = None
        if weights is not None:  # a user's checkpoint: a bad one fails here, not mid-study
            self._load("cpu" if device == "cpu" else None)

    def _load(self, device: str | None) -> None:
        """Load the weights (on ``device``; None: only check that they load)."""
        from predictors.pfn.study_train import load_study_model
        from predictors.pfn.train import load_model

        if self._is_study:
            study, _ = load_study_model(self.weights, device or "cpu")
            if device is not None:
                self._study, self._model = study, study.base
        else:
            model, _ = load_model(self.weights, device or "cpu")
            if device is not None:
                self._model = model

    def __repr__(self) -> str:
        return f"PFNPredictor(weights={str(self.weights)!r}, device={self.device!r})"

    # -- the model ---------------------------------------------------------------------------
    @property
    def model(self) -> PFN:
        """The network, loaded on first use (safetensors; no pickle)."""
        if self._model is None:
            import torch

            if self.threads is not None:
                torch.set_num_threads(self.threads)
            self._load(self.device)
        assert self._model is not None
        return self._model

    @property
    def study_model(self) -> StudyPFN | None:
        """The study reader around :attr:`model` (None for a prefix-only checkpoint)."""
        _ = self.model
        return self._study

    @property
    def max_horizon(self) -> int:
        return int(self.model.cfg.max_horizon)

    @property
    def borders(self) -> np.ndarray:
        if self._borders is None:
            self._borders = self.model.borders.detach().cpu().double().numpy()
        return self._borders

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

    def predict_probs(self, curves: Sequence[Curve], horizon: int,
                      context: StudyContext | None = None) -> np.ndarray:
        """Bucket probabilities (N, n_buckets) of each curve's value at ``horizon``."""
        import torch

        values = self._check(curves, horizon)
        model = self.model
        study = self._study_tensors(context, int(horizon)) if context is not None else None
        qfeats = None
        if study is not None and study[0].feats is not None:
            qfeats = _features(curves, study[0].feats.shape[-1])
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
        if study is not None and qfeats is None and study[0].feats is not None:
            study = (_without_features(study[0]), study[1])
        with torch.inference_mode():
            for s in range(0, order.size, self.batch_size):
                idx = order[s : s + self.batch_size]
                qf = None if qfeats is None else torch.from_numpy(qfeats[idx]).to(dev)
                probs[idx] = self._forward(model, [values[i] for i in idx], h, dev, study, qf)
        return probs

    def _study_tensors(self, context: StudyContext, h: int) -> tuple[StudyTensors, Any] | None:
        """The context as tensors and its encoding, cached under (version, horizon, size)."""
        import torch

        from predictors.pfn.study_model import StudyTensors

        sm = self.study_model
        if sm is None or not self.reads_study or len(context.curves) == 0:
            return None
        key = (context.version, h, len(context.curves))
        if self._tokens is not None and self._tokens[0] == key:
            return self._tokens[1], self._tokens[2]
        curves = _select(context, sm.scfg.max_context)
        vals = [np.clip(np.nan_to_num(np.asarray(c.values, dtype=np.float64).reshape(-1)[:h]), 0, 1)
                for c, _ in curves]
        K = len(vals)
        y = np.zeros((1, K, h), dtype=np.float32)
        length = np.ones((1, K), dtype=np.int64)
        complete = np.zeros((1, K), dtype=bool)
        for k, (v, (_, done)) in enumerate(zip(vals, curves)):
            n = max(1, min(h, v.size))
            if v.size:
                y[0, k, :n] = v[:n]
            length[0, k] = n
            complete[0, k] = done or n >= h
        feats = _features([c for c, _ in curves], None)
        dev = self.model.borders.device
        st = StudyTensors(torch.from_numpy(y).to(dev), torch.from_numpy(length).to(dev),
                          torch.from_numpy(complete).to(dev),
                          None if feats is None else torch.from_numpy(feats)[None].to(dev))
        with torch.inference_mode():
            tokens = sm.encode_context(st)
        self._tokens = (key, st, tokens)
        return st, tokens

    def _forward(self, model: PFN, values: list[np.ndarray], h: int, dev: torch.device,
                 study: tuple[StudyTensors, Any] | None = None, qfeats: Any = None) -> np.ndarray:
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
        args = (x, torch.from_numpy(y).to(dev), torch.ones(B, 1, device=dev),
                torch.full((B,), h, device=dev), None if mask.all() else m)
        if study is not None and self._study is not None:
            st, tokens = study
            logits = self._study(*args, study=st, qfeats=qfeats, tokens=tokens)
        else:
            logits = model(*args)
        return torch.softmax(logits[:, 0].float(), dim=-1).double().cpu().numpy()

    def predict(self, curves: Sequence[Curve], horizon: int,
                context: StudyContext | None = None) -> HistogramForecast:
        """Predictive distribution of each curve's value at step ``horizon`` (batched).

        Curves may have any prefix length >= 1; a curve already at or past ``horizon`` gets a
        (bucket-wide) point mass at its observed value there.  Raises
        :class:`~nas.errors.PredictorError` for values outside [0, 1] or a horizon beyond the
        trained maximum.  ``context``: the study's other curves (see
        :class:`~nas.interfaces.StudyContext`; at most ``max_context`` of them are read, chosen
        by a hash of their contents, so independent of their order); None or empty: the prefix
        alone.  The context's encoding is cached under ``context.version``.
        """
        probs = self.predict_probs(curves, horizon, context)
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


def _select(context: StudyContext, k: int) -> list[tuple[Curve, bool]]:
    """At most ``k`` of the context's curves, in an order that depends only on their contents
    (a hash of values and features), so the choice and the result ignore the context's order."""
    import hashlib

    items = list(zip(context.curves, context.complete))
    if len(items) <= k:  # all of them: the model itself ignores their order
        return items

    def key(item: tuple[Curve, bool]) -> bytes:
        c, done = item
        h = hashlib.blake2b(np.asarray(c.values, dtype=np.float64).tobytes(), digest_size=8)
        if c.features is not None:
            h.update(np.asarray(c.features, dtype=np.float64).tobytes())
        h.update(bytes([done]))
        return h.digest()

    return sorted(items, key=key)[:k]


def _features(curves: Sequence[Any], n: int | None) -> np.ndarray | None:
    """The curves' config features as (N, F) float32, or None when any is missing or the
    widths differ (or differ from ``n``)."""
    rows = [getattr(c, "features", None) for c in curves]
    if not rows or any(r is None for r in rows):
        return None
    arr = [np.nan_to_num(np.asarray(r, dtype=np.float64).reshape(-1)) for r in rows]
    width = arr[0].size
    if width == 0 or any(a.size != width for a in arr) or (n is not None and width != n):
        return None
    return np.stack(arr).astype(np.float32)


def _without_features(st: StudyTensors) -> StudyTensors:
    """The context without config features (the queries have none, or other widths)."""
    from predictors.pfn.study_model import StudyTensors

    return StudyTensors(st.y, st.length, st.complete, None)


class StudyPFNPredictor(PFNPredictor):
    """The shipped PFN with its study reader on (entry point ``pfn-study``): forecasts read the
    study's other curves and configs (``reads_study``), see docs/pfn.md.  Not the default
    ``pfn``: on the dev families it is better at early cutoffs but not at 0.4, and below baker
    (docs/pfn.md has the table)."""

    name = "pfn-study"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 1024, threads: int | None = None,
                 study: bool = True) -> None:
        super().__init__(weights, device, batch_size, threads, study)
