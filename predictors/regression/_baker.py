"""The Baker-style learning-curve regressor (Baker et al. 2017, "Accelerating neural
architecture search using performance prediction", ICLR workshop).

Who calls what, when: the engine (runner or ``nas bench``) calls :meth:`BakerPredictor.fit` with
the study's complete curves on the refit schedule (:func:`nas.policies.should_refit`), off the
scheduler hook's path; the predictive policy calls :meth:`BakerPredictor.predict` from the hook
with one or a few partial curves.

Model.  Every prefix becomes a fixed-size feature row (:mod:`._features`: observed values, first
and second differences near the end, prefix length, config features), the target is the final
value.  Three regressors are compared by curve-grouped 3-fold cross-validation (MSE) and the best
is kept (``model="auto"``): nu-SVR with an RBF kernel, a random forest, and Bayesian ridge.  The
kept model is the average of its three fold models (each fitted on 2/3 of the curves), so one
fit yields both the model and its held-out residuals.

Predictive distribution.  Centred on the model's mean; the spread is the empirical distribution
of *held-out* residuals (cross-validation predictions of the chosen model) of similar prefixes:
residuals are pooled per prefix-fraction bucket (geometric: up to 1/32, 1/16, ... of the
horizon), per "still at 0" flag (most real curves sit at
exactly 0 = chance level, and their outcome is either staying there or taking off), and per
quantile bin of the predicted mean (a Mondrian split into up to 8 bins of >= 40 residuals, so
the spread depends on the level; sparse bins borrow from coarser pools).  Kernel bandwidth:
Silverman's rule, floored at 0.005 (the benchmark's likelihood bin width).
Each row's forecast is the mixture of Gaussians placed at ``mean + r_j`` for K residual
quantiles r_j (kernel-smoothed with the bin's bandwidth), censored to [0, 1]: curves that stay
at 0 get a point mass at 0, which the binned log-likelihood rewards.  Because the residuals are
held out, P(y_T > y_best) is calibrated in the frequency sense across similar prefixes.

Curves still at 0.  A prefix that is all 0 has constant shape features, so its tail
P(y_T > y) = P(the run leaves 0 | config, prefix length) x P(y_T > y | it does).  Those rows get a
two-part ("hurdle") forecast instead (:class:`_Hurdle`, fitted on the training rows still at 0):
a forest classifier of "final > 0.01" whose leaf shares are shrunk to a per-prefix-length base
rate by one pseudo-curve, an active part (forest regression of active finals with held-out
residuals and the uninformed component) and an inactive part (an atom at exactly 0 plus the
positive inactive finals).  ``nas bench predict``'s ``tail_calibration`` block and
``benchmarks/baker_tail_logo.py`` (leave one task group out) check that this tail is calibrated.

Small samples.  Residuals from m distinct curves cannot show events rarer than about 1/m (a
curve that leaves chance level late, say), so every bin's mixture also holds an uninformed
component, censored N(0.5, 0.5^2), with weight 1/(m+1) (Laplace's rule of succession).

Fallback.  With fewer than ``min_curves`` complete curves (default 20) ``predict`` returns a
deliberately wide forecast.  Why 20: with n exchangeable trials the chance that the next one beats
them all is 1/(n+1), which falls below a 5% threshold only from n = 20 on; no model learnt from
fewer curves can justify stopping at that level.  The fallback is: half N(last value, s^2) with s
shrinking as the curve progresses, half N(0.5, 0.5^2), censored.  Its P(y_T > y) is at least
0.08 for every y < 1, so the predictive policy never stops on it (for any delta below 0.08).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas import Checker
from nas.errors import PredictorError
from nas.interfaces import Curve
from predictors._forecast import CensoredMixtureForecast
from predictors.regression._features import (
    CURVE_FEATURES,
    config_matrix,
    pad_curves,
    prefix_features,
)

__all__ = ["MODELS", "BakerPredictor"]

logger = logging.getLogger(__name__)

MODELS = ("svr", "forest", "ridge")
#: prefix-fraction buckets of the residual spread: geometric, like the training grid of prefix
#: lengths (what a prefix reveals grows roughly with log c): (0, 1/32], (1/32, 1/16], ... (1/2, 1]
_FRAC_EDGES = np.array([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2])
#: "left chance level": a final value above this is *active* (twice the benchmark's likelihood bin
#: width; below it a run is indistinguishable from the atom at 0 at that resolution)
_ACTIVE_LEVEL = 0.01
#: smallest forest leaf of the P(active) classifier, in curves (``min_samples_leaf`` in rows);
#: each leaf's frequency is then shrunk by one pseudo-curve (see :meth:`_Hurdle.shrink_leaves`)
_LEAF_CURVES = 2
#: narrowest kernel: the resolution of the benchmark's binned likelihood (h = 0.005); a sharper
#: component earns nothing there and only makes coverage brittle
_MIN_BANDWIDTH = 0.005


def _prefix_grid(length: int) -> np.ndarray:
    """Prefix lengths taken from a complete curve for training: dense early, geometric later."""
    g = np.unique(np.ceil(np.geomspace(1, max(length - 1, 1), 16)).astype(np.int64))
    return g[(g >= 1) & (g < length)]


def _make_model(name: str, seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import BayesianRidge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import NuSVR

    if name == "svr":
        return make_pipeline(StandardScaler(), NuSVR(nu=0.5, C=1.0, gamma="scale"))
    if name == "forest":
        return RandomForestRegressor(n_estimators=24, min_samples_leaf=4, max_features=0.5,
                                     random_state=seed, n_jobs=1)
    if name == "ridge":
        return make_pipeline(StandardScaler(), BayesianRidge())
    raise Checker("predictor baker").fail("model", name, f"must be one of auto, {', '.join(MODELS)}")


class _FoldEnsemble:
    """The cross-validation fold models, averaged: each saw 2/3 of the curves, and together
    they are the fitted model (bagging for free; the residuals come from the same fits)."""

    def __init__(self, models: list[Any]) -> None:
        self.models = models
        # forests: call the trees directly (sklearn's per-call joblib dispatch costs ~1 ms a
        # forest, which the scheduler hook's 20 ms budget cannot afford for one curve)
        self._trees = [t.tree_ for m in models for t in getattr(m, "estimators_", [])]
        if len(self._trees) == 0 or not all(hasattr(m, "estimators_") for m in models):
            self._trees = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self._trees:
            x32 = np.ascontiguousarray(x, dtype=np.float32)
            total = np.zeros(x.shape[0])
            for tree in self._trees:
                total += tree.predict(x32).reshape(x.shape[0], -1)[:, 0]
            return total / len(self._trees)
        return np.mean([m.predict(x) for m in self.models], axis=0)


class _Hurdle:
    """Forecast of curves still at 0 (chance level): P(active | x) times the active finals' spread.

    Fitted by :meth:`BakerPredictor._fit_hurdle` on the training rows whose prefix is all 0.
    ``trees`` is a forest classifier's trees (leaf frequencies of "final > _ACTIVE_LEVEL"), shrunk
    towards ``base`` (per prefix-fraction bucket ``_FRAC_EDGES``: the smoothed share of active
    curves among those still at 0 at that point; it falls as the prefix grows) with one
    pseudo-curve against the curves in each leaf; ``active`` predicts the final value of an
    active curve from the features (None: the mean ``active_mean``), ``active_parts`` and
    ``inactive_parts`` are :meth:`BakerPredictor._summarise` summaries (residual quantiles,
    bandwidth, uninformed weight) of active residuals and of the inactive final values above 0;
    ``zero_share`` is the share of inactive finals exactly at 0 (an atom), per prefix-fraction
    bucket.
    """

    def __init__(self, trees: list[Any], base: np.ndarray, active: _FoldEnsemble | None,
                 active_mean: float, active_parts: tuple[np.ndarray, float, float] | None,
                 inactive_parts: tuple[np.ndarray, float, float] | None,
                 zero_share: np.ndarray) -> None:
        self.trees = trees
        self.zero_share = zero_share
        self.base = base
        self.leaf_frac: list[np.ndarray] = []
        self.leaf_curves: list[np.ndarray] = []
        self.active = active
        self.active_mean = active_mean
        self.active_parts = active_parts
        self.inactive_parts = inactive_parts

    def shrink_leaves(self, rows_per_curve: float) -> None:
        """Per tree, each leaf's P(active): its (bootstrap-weighted) share of active rows,
        shrunk towards the row's ``base`` with the weight of one pseudo-curve against the
        leaf's ``n_rows / rows_per_curve`` curves (a Beta prior of strength 1 with mean
        ``base``): a leaf of 2 inactive curves says p = base/3, one of 50 says base/51.  This
        stores each leaf's share and curve count; :meth:`p_active` combines them."""
        self.leaf_frac, self.leaf_curves = [], []
        for tree in self.trees:
            v = tree.value.reshape(tree.value.shape[0], -1)
            self.leaf_frac.append(v[:, 1] / np.maximum(v.sum(axis=1), 1e-12))
            self.leaf_curves.append(tree.weighted_n_node_samples / max(rows_per_curve, 1e-12))

    def row_base(self, x: np.ndarray) -> np.ndarray:
        """The prior share of active curves for each row's prefix-fraction bucket."""
        return self.base[np.searchsorted(_FRAC_EDGES, x[:, 0], side="left")]

    def p_active(self, x: np.ndarray) -> np.ndarray:
        """P(final > _ACTIVE_LEVEL | features), never exactly 0 or 1."""
        base = self.row_base(x)
        if not self.trees:
            return base
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        total = np.zeros(x.shape[0])
        for tree, frac, n_c in zip(self.trees, self.leaf_frac, self.leaf_curves):
            leaf = tree.apply(x32)
            total += (frac[leaf] * n_c[leaf] + base) / (n_c[leaf] + 1.0)
        return total / len(self.trees)

    def mean_active(self, x: np.ndarray) -> np.ndarray:
        if self.active is None:
            return np.full(x.shape[0], self.active_mean)
        return np.clip(self.active.predict(x), 0.0, 1.0)


class BakerPredictor:
    """Regression from prefix features to the final value, with a held-out-residual spread.

    Options (keyword, validated): ``model`` ("auto" = choose by CV, or one of svr/forest/ridge),
    ``min_curves`` (fallback below it, >= 3), ``max_rows`` (training rows subsampled to this
    many, >= 100; the nu-SVR uses at most ``svr_rows``), ``components`` (residual quantiles per
    forecast row, >= 4), ``seed``.  Learned state ends in ``_``; ``cv_scores_`` holds the last
    model selection's CV MSE per model.
    """

    name = "baker"
    learns_from_curves = True  # the engine refits it on the study's complete curves

    def __init__(self, model: str = "auto", min_curves: int = 20, max_rows: int = 3000,
                 svr_rows: int = 1000, components: int = 40, seed: int = 0) -> None:
        c = Checker("predictor baker")
        self.model = c.choice(model, "model", ("auto", *MODELS))
        self.min_curves = c.int_(min_curves, "min_curves", lo=3)
        self.max_rows = c.int_(max_rows, "max_rows", lo=100)
        self.svr_rows = c.int_(svr_rows, "svr_rows", lo=50)
        self.components = c.int_(components, "components", lo=4)
        self.seed = c.int_(seed, "seed", lo=0)
        self.model_name_: str | None = None
        self.model_: Any = None
        self.cv_scores_: dict[str, float] = {}
        self.n_curves_ = 0
        self.n_features_: int | None = None
        self.fill_: np.ndarray | None = None
        self.bins_: dict[tuple[int, int],
                        tuple[np.ndarray, list[tuple[np.ndarray, float, float]]]] = {}
        self.fit_seconds_ = 0.0
        self.frac_edges_ = _FRAC_EDGES
        self.hurdle_: _Hurdle | None = None

    def __repr__(self) -> str:
        return (f"BakerPredictor(model={self.model!r}, selected={self.model_name_!r}, "
                f"n_curves={self.n_curves_})")

    # ------------------------------------------------------------------ training
    def _design(self, curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows (several prefixes per complete curve), targets and curve ids."""
        mat, lengths = pad_curves(curves)
        ids, cs = [], []
        for i, L in enumerate(lengths):
            g = _prefix_grid(int(L))
            ids.append(np.full(g.shape[0], i))
            cs.append(g)
        cid = np.concatenate(ids)
        c = np.concatenate(cs)
        rng = np.random.default_rng(self.seed)
        if cid.shape[0] > self.max_rows:
            keep = np.sort(rng.choice(cid.shape[0], self.max_rows, replace=False))
            cid, c = cid[keep], c[keep]
        x = prefix_features(mat[cid], c, lengths[cid])
        conf = config_matrix(curves)
        if conf is not None:
            x = np.column_stack([x, conf[cid]])
        y = mat[cid, lengths[cid] - 1]
        return x, y, cid

    def _fit_one(self, name: str, x: np.ndarray, y: np.ndarray) -> Any:
        model = _make_model(name, self.seed)
        if name == "svr" and x.shape[0] > self.svr_rows:
            keep = np.random.default_rng(self.seed + 1).choice(x.shape[0], self.svr_rows,
                                                               replace=False)
            x, y = x[keep], y[keep]
        return model.fit(x, y)

    def _cv_predict(self, name: str, x: np.ndarray, y: np.ndarray, cid: np.ndarray,
                    folds: int = 3) -> tuple[np.ndarray, _FoldEnsemble]:
        """Held-out predictions, folds by curve (a curve's prefixes never straddle folds), and
        the fold models as an averaging ensemble (the fitted model: no extra full fit)."""
        ucid = np.unique(cid)
        perm = np.random.default_rng(self.seed + 2).permutation(ucid)
        fold_of = np.empty(int(ucid.max()) + 1, dtype=np.int64)
        fold_of[perm] = np.arange(perm.shape[0]) % folds
        f = fold_of[cid]
        out = np.empty_like(y)
        models = []
        for k in range(folds):
            te = f == k
            models.append(self._fit_one(name, x[~te], y[~te]))
            out[te] = models[-1].predict(x[te])
        return out, _FoldEnsemble(models)

    def fit(self, curves: Sequence[Curve]) -> BakerPredictor:
        """Learn from complete curves (each curve's last value is its final value).

        With ``model="auto"`` the three regressors are compared by CV on every fit (the engine
        fits on the refit schedule only); :meth:`refit` keeps the chosen model and skips that.
        """
        return self._fit(curves, select=True)

    def refit(self, curves: Sequence[Curve]) -> BakerPredictor:
        """Fit again with the model chosen by the last selection (no CV over models)."""
        return self._fit(curves, select=False)

    def _fit(self, curves: Sequence[Curve], select: bool) -> BakerPredictor:
        t0 = time.perf_counter()
        usable = [c for c in curves if len(c) >= 2]
        self.n_curves_ = len(usable)
        if len(usable) < self.min_curves:
            self.model_ = None
            self.model_name_ = None if self.model == "auto" else self.model
            self.fit_seconds_ = time.perf_counter() - t0
            logger.debug("baker: %d complete curves < min_curves=%d, using the fallback",
                         len(usable), self.min_curves)
            return self
        x, y, cid = self._design(usable)
        self.n_features_ = x.shape[1]
        self.fill_ = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)
        self.fill_ = np.where(np.isfinite(self.fill_), self.fill_, 0.0)
        x = np.where(np.isfinite(x), x, self.fill_[None, :])
        if self.model == "auto" and (select or self.model_name_ is None):
            runs = {m: self._cv_predict(m, x, y, cid) for m in MODELS}
            self.cv_scores_ = {m: float(np.mean((r[0] - y) ** 2)) for m, r in runs.items()}
            chosen = min(self.cv_scores_, key=lambda m: self.cv_scores_[m])
            held, ensemble = runs[chosen]
            logger.info("baker: CV MSE %s -> %s", self.cv_scores_, chosen)
        else:
            chosen = self.model if self.model != "auto" else str(self.model_name_)
            held, ensemble = self._cv_predict(chosen, x, y, cid)
        self.model_name_ = chosen
        self.model_ = ensemble
        self._fit_residuals(x, y, np.clip(held, 0.0, 1.0), cid)
        self.hurdle_ = self._fit_hurdle(x, y, cid)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _fit_hurdle(self, x: np.ndarray, y: np.ndarray, cid: np.ndarray) -> _Hurdle | None:
        """The two-part forecast of prefixes still at 0 (see :class:`_Hurdle`).

        Why: at chance level the prefix carries nothing but its length, so the tail
        P(y_T > y_best) there is P(the run leaves 0) x P(it ends above y_best | it does); the
        first factor is what the config features decide (on TaskSet the optimiser settings),
        and a residual-spread Gaussian around a mean near 0 cannot express it.
        """
        from sklearn.ensemble import RandomForestClassifier

        fl = x[:, CURVE_FEATURES.index("at_floor")] == 1.0
        if not fl.any():
            return None
        xf, yf, cf = x[fl], y[fl], cid[fl]
        z = yf > _ACTIVE_LEVEL
        ids = np.unique(cf)
        act_ids = np.unique(cf[z])
        # prior share of active curves per prefix-fraction bucket, (a + 1/2) / (n + 1): never 0
        # or 1; an empty bucket borrows the next shorter one (else all rows)
        overall = (act_ids.shape[0] + 0.5) / (ids.shape[0] + 1.0)
        fb = np.searchsorted(_FRAC_EDGES, xf[:, 0], side="left")
        base = np.empty(len(_FRAC_EDGES) + 1)
        for b in range(base.shape[0]):
            sel = fb == b
            if sel.any():
                base[b] = (np.unique(cf[sel & z]).shape[0] + 0.5) / (np.unique(cf[sel]).shape[0]
                                                                     + 1.0)
            else:
                base[b] = base[b - 1] if b > 0 else overall
        trees: list[Any] = []
        if 0 < act_ids.shape[0] < ids.shape[0]:
            rows_per_curve = xf.shape[0] / ids.shape[0]
            clf = RandomForestClassifier(
                n_estimators=32, max_features=0.5, random_state=self.seed, n_jobs=1,
                min_samples_leaf=max(2, round(_LEAF_CURVES * rows_per_curve)))
            clf.fit(xf, z)
            trees = [t.tree_ for t in clf.estimators_]
        active: _FoldEnsemble | None = None
        active_mean = 0.5
        active_parts = None
        if act_ids.shape[0] > 0:
            xa, ya, ca = xf[z], yf[z], cf[z]
            active_mean = float(np.mean(ya))
            if act_ids.shape[0] >= 6:  # 3 folds of >= 2 curves
                held, active = self._cv_predict("forest", xa, ya, ca)
                res = ya - np.clip(held, 0.0, 1.0)
            else:
                res = ya - active_mean
            active_parts = self._summarise(res, ca)
        # inactive finals: exactly 0 (chance level, diverged) is an atom, not a kernel at 0 (a
        # kernel puts half its mass above 0 and overstates P(y_T > 0)); the rest is smoothed
        yi, ci = yf[~z], cf[~z]
        # per prefix-fraction bucket (a run flat at 0 for longer is more often exactly 0)
        zero_share = np.ones(len(_FRAC_EDGES) + 1)
        fbi = fb[~z]
        for b in range(zero_share.shape[0]):
            sel = fbi == b
            if sel.any():
                zero_share[b] = float(np.mean(yi[sel] <= 0.0))
            elif b > 0:
                zero_share[b] = zero_share[b - 1]
            elif yi.shape[0]:
                zero_share[b] = float(np.mean(yi <= 0.0))
        pos = yi > 0.0
        inactive_parts = self._summarise(yi[pos], ci[pos]) if pos.any() else None
        hurdle = _Hurdle(trees, base, active, active_mean, active_parts, inactive_parts,
                         zero_share)
        hurdle.shrink_leaves(xf.shape[0] / ids.shape[0])
        return hurdle

    def _bin_keys(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frac_b = np.searchsorted(self.frac_edges_, x[:, 0], side="left")
        floor = x[:, CURVE_FEATURES.index("at_floor")].astype(np.int64)
        return frac_b, floor

    def _fit_residuals(self, x: np.ndarray, y: np.ndarray, mu: np.ndarray,
                       cid: np.ndarray) -> None:
        """Per (fraction bucket, at-0 flag): mean-quantile edges and residual quantiles."""
        min_bin = 40
        res = y - mu
        fb, fl = self._bin_keys(x)
        self.bins_ = {}
        pooled = self._summarise(res, cid)
        for b in range(len(self.frac_edges_) + 1):
            for flag in (0, 1):
                sel = (fb == b) & (fl == flag)
                r, m, ids = res[sel], mu[sel], cid[sel]
                if r.shape[0] < min_bin:  # too few: borrow from the flag, then from everything
                    alt = fl == flag
                    if alt.sum() >= min_bin:
                        self.bins_[(b, flag)] = (np.array([]), [self._summarise(res[alt],
                                                                                cid[alt])])
                    else:
                        self.bins_[(b, flag)] = (np.array([]), [pooled])
                    continue
                nb = int(min(8, r.shape[0] // min_bin)) or 1
                edges = np.unique(np.quantile(m, np.arange(1, nb) / nb)) if nb > 1 \
                    else np.array([])
                which = np.searchsorted(edges, m, side="right")
                whole = self._summarise(r, ids)
                self.bins_[(b, flag)] = (edges, [
                    self._summarise(r[which == j], ids[which == j])
                    if (which == j).sum() >= min_bin else whole
                    for j in range(edges.shape[0] + 1)])

    def _summarise(self, r: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, float, float]:
        """K residual quantiles, a kernel bandwidth (Silverman's rule, floored at 0.005) and the
        weight of the uninformed component: 1/(m+1) for residuals from m distinct curves (Laplace's
        rule of succession: what m curves never showed still has a 1/(m+1) chance)."""
        k = self.components
        qs = np.quantile(r, (np.arange(k) + 0.5) / k)
        sd = float(np.std(r))
        iqr = float(np.subtract(*np.quantile(r, [0.75, 0.25]))) / 1.349
        spread = min(sd, iqr) if iqr > 0 else sd
        h = max(_MIN_BANDWIDTH, 0.9 * spread * r.shape[0] ** -0.2)
        # variance-corrected kernel estimate (Jones 1991): shrink the quantiles towards their
        # mean so that quantile spread plus kernel width keeps the residuals' variance
        var = float(np.var(r))
        if var > 0:
            centre = float(np.mean(r))
            qs = centre + (qs - centre) / np.sqrt(1.0 + h * h / var)
        return qs, h, 1.0 / (np.unique(ids).shape[0] + 1.0)

    # ---------------------------------------------------------------- prediction
    def predict(self, curves: Sequence[Curve], horizon: int) -> CensoredMixtureForecast:
        """Forecast the value at step ``horizon`` for each (partial) curve; batched."""
        if isinstance(horizon, bool) or int(horizon) < 1:
            raise PredictorError(f"horizon is {horizon!r}, but must be an integer >= 1")
        horizon = int(horizon)
        if len(curves) == 0:
            return CensoredMixtureForecast(np.zeros((0, 1)), np.ones((0, 1)))
        mat, c = pad_curves(curves)
        if c.max() > horizon:
            raise PredictorError(f"a curve has {int(c.max())} values, beyond horizon {horizon}")
        h = np.full(c.shape[0], float(horizon))
        x = prefix_features(mat, c, h)
        last = x[:, CURVE_FEATURES.index("last")]
        k = self.components
        if self.model_ is None:
            s = 0.05 + 0.25 * (1.0 - c / horizon)
            loc = np.column_stack([last, np.full_like(last, 0.5)])
            scale = np.column_stack([s, np.full_like(s, 0.5)])
            fc = CensoredMixtureForecast(loc, scale)
        else:
            conf = config_matrix(curves)
            if self.n_features_ is not None and self.n_features_ > x.shape[1]:
                d = self.n_features_ - x.shape[1]
                if conf is None:
                    conf = np.full((x.shape[0], d), np.nan)
                if conf.shape[1] != d:
                    raise PredictorError(f"curves carry {conf.shape[1]} config features, the "
                                         f"predictor was fitted with {d}")
                x = np.column_stack([x, conf])
            assert self.fill_ is not None
            x = np.where(np.isfinite(x), x, self.fill_[None, : x.shape[1]])
            mu = np.clip(self.model_.predict(x), 0.0, 1.0)
            fb, fl = self._bin_keys(x)
            loc = np.empty((x.shape[0], k + 1))
            scale = np.empty((x.shape[0], k + 1))
            weight = np.empty((x.shape[0], k + 1))
            for key in set(zip(fb.tolist(), fl.tolist())):
                sel = (fb == key[0]) & (fl == key[1])
                edges, parts = self.bins_[key]
                which = np.searchsorted(edges, mu[sel], side="right")
                qs = np.stack([p[0] for p in parts])[which]
                hs = np.array([p[1] for p in parts])[which]
                w0 = np.array([p[2] for p in parts])[which]
                loc[sel, :k] = mu[sel, None] + qs
                scale[sel, :k] = hs[:, None]
                weight[sel, :k] = ((1.0 - w0) / k)[:, None]
            loc[:, k], scale[:, k] = 0.5, 0.5  # the uninformed component (see _summarise)
            weight[:, k] = 1.0 - weight[:, :k].sum(axis=1)
            if self.hurdle_ is not None and bool(np.any(fl == 1)):
                loc, scale, weight = self._hurdle_rows(x, fl == 1, loc, scale, weight)
            fc = CensoredMixtureForecast(loc, scale, weight)
        done = c >= horizon  # the value at the horizon is observed: (almost) a point mass
        if done.any():
            loc2 = fc.loc.copy()
            scale2 = fc.scale.copy()
            loc2[done] = last[done, None]
            scale2[done] = 1e-4
            fc = CensoredMixtureForecast(loc2, scale2, fc.weights)
        return fc

    def _hurdle_rows(self, x: np.ndarray, floor: np.ndarray, loc: np.ndarray, scale: np.ndarray,
                     weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Replace the forecast of rows still at 0 by the two-part mixture of :class:`_Hurdle`:
        (1 - p) x inactive finals (an atom at 0, a kernel mixture of the positive ones) + p x (active mean +
        active residual quantiles, plus the uninformed component with its Laplace weight).
        Other rows keep their K + 1 components, padded with zero-weight ones."""
        h = self.hurdle_
        assert h is not None
        k = self.components
        n = x.shape[0]
        width = 2 * k + 2
        pad = width - loc.shape[1]
        loc = np.pad(loc, ((0, 0), (0, pad)), constant_values=0.5)
        scale = np.pad(scale, ((0, 0), (0, pad)), constant_values=1.0)
        weight = np.pad(weight, ((0, 0), (0, pad)), constant_values=0.0)
        xs = x[floor]
        m = xs.shape[0]
        p = h.p_active(xs)
        if h.inactive_parts is None:
            li, si, s0 = np.zeros(k), np.full(k, _MIN_BANDWIDTH), np.ones(m)
        else:
            li, si = h.inactive_parts[0], np.full(k, h.inactive_parts[1])
            s0 = h.zero_share[np.searchsorted(_FRAC_EDGES, xs[:, 0], side="left")]
        mu = h.mean_active(xs)
        if h.active_parts is None:  # no active curve seen: the uninformed component only
            qa, ha, w0 = np.zeros(k), 1.0, 1.0
        else:
            qa, ha, w0 = h.active_parts
        new_loc = np.empty((m, width))
        new_scale = np.empty((m, width))
        new_w = np.empty((m, width))
        new_loc[:, :k], new_scale[:, :k] = li[None, :], si[None, :]
        new_w[:, :k] = ((1.0 - p) * (1.0 - s0) / k)[:, None]
        # the atom at 0: a component 200 sd below 0, censored entirely to the bound
        new_loc[:, 2 * k + 1], new_scale[:, 2 * k + 1] = -1.0, _MIN_BANDWIDTH
        new_w[:, 2 * k + 1] = (1.0 - p) * s0
        new_loc[:, k:2 * k] = mu[:, None] + qa[None, :]
        new_scale[:, k:2 * k] = ha
        new_w[:, k:2 * k] = (p * (1.0 - w0) / k)[:, None]
        new_loc[:, 2 * k], new_scale[:, 2 * k], new_w[:, 2 * k] = 0.5, 0.5, p * w0
        loc[floor], scale[floor], weight[floor] = new_loc, new_scale, new_w
        assert n == loc.shape[0]
        return loc, scale, weight
