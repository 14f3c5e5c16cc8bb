"""The PFN: a transformer that maps an observed learning-curve prefix to a predictive
distribution of the curve's value at later steps (Müller et al. 2022, "Transformers can do
Bayesian inference"; Adriaensen et al. 2023, "Efficient Bayesian learning curve extrapolation
using prior-data fitted networks").

Reads top to bottom: the config, the bucket ("bar") output, the blocks, the model.

Tokens: every observed point ``(x = t / T, y)`` is a *context* token; every step whose value is
wanted is a *query* token ``x``.  ``T`` is the horizon (the budget the fraction is of); its log
and the fraction observed so far (the last context ``x``) are features of every token, and a
query also gets its distance to the last observation (without these explicit features a
small model learns the dependence on the query position slowly).  Every token attends only to the context tokens (keys and values
come from the context alone), so queries never see each other and the prediction at a query
does not depend on which other queries are in the batch.  No positional embedding is needed:
a point's position *is* its ``x``.

Output: a Riemann ("bar") distribution over ``n_buckets`` buckets covering [0, 1] (the values
the engine hands predictors are normalised and clipped to [0, 1], so the support is bounded and
half-normal tails past the ends would put mass where no value can be).  The first and the last
bucket are narrow (``edge_width``) so that the point masses at exactly 0 and exactly 1 that
clipping produces get a bucket each; interior borders are the average of prior quantiles and a
uniform grid (see :func:`fit_borders`), so that resolution follows the prior without any bucket
becoming too narrow to learn.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Self, cast

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import ConfigError

__all__ = ["PFN", "JsonConfig", "PFNConfig", "fit_borders"]


class JsonConfig:
    """JSON round trip of a config dataclass; unknown keys are a :class:`ConfigError`."""

    _what = "PFN"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        unknown = set(d) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        if unknown:
            raise ConfigError(f"unknown {cls._what} config keys: {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass(frozen=True)
class PFNConfig(JsonConfig):
    """Size of the network and of its output (validated; round-trips through JSON)."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 4
    n_buckets: int = 512
    edge_width: float = 5e-4
    max_horizon: int = 100
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.d_model < 8 or self.d_model % self.n_heads != 0:
            raise ConfigError(
                f"d_model is {self.d_model}, but must be >= 8 and divisible by n_heads "
                f"({self.n_heads})"
            )
        if self.n_layers < 1:
            raise ConfigError(f"n_layers is {self.n_layers}, but must be >= 1")
        if self.mlp_ratio < 1:
            raise ConfigError(f"mlp_ratio is {self.mlp_ratio}, but must be >= 1")
        if self.n_buckets < 4:
            raise ConfigError(f"n_buckets is {self.n_buckets}, but must be >= 4")
        if not 0.0 < self.edge_width < 2.0 / self.n_buckets:
            raise ConfigError(
                f"edge_width is {self.edge_width}, but must be in (0, {2.0 / self.n_buckets})"
            )
        if self.max_horizon < 2:
            raise ConfigError(f"max_horizon is {self.max_horizon}, but must be >= 2")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout is {self.dropout}, but must be in [0, 1)")


def fit_borders(values: torch.Tensor, n_buckets: int, edge_width: float) -> torch.Tensor:
    """Bucket borders (n_buckets + 1,) on [0, 1], fitted to prior ``values``.

    Buckets 0 and n-1 are ``[0, edge_width]`` and ``[1 - edge_width, 1]``; the n-2 interior
    buckets have borders that average the quantiles of the interior values with a uniform grid,
    which keeps every width at least half the uniform width.
    """
    lo, hi = edge_width, 1.0 - edge_width
    v = values.flatten().double()
    v = v[(v > lo) & (v < hi)]
    m = n_buckets - 2
    grid = torch.linspace(lo, hi, m + 1, dtype=torch.float64)
    if v.numel() >= m:
        q = torch.quantile(v[: 1_000_000], torch.linspace(0, 1, m + 1, dtype=torch.float64))
        q[0], q[-1] = lo, hi
        inner = 0.5 * (q + grid)
    else:
        inner = grid
    borders = torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)])
    return borders.float()


class Attention(nn.Module):
    """Multi-head attention whose keys and values come from the context tokens only."""

    def __init__(self, cfg: PFNConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(
        self, h: torch.Tensor, n_ctx: int, key_mask: torch.Tensor | None, first: int = 0
    ) -> torch.Tensor:
        """Attention outputs of tokens ``h[:, first:]``; keys/values from ``h[:, :n_ctx]``."""
        B, _, D = h.shape
        H = self.n_heads
        hq = h[:, first:]
        S = hq.shape[1]
        q = self.q(hq).view(B, S, H, D // H).transpose(1, 2)
        k, v = self.kv(h[:, :n_ctx]).split(D, dim=2)
        k = k.view(B, n_ctx, H, D // H).transpose(1, 2)
        v = v.view(B, n_ctx, H, D // H).transpose(1, 2)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(B, S, D))


class Block(nn.Module):
    """Pre-norm transformer block: attention to the context, then an MLP."""

    def __init__(self, cfg: PFNConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model),
        )

    def forward(
        self, h: torch.Tensor, n_ctx: int, key_mask: torch.Tensor | None, first: int = 0
    ) -> torch.Tensor:
        """New states of tokens ``h[:, first:]`` (the last block skips the context tokens,
        whose outputs nothing reads)."""
        h = h[:, first:] + self.attn(self.ln1(h), n_ctx, key_mask, first)
        return h + self.mlp(self.ln2(h))


class PFN(nn.Module):
    """The network: embeddings, ``n_layers`` blocks, a bucket head.

    ``borders`` (a buffer, saved with the weights) are the bucket borders on [0, 1].
    """

    borders: torch.Tensor

    def __init__(self, cfg: PFNConfig, borders: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        # context token features: x, y, [y == 0], [y == 1], log-horizon, x of the last observation
        self.ctx_embed = nn.Sequential(nn.Linear(6, d), nn.GELU(), nn.Linear(d, d))
        # query token features: x, log-horizon, x of the last observation, distance to it
        self.qry_embed = nn.Sequential(nn.Linear(4, d), nn.GELU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.n_buckets)
        if borders is None:
            borders = fit_borders(torch.empty(0), cfg.n_buckets, cfg.edge_width)
        if borders.shape != (cfg.n_buckets + 1,):
            raise ConfigError(
                f"borders have shape {tuple(borders.shape)}, but must be ({cfg.n_buckets + 1},)"
            )
        self.register_buffer("borders", borders.float().clone())
        self.apply(self._init)
        # the embeddings map a handful of O(1) features: PyTorch's default (fan-in) init keeps the
        # tokens O(1); with GPT's 0.02 they would be ~1e-4 and drowned by the first block's
        # attention output (a query would then forget its own position)
        for emb in (self.ctx_embed, self.qry_embed):
            for layer in emb:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        for block in self.blocks:  # scaled init of residual projections (GPT-2)
            blk = cast(Block, block)
            out_proj = cast(nn.Linear, blk.mlp[2])
            nn.init.normal_(blk.attn.proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(out_proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def _log_horizon(self, horizon: torch.Tensor) -> torch.Tensor:
        return torch.log(horizon.float()) / math.log(self.cfg.max_horizon)

    def forward(
        self,
        x_ctx: torch.Tensor,
        y_ctx: torch.Tensor,
        x_qry: torch.Tensor,
        horizon: torch.Tensor,
        ctx_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Bucket logits (B, Q, n_buckets) of the values at query fractions ``x_qry`` (B, Q).

        ``x_ctx``, ``y_ctx`` (B, C): observed points (fractions of the horizon and values);
        ``horizon`` (B,): the horizon T of each curve; ``ctx_mask`` (B, C) bool marks real
        context points (None: all real) — padding lets a batch mix prefix lengths.
        """
        return self.head(self.ln_f(self.encode(x_ctx, y_ctx, x_qry, horizon, ctx_mask)))

    def encode(
        self,
        x_ctx: torch.Tensor,
        y_ctx: torch.Tensor,
        x_qry: torch.Tensor,
        horizon: torch.Tensor,
        ctx_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The query tokens' states (B, Q, d_model) before the final norm and the head."""
        B, C = x_ctx.shape
        lh = self._log_horizon(horizon)[:, None]
        # how far the curve has been observed: the query's distance to it is what matters most
        x_last = (x_ctx if ctx_mask is None else x_ctx.masked_fill(~ctx_mask, 0.0)).amax(1, keepdim=True)
        ctx = torch.stack(
            [x_ctx, y_ctx, (y_ctx <= 0).float(), (y_ctx >= 1).float(), lh.expand(B, C),
             x_last.expand(B, C)], dim=-1
        )
        qry = torch.stack(
            [x_qry, lh.expand_as(x_qry), x_last.expand_as(x_qry), x_qry - x_last], dim=-1
        )
        h = torch.cat([self.ctx_embed(ctx), self.qry_embed(qry)], dim=1)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            h = block(h, C, ctx_mask, C if i == last else 0)
        return h

    def bucket_of(self, y: torch.Tensor) -> torch.Tensor:
        """Index of the bucket holding each value of ``y`` (values in [0, 1])."""
        b = self.borders
        idx = torch.searchsorted(b[1:-1].contiguous(), y.contiguous(), right=True)
        return idx.clamp(0, self.cfg.n_buckets - 1)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean negative log density of ``y`` under the bar distribution of ``logits``."""
        b = self.borders
        idx = self.bucket_of(y)
        nll = F.cross_entropy(logits.float().flatten(0, -2), idx.flatten(), reduction="none")
        widths = (b[1:] - b[:-1])[idx.flatten()]
        return (nll + torch.log(widths)).mean()
