"""The learning-curve prior the PFN is trained on: synthetic curves in [0, 1], higher better.

Who calls what: :func:`sample_prior` is called by the training loop (``predictors.pfn.train``)
once per step, on the training device, and by ``nas pfn sample-prior`` for the docs picture.
Everything is vectorised in torch and driven by an explicit ``torch.Generator`` so that a seed
fixes the batch (on CPU; on CUDA the kernels are deterministic too for these ops).

A curve is built in three layers (all per curve, all batched):

1. **Shape.**  A parametric family gives a *progress* ``g(u)`` in [0, 1) of a warped time
   ``u = k * x`` where ``x = t / T`` is the fraction of the budget and ``k`` a speed.  The
   families are those of Domhan et al. 2015 ("Speeding up automatic hyperparameter optimization
   of deep neural networks by extrapolation of learning curves"), re-parameterised as progress
   curves: pow3, ilog2, janoschek, weibull, mmf, exp3, log-linear and vapor pressure (several of
   the eleven coincide after that re-parameterisation, e.g. hill3 = mmf).  The clean curve is
   ``y = y_chance + (y_final - y_chance) * g``.
2. **Effects real runs show** that the parametric families lack: runs that stay flat at chance
   level from the start, a first value recorded at initialisation (before any training), runs
   that take off late, divergence to chance level at a random time,
   a plateau followed by a drop (over-fitting), and a step up at a learning-rate decay.
3. **Observation noise** whose size depends on the value (binomial-like, largest mid-range),
   auto-correlated (AR(1)), with rare outliers; then the curve is **clipped to [0, 1]**, which
   leaves point masses at exactly 0 (a run at or below chance under a loss normalisation) and
   exactly 1.  Chance level itself is drawn below, at or above 0.

The mixture weights are general knowledge of random hyper-parameter search (many
configurations never learn, some diverge), not fitted to any data file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nas.errors import ConfigError

__all__ = ["FAMILIES", "PriorBatch", "PriorConfig", "sample_prior"]

#: The parametric families, in the order of the ``family`` index of a :class:`PriorBatch`.
FAMILIES: tuple[str, ...] = (
    "pow3",
    "ilog2",
    "janoschek",
    "weibull",
    "mmf",
    "exp3",
    "logx_linear",
    "vap",
)


@dataclass(frozen=True)
class PriorConfig:
    """Mixture weights and ranges of the prior (validated; round-trips through JSON).

    ``p_*`` are per-curve probabilities of the effects (independent, except that a flat run has
    no other shape effect).  Noise standard deviations are drawn log-uniformly in
    [``noise_min``, ``noise_max``].
    """

    min_horizon: int = 10
    max_horizon: int = 100
    p_flat: float = 0.4
    p_late: float = 0.1
    p_init_eval: float = 0.3
    p_diverge: float = 0.1
    p_drop: float = 0.15
    p_step: float = 0.1
    p_outlier: float = 0.1
    noise_min: float = 0.001
    noise_max: float = 0.1
    speed_min: float = 0.3
    speed_max: float = 60.0

    def __post_init__(self) -> None:
        if not 2 <= self.min_horizon <= self.max_horizon:
            raise ConfigError(
                f"prior horizons [{self.min_horizon}, {self.max_horizon}] must satisfy "
                "2 <= min_horizon <= max_horizon"
            )
        for name in ("p_flat", "p_late", "p_init_eval", "p_diverge", "p_drop", "p_step", "p_outlier"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"prior {name} is {v}, but must be in [0, 1]")
        if not 0.0 < self.noise_min <= self.noise_max:
            raise ConfigError(
                f"prior noise range [{self.noise_min}, {self.noise_max}] must satisfy "
                "0 < noise_min <= noise_max"
            )
        if not 0.0 < self.speed_min <= self.speed_max:
            raise ConfigError(
                f"prior speed range [{self.speed_min}, {self.speed_max}] must satisfy "
                "0 < speed_min <= speed_max"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PriorConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown prior config keys: {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass(frozen=True)
class PriorBatch:
    """``n`` sampled curves of one horizon ``T``: ``y`` (n, T) in [0, 1] at steps 1..T.

    ``x`` (T,) is the fraction of the budget ``t / T``; ``family`` (n,) indexes
    :data:`FAMILIES` (-1 for a run flat at chance level).
    """

    x: torch.Tensor
    y: torch.Tensor
    family: torch.Tensor

    @property
    def horizon(self) -> int:
        return int(self.x.shape[0])


def _u(n: int, g: torch.Generator, device: torch.device, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, 1, generator=g, device=device)


def _log_u(n: int, g: torch.Generator, device: torch.device, lo: float, hi: float) -> torch.Tensor:
    return torch.exp(_u(n, g, device, math.log(lo), math.log(hi)))


def _progress(family: torch.Tensor, u: torch.Tensor, k: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Progress g(u) in [0, 1] of each curve's family at warped times ``u`` (n, T)."""
    n, dev = u.shape[0], u.device
    a = _u(n, g, dev)  # one shape parameter in [0, 1) per curve, mapped per family below
    out = torch.zeros_like(u)
    # pow3: 1 - (1 + u)^-alpha
    alpha = 0.3 + 2.2 * a
    out = torch.where(family == 0, 1 - (1 + u) ** (-alpha), out)
    # ilog2: 1 - 1 / log(e + c u)   (slow, never quite saturates)
    c = 0.5 + 4.0 * a
    out = torch.where(family == 1, 1 - 1 / torch.log(math.e + c * u), out)
    # janoschek: 1 - exp(-u^delta), delta < 1.2 (concave)
    d1 = 0.3 + 0.9 * a
    out = torch.where(family == 2, 1 - torch.exp(-(u**d1)), out)
    # weibull: 1 - exp(-u^delta), delta > 1.2 (sigmoidal in time)
    d2 = 1.2 + 2.8 * a
    out = torch.where(family == 3, 1 - torch.exp(-(u**d2)), out)
    # mmf (= hill3 / log-power after normalisation): u^delta / (1 + u^delta)
    d3 = 0.5 + 2.5 * a
    ud = u**d3
    out = torch.where(family == 4, ud / (1 + ud), out)
    # exp3: 1 - exp(-u)
    out = torch.where(family == 5, 1 - torch.exp(-u), out)
    # logx_linear: log(1 + u) / log(1 + k)  (reaches its end only at the budget's end)
    out = torch.where(family == 6, torch.log1p(u) / torch.log1p(k), out)
    # vapor pressure: exp(-b / u) * ((1 + u) / (1 + k))^c  (late sigmoid in log time, mild tilt)
    b = 0.05 + 3.0 * a
    cc = 0.3 * (_u(n, g, dev) - 0.5)
    vap = torch.exp(-b / u.clamp_min(1e-6)) * ((1 + u) / (1 + k)) ** cc
    out = torch.where(family == 7, vap, out)
    return out.clamp(0.0, 1.0)


def sample_prior(
    n: int,
    horizon: int,
    *,
    config: PriorConfig | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    family: int | None = None,
) -> PriorBatch:
    """Sample ``n`` curves of length ``horizon`` from the prior (see the module docstring).

    Give either a ``generator`` (on ``device``) or a ``seed``.  ``family`` forces one family
    (an index into :data:`FAMILIES`, or -1 for runs flat at chance level) — the docs picture
    uses it; training leaves it ``None``.
    """
    cfg = config or PriorConfig()
    if n < 1:
        raise ConfigError(f"n is {n}, but must be >= 1")
    if not 2 <= horizon:
        raise ConfigError(f"horizon is {horizon}, but must be >= 2")
    dev = torch.device(device)
    if generator is None:
        generator = torch.Generator(device=dev)
        generator.manual_seed(0 if seed is None else int(seed))
    g = generator
    T = int(horizon)
    t = torch.arange(1, T + 1, device=dev, dtype=torch.float32)
    x = (t / T).unsqueeze(0)  # (1, T)

    # --- which family / effects --------------------------------------------------------------
    fam = torch.randint(0, len(FAMILIES), (n, 1), generator=g, device=dev)
    flat = _u(n, g, dev) < cfg.p_flat
    if family is not None:
        if family == -1:
            flat = torch.ones_like(flat)
        elif 0 <= family < len(FAMILIES):
            fam = torch.full_like(fam, family)
            flat = torch.zeros_like(flat)
        else:
            raise ConfigError(f"family is {family}, but must be -1 or in [0, {len(FAMILIES)})")
    late = (_u(n, g, dev) < cfg.p_late) & ~flat
    init_eval = _u(n, g, dev) < cfg.p_init_eval
    diverge = (_u(n, g, dev) < cfg.p_diverge) & ~flat
    drop = (_u(n, g, dev) < cfg.p_drop) & ~flat
    step = (_u(n, g, dev) < cfg.p_step) & ~flat
    outlier = _u(n, g, dev) < cfg.p_outlier

    # --- levels ------------------------------------------------------------------------------
    # chance level: a little below 0 (a loss normalised to chance = 0 starts a bit above chance
    # loss; clipping hides it), near 0, or a positive floor (accuracy with k classes)
    r = _u(n, g, dev)
    chance = torch.where(
        r < 0.3,
        -torch.where(flat, _log_u(n, g, dev, 0.01, 0.3), _log_u(n, g, dev, 0.005, 0.1)),
        torch.where(r < 0.6, _u(n, g, dev, -0.02, 0.02), _u(n, g, dev, 0.0, 0.6)),
    )
    lo = chance.clamp_min(0.0)
    final = lo + (1.08 - lo) * _u(n, g, dev) ** 0.7  # asymptote; > 1 gets clipped to exactly 1

    # --- shape -------------------------------------------------------------------------------
    k = _log_u(n, g, dev, cfg.speed_min, cfg.speed_max)
    start = torch.where(late, _u(n, g, dev, 0.05, 0.5), torch.zeros_like(k))
    # the first value recorded before any training (an evaluation at initialisation)
    start = torch.maximum(start, init_eval.float() / T)
    u = k * (x - start).clamp_min(0.0)
    prog = _progress(fam, u, k, g)
    y = chance + (final - chance) * prog
    # a run flat at chance level, with a small drift
    drift = 0.03 * torch.randn(n, 1, generator=g, device=dev) * _u(n, g, dev)
    y = torch.where(flat, chance + drift * x, y)

    # learning-rate step: a jump towards the asymptote-above at a random time
    ts = _u(n, g, dev, 0.2, 0.9)
    jump = _u(n, g, dev, 0.02, 0.3) * (1.05 - y).clamp_min(0.0)
    y = torch.where(step & (x >= ts), y + jump, y)
    # plateau then drop (over-fitting): linear-to-convex decline after a peak time
    tp = _u(n, g, dev, 0.1, 0.9)
    rate = _log_u(n, g, dev, 0.02, 0.8) * (y - chance).abs().clamp_min(0.05)
    gamma = _u(n, g, dev, 1.0, 2.0)
    y = torch.where(drop, y - rate * ((x - tp).clamp_min(0.0) / (1 - tp)) ** gamma, y)
    # divergence: back to (or below) chance level at a random time, for good
    td = _u(n, g, dev, 0.05, 1.0)
    y = torch.where(diverge & (x >= td), torch.minimum(chance, lo) - _u(n, g, dev, 0.0, 0.3), y)

    # --- noise -------------------------------------------------------------------------------
    sigma = _log_u(n, g, dev, cfg.noise_min, cfg.noise_max)
    floor = _u(n, g, dev, 0.1, 1.0)  # share of the noise that does not depend on the value
    yc = y.clamp(0.0, 1.0)
    scale = sigma * (floor + (1 - floor) * 4 * yc * (1 - yc))
    rho = _u(n, g, dev, 0.0, 0.9)
    eps = torch.randn(n, T, generator=g, device=dev)
    # AR(1): e_t = rho e_{t-1} + sqrt(1 - rho^2) eps_t, unit marginal variance
    e = torch.empty_like(eps)
    e[:, 0] = eps[:, 0]
    s = torch.sqrt(1 - rho[:, 0] ** 2)
    for j in range(1, T):
        e[:, j] = rho[:, 0] * e[:, j - 1] + s * eps[:, j]
    y = y + scale * e
    spikes = outlier & (torch.rand(n, T, generator=g, device=dev) < 0.04)
    y = torch.where(spikes, y - _u(n, g, dev, 0.1, 1.0) * yc, y)

    y = y.clamp(0.0, 1.0)
    fam_out = torch.where(flat, torch.full_like(fam, -1), fam).squeeze(1)
    return PriorBatch(x=x.squeeze(0), y=y, family=fam_out)
