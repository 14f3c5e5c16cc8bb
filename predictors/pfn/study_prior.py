"""The study prior: whole random-search studies of ``N`` configurations, batched in torch.

Who calls what: the study trainer (:mod:`predictors.pfn.study_train`) draws a batch of studies
per step; ``nas pfn sample-prior --studies`` plots a few; tests check determinism and ranges.

A study is one task searched at random.  What its runs share (the *task latent*, drawn per
study):

* **difficulty**: the best final level ``top`` and how far below it the others spread;
* **the share of runs stuck at chance** (from none to 95 %), partly decided by the config;
* **noise**: one level per task, jittered per run;
* **speed**: one base speed per task, moved by the config;
* a dominant curve **family** (:data:`predictors.pfn.prior.FAMILIES`), which most runs follow;
* the chance level and how often runs diverge, over-fit or step at a decay;
* whether the task has a **late take-off** mechanism, and how strong it is.

What a run's config decides: configs are points ``z`` in [0, 1]^8 (uniform; a third of the
coordinates categorical, with 2..5 levels, like a cell type or a flag); the first
``n_relevant`` (1..4) coordinates matter, the rest are noise features.  Coordinate 0 behaves like
a log learning rate: too high and the run sticks at chance or diverges, too low and it is slow
and — in tasks with the late mechanism — flat for a while before it takes off; coordinate 1 like
depth (deep stacks also take off later, in some tasks).  On top, every latent (quality, speed,
delay, stuck odds) gets a random smooth function of the relevant coordinates (linear plus
quadratic terms), so near configs give near curves.  The final level is a sigmoid of the
config's quality plus per-run noise, so ranks persist only in part, and different speeds make
curves cross.

The curves are then drawn like :func:`predictors.pfn.prior.sample_prior`'s (the same progress
families, AR(1) value-dependent noise, outliers, clipping to [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nas.errors import ConfigError
from predictors.pfn.prior import FAMILIES, _progress

__all__ = ["N_FEATURES", "StudyBatch", "curve_stats", "sample_studies"]

#: config coordinates drawn per run (the model may be shown fewer)
N_FEATURES = 8


@dataclass(frozen=True)
class StudyBatch:
    """``S`` studies of ``N`` runs of horizon ``T``: ``y`` (S, N, T) in [0, 1];
    ``z`` (S, N, 8) configs in [0, 1]; ``flat`` (S, N) stuck-at-chance runs; ``delay`` (S, N)
    the fraction of the budget before take-off (0 for most runs)."""

    y: torch.Tensor
    z: torch.Tensor
    flat: torch.Tensor
    delay: torch.Tensor


def _rand(shape: tuple[int, ...], g: torch.Generator, dev: torch.device, lo: float = 0.0,
          hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g, device=dev)


def _smooth(z: torch.Tensor, rel: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random smooth function (S, N) of the relevant coordinates: per study, linear plus
    quadratic terms, scaled to unit order."""
    S, _, F = z.shape
    dev = z.device
    a = torch.randn(S, 1, F, generator=g, device=dev)
    b = torch.randn(S, 1, F, generator=g, device=dev)
    c = _rand((S, 1, F), g, dev)
    terms = (a * (z - 0.5) + 2.0 * b * (z - c) ** 2) * rel
    return terms.sum(-1) / rel.sum(-1).clamp_min(1.0).sqrt()


def sample_studies(
    n_studies: int,
    n_runs: int,
    horizon: int,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
) -> StudyBatch:
    """Sample ``n_studies`` studies of ``n_runs`` runs each (see the module docstring)."""
    if n_studies < 1 or n_runs < 1:
        raise ConfigError(f"n_studies and n_runs must be >= 1, not {n_studies}, {n_runs}")
    if horizon < 2:
        raise ConfigError(f"horizon is {horizon}, but must be >= 2")
    dev = torch.device(device)
    if generator is None:
        generator = torch.Generator(device=dev).manual_seed(0 if seed is None else int(seed))
    g = generator
    S, N, T = n_studies, n_runs, int(horizon)
    x = torch.arange(1, T + 1, device=dev, dtype=torch.float32) / T  # (T,)

    def per_study(lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return _rand((S, 1), g, dev, lo, hi)

    def per_run(lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return _rand((S, N), g, dev, lo, hi)

    # --- configs ------------------------------------------------------------------------------
    z = _rand((S, N, N_FEATURES), g, dev)
    # some features are categorical (a cell type, an optimizer, a flag): 2..5 levels
    levels = torch.randint(2, 6, (S, 1, N_FEATURES), generator=g, device=dev).float()
    categorical = _rand((S, 1, N_FEATURES), g, dev) < 0.35
    z = torch.where(categorical, torch.round(z * (levels - 1)) / (levels - 1), z)
    n_rel = torch.randint(1, 5, (S, 1, 1), generator=g, device=dev)
    rel = (torch.arange(N_FEATURES, device=dev)[None, None, :] < n_rel).float()
    lr = z[..., 0]
    depth = torch.where(n_rel[..., 0] >= 2, z[..., 1], torch.zeros_like(lr))
    q_fn, k_fn, d_fn, s_fn = (_smooth(z, rel, g) for _ in range(4))

    # --- task latent --------------------------------------------------------------------------
    top = per_study(0.3, 1.08)
    spread = per_study(0.5, 4.0)
    p_stuck = per_study() ** 1.5 * 0.95
    sigma_task = torch.exp(per_study(-6.5, -2.3))  # ~0.0015 .. 0.1
    log_k = per_study(-0.7, 3.7)  # speed ~0.5 .. 40
    lr_opt = per_study(0.3, 0.85)
    cfg_strength = per_study(0.3, 1.5)  # how much the config decides
    late_task = per_study() < 0.5
    late_amp = per_study(0.1, 0.6) * late_task
    late_thr = per_study(0.15, 0.5)
    depth_late = (per_study() < 0.5) * per_study(0.0, 0.4) * late_task
    hi_lr = per_study(0.75, 1.05)  # above it, runs tend to stick or diverge
    fam_task = torch.randint(0, len(FAMILIES), (S, 1), generator=g, device=dev)
    r = per_study()
    chance = torch.where(r < 0.3, -torch.exp(per_study(-5.0, -1.5)),
                         torch.where(r < 0.6, per_study(-0.02, 0.02), per_study(0.0, 0.6)))
    lo = chance.clamp_min(0.0)
    p_div = per_study(0.0, 0.2)
    p_drop = per_study(0.0, 0.3)
    p_step = per_study(0.0, 0.2)
    p_out = per_study(0.0, 0.2)
    init_eval = per_study() < 0.3

    # --- per run ------------------------------------------------------------------------------
    stuck_logit = (torch.logit(p_stuck.clamp(0.01, 0.99)) + 1.5 * cfg_strength * s_fn
                   + 12.0 * (lr - hi_lr).clamp_min(0.0) / 0.25)
    flat = per_run() < torch.sigmoid(stuck_logit)
    quality = cfg_strength * (q_fn - 4.0 * (lr - lr_opt) ** 2) + 0.35 * torch.randn(
        S, N, generator=g, device=dev)
    qz = (quality - quality.mean(1, keepdim=True)) / quality.std(1, keepdim=True).clamp_min(1e-3)
    final = lo + (top - lo) * torch.sigmoid(spread * qz + 1.0)
    log_kr = log_k + cfg_strength * (0.7 * k_fn + 2.0 * (lr - 0.5)) + 0.3 * torch.randn(
        S, N, generator=g, device=dev)
    k = torch.exp(log_kr.clamp(-2.0, 4.5))
    delay = late_amp * torch.sigmoid((late_thr - lr) * 14.0 + cfg_strength * d_fn)
    delay = (delay + depth_late * depth ** 2).clamp(0.0, 0.8)
    delay = torch.where(delay > 0.04, delay * per_run(0.8, 1.2), torch.zeros_like(delay))
    fam = torch.where(per_run() < 0.8, fam_task.expand(S, N),
                      torch.randint(0, len(FAMILIES), (S, N), generator=g, device=dev))

    # --- curves (flattened to S * N rows) ---------------------------------------------------------
    n = S * N

    def flat_(t: torch.Tensor) -> torch.Tensor:
        return t.expand(S, N).reshape(n, 1)

    start = torch.maximum(delay, init_eval.float().expand(S, N) / T).reshape(n, 1)
    kf = k.reshape(n, 1)
    u = kf * (x[None, :] - start).clamp_min(0.0)
    prog = _progress(fam.reshape(n, 1), u, kf, g)
    ch, lo_f = flat_(chance), flat_(lo)
    y = ch + (final.reshape(n, 1) - ch) * prog
    fl = flat.reshape(n, 1)
    drift = 0.03 * torch.randn(n, 1, generator=g, device=dev) * _rand((n, 1), g, dev)
    y = torch.where(fl, ch + drift * x, y)

    def happens(p: torch.Tensor) -> torch.Tensor:
        return (_rand((n, 1), g, dev) < flat_(p)) & ~fl

    step, drop, div = happens(p_step), happens(p_drop), happens(p_div)
    ts = _rand((n, 1), g, dev, 0.2, 0.9)
    y = torch.where(step & (x >= ts), y + _rand((n, 1), g, dev, 0.02, 0.3) * (1.05 - y).clamp_min(0.0), y)
    tp = _rand((n, 1), g, dev, 0.1, 0.9)
    rate = torch.exp(_rand((n, 1), g, dev, -4.0, -0.2)) * (y - ch).abs().clamp_min(0.05)
    y = torch.where(drop, y - rate * ((x - tp).clamp_min(0.0) / (1 - tp)) ** 1.5, y)
    td = _rand((n, 1), g, dev, 0.05, 1.0)
    y = torch.where(div & (x >= td), torch.minimum(ch, lo_f) - _rand((n, 1), g, dev, 0.0, 0.3), y)

    sigma = flat_(sigma_task) * torch.exp(0.3 * torch.randn(n, 1, generator=g, device=dev))
    floor = _rand((n, 1), g, dev, 0.1, 1.0)
    yc = y.clamp(0.0, 1.0)
    scale = sigma * (floor + (1 - floor) * 4 * yc * (1 - yc))
    rho = _rand((n, 1), g, dev, 0.0, 0.9)
    eps = torch.randn(n, T, generator=g, device=dev)
    s = torch.sqrt(1 - rho**2)
    cols = [eps[:, 0:1]]
    for j in range(1, T):
        cols.append(rho * cols[-1] + s * eps[:, j:j + 1])
    y = y + scale * torch.cat(cols, dim=1)
    spikes = (_rand((n, 1), g, dev) < flat_(p_out)) & (torch.rand(n, T, generator=g, device=dev) < 0.04)
    y = torch.where(spikes, y - _rand((n, 1), g, dev, 0.1, 1.0) * yc, y)
    y = y.clamp(0.0, 1.0).reshape(S, N, T)
    return StudyBatch(y=y, z=z, flat=flat, delay=torch.where(flat, torch.zeros_like(delay), delay))


def curve_stats(y: Any, groups: Any = None) -> dict[str, float]:
    """Statistics to hold the prior against real studies (numpy in, floats out).

    ``y`` (n, T) complete curves in [0, 1]; ``groups`` (n,) the study of each (None: one).
    * ``share_flat``: curves whose range stays below 0.05 (stuck at chance);
    * ``take_off``: median over the other curves of the first step (fraction of T) at which
      they have covered half their way from the first value to their maximum;
      ``share_late``: the share of those with take-off after 0.3 T;
    * ``crossing``: per study, the share of discordant pairs between the order at 0.2 T and the
      final order (pairs of curves that learn), averaged over studies;
    * ``noise``: the median over curves of median |second difference| / sqrt(6).
    """
    import numpy as np

    y = np.asarray(y, dtype=np.float64)
    n, T = y.shape
    g = np.zeros(n, dtype=np.int64) if groups is None else np.unique(
        np.asarray(groups), return_inverse=True)[1]
    rng = y.max(1) - y.min(1)
    flat = rng < 0.05
    act = ~flat
    half = y[:, :1] + 0.5 * (y.max(1, keepdims=True) - y[:, :1])
    reached = y >= half
    first = np.argmax(reached, axis=1) / T
    first = first[act & (y.max(1) - y[:, 0] > 0.05)]
    cross = []
    c = max(1, round(0.2 * T)) - 1
    for s in np.unique(g):
        idx = np.flatnonzero((g == s) & act)
        if idx.size < 3:
            continue
        a, b = y[idx, c], y[idx, -1]
        da = np.sign(a[:, None] - a[None, :])
        db = np.sign(b[:, None] - b[None, :])
        both = (da != 0) & (db != 0)
        if both.sum():
            cross.append(float(((da != db) & both).sum() / both.sum()))
    d2 = np.abs(np.diff(y, n=2, axis=1))
    return {"share_flat": float(flat.mean()),
            "take_off": float(np.median(first)) if first.size else float("nan"),
            "share_late": float((first > 0.3).mean()) if first.size else float("nan"),
            "crossing": float(np.mean(cross)) if cross else float("nan"),
            "noise": float(np.median(np.median(d2, axis=1)) / np.sqrt(6))}
