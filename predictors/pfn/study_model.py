"""The study-reading PFN: the prefix PFN plus a reader of the study's other curves.

Reads top to bottom: the config, the context tensors, the feature ranks, the model.

A :class:`StudyPFN` holds the prefix network (:class:`predictors.pfn.model.PFN`, kept frozen
when trained from the shipped weights) and adds:

1. **A context encoder** (once per study state; the predictor caches it under
   ``StudyContext.version``): every other curve of the study becomes one token from its values
   at 16 fixed fractions of the horizon (masked where not yet observed), its observed length,
   whether it is complete and the horizon; then one self-attention layer over the set, so each
   token also knows its study (how many runs are flat, how often they cross...).
2. **Pair features** (per query, cheap): each context token is moved by what relates it to the
   query: its value at the query's prefix length and at half of it against the query's, its
   last observed value, how far it ran, and the distance between the two configs (per-feature
   ranks within the context, mean squared difference over the features that vary).
3. **Cross-attention** of the prefix network's query state to those tokens (plus a learned
   null token), then the prefix network's own norm and head.  Its output projections start at
   zero, so the untrained reader leaves the prefix network's forecast unchanged.

There is no positional information among the context tokens, so the forecast does not depend on
their order.  Without context (``None`` or zero curves) the prefix network answers alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import ConfigError
from predictors.pfn.model import PFN, JsonConfig, PFNConfig

__all__ = ["StudyConfig", "StudyPFN", "StudyTensors", "config_distance"]

N_PAIR = 12
#: kernel bandwidths of the retrieval mixture (on the [0, 1] value scale)
BANDWIDTHS = (0.005, 0.02, 0.08)


def _kernels(borders: torch.Tensor) -> torch.Tensor:
    """(n, S * n): row i, block s = the bucket masses of a normal centred on bucket i's middle
    with bandwidth ``BANDWIDTHS[s]``; mass beyond 0 or 1 goes to the edge buckets (the point
    masses a clipped curve has).  One GEMM smooths a histogram with every bandwidth."""
    b = borders.double()
    mid = 0.5 * (b[1:] + b[:-1])
    mid[0], mid[-1] = 0.0, 1.0
    inner = b.clone()
    inner[0], inner[-1] = -1e3, 1e3
    out = []
    for s in BANDWIDTHS:
        cdf = torch.special.ndtr((inner[None, :] - mid[:, None]) / s)
        out.append(cdf[:, 1:] - cdf[:, :-1])
    return torch.cat(out, dim=1).float().contiguous()


@dataclass(frozen=True)
class StudyConfig(JsonConfig):
    """Size of the study reader (validated; round-trips through JSON)."""

    _what = "study"

    grid: int = 16
    n_layers: int = 2
    max_context: int = 100

    def __post_init__(self) -> None:
        if self.grid < 2 or self.n_layers < 1 or self.max_context < 1:
            raise ConfigError(f"study config {self} needs grid >= 2, n_layers >= 1, "
                              "max_context >= 1")


@dataclass
class StudyTensors:
    """The context of ``S`` studies, ``K`` curves each, horizon ``T`` (no padding: a batch of
    studies shares K).  ``y`` (S, K, T) values, zero past each length; ``length`` (S, K) long,
    >= 1; ``complete`` (S, K) bool; ``feats`` (S, K, F) raw config features or None."""

    y: torch.Tensor
    length: torch.Tensor
    complete: torch.Tensor
    feats: torch.Tensor | None = None

    @property
    def horizon(self) -> int:
        return int(self.y.shape[2])


def config_distance(ctx: torch.Tensor | None, qry: torch.Tensor | None,
                    sidx: torch.Tensor, k: int, outcome: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance (B, K) between each query's config and its study's context configs, and
    whether there was any (B, 1).

    Features are replaced by their rank within the study's context (ties halved: robust to
    scales, logs and one-hot columns); the distance is a weighted mean squared rank difference
    over the features that vary in the context.  With ``outcome`` (B, K), the context curves'
    last observed values, a feature's weight is 0.05 plus its relevance in this study: the
    larger squared rank correlation of the outcome with the feature or with its distance from
    the middle (an optimum); a study thus tells which of many features matter (an in-context
    ARD).  Without it all varying features weigh the same.  ``ctx`` (S, K, F), ``qry`` (B, F),
    ``sidx`` (B,) the study of each query, ``k`` the context size.  Missing features (None,
    F = 0): distance 0 and flag 0.
    """
    if ctx is None or qry is None or ctx.shape[-1] == 0 or ctx.shape[1] == 0:
        B = sidx.shape[0]
        dev = sidx.device
        return torch.zeros(B, k, device=dev), torch.zeros(B, 1, device=dev)
    K = ctx.shape[1]
    c = ctx[sidx]  # (B, K, F)

    def rank(v: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:  # rank of v among ref (dim 1)
        less = (ref[:, None, :, :] < v[:, :, None, :]).float().sum(2)
        eq = (ref[:, None, :, :] == v[:, :, None, :]).float().sum(2)
        return (less + 0.5 * eq) / ref.shape[1]

    rc = rank(c, c)
    rq = rank(qry[:, None, :], c)
    varies = (c.amax(1) > c.amin(1)).float()  # (B, F)
    weight = varies
    if outcome is not None and K >= 3:
        ro = rank(outcome[..., None], outcome[..., None])  # (B, K, 1)

        def corr2(a: torch.Tensor) -> torch.Tensor:
            a = a - a.mean(1, keepdim=True)
            o = ro - ro.mean(1, keepdim=True)
            num = (a * o).sum(1)
            den = (a.pow(2).sum(1) * o.pow(2).sum(1)).clamp_min(1e-12)
            return num.pow(2) / den  # (B, F)

        weight = varies * (0.05 + torch.maximum(corr2(rc), corr2((rc - 0.5).abs())))
    d = (((rc - rq) ** 2) * weight[:, None, :]).sum(-1) / weight.sum(-1, keepdim=True).clamp_min(1e-6)
    return d, (varies.sum(-1, keepdim=True) > 0).float()


def _mlp(d_in: int, d: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d), nn.GELU(), nn.Linear(d, d_out))


class _CrossBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_q = nn.LayerNorm(d)
        self.ln_kv = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = _mlp(d, 2 * d, d)
        for lin in (self.proj, self.mlp[2]):
            assert isinstance(lin, nn.Linear)
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, h: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``h`` (B, Q, d) attends to ``kv`` (B, M, d); ``mask`` (B, M) bool real tokens."""
        B, Q, D = h.shape
        M, H = kv.shape[1], self.heads
        q = self.q(self.ln_q(h)).view(B, Q, H, D // H).transpose(1, 2)
        k, v = self.kv(self.ln_kv(kv)).split(D, dim=2)
        k = k.view(B, M, H, D // H).transpose(1, 2)
        v = v.view(B, M, H, D // H).transpose(1, 2)
        am = None if mask is None else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=am)
        h = h + self.proj(y.transpose(1, 2).reshape(B, Q, D))
        return h + self.mlp(self.ln2(h))


class StudyPFN(nn.Module):
    """The prefix PFN (``base``) and the study reader (see the module docstring)."""

    kernels: torch.Tensor

    def __init__(self, base: PFN, cfg: StudyConfig | None = None) -> None:
        super().__init__()
        self.base = base
        self.scfg = cfg or StudyConfig()
        d = base.cfg.d_model
        G = self.scfg.grid
        self.ctx_embed = _mlp(2 * G + 3, d, d)
        self.set_ln = nn.LayerNorm(d)
        self.set_attn = nn.MultiheadAttention(d, base.cfg.n_heads, batch_first=True)
        self.set_ln2 = nn.LayerNorm(d)
        self.set_mlp = _mlp(d, 2 * d, d)
        self.pair_embed = _mlp(N_PAIR, d, d)
        self.tok_ln = nn.LayerNorm(d)
        self.tok_mlp = _mlp(d, 2 * d, d)
        self.null = nn.Parameter(torch.zeros(1, 1, d))
        self.cross = nn.ModuleList([_CrossBlock(d, base.cfg.n_heads) for _ in range(self.scfg.n_layers)])
        # the retrieval mixture: neighbours' values at the query step, kernel-smoothed
        self.nb_score = nn.Linear(d, 1)
        self.mix = nn.Linear(d, 1 + len(BANDWIDTHS))  # (weight logit, bandwidth logits)
        nn.init.zeros_(self.mix.weight)
        with torch.no_grad():
            self.mix.bias.zero_()
            self.mix.bias[0] = -8.0
        self.register_buffer("kernels", _kernels(base.borders), persistent=False)

    @property
    def cfg(self) -> PFNConfig:
        return self.base.cfg

    @property
    def borders(self) -> torch.Tensor:
        return self.base.borders

    def bucket_of(self, y: torch.Tensor) -> torch.Tensor:
        return self.base.bucket_of(y)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base.loss(logits, y)

    def encode_context(self, st: StudyTensors) -> torch.Tensor:
        """Context tokens (S, K, d): the part that depends only on the study's state."""
        S, K, T = st.y.shape
        G = self.scfg.grid
        dev = st.y.device
        frac = torch.arange(1, G + 1, device=dev, dtype=torch.float32) / G
        idx = (torch.ceil(frac * T) - 1).long().clamp(0, T - 1)
        seen = (idx[None, None, :] < st.length[..., None]).float()
        vals = st.y[..., idx] * seen
        lt = torch.full((S, K, 1), float(torch.log(torch.tensor(float(T))) / torch.log(
            torch.tensor(float(self.cfg.max_horizon)))), device=dev)
        feats = torch.cat([vals, seen, (st.length.float() / T)[..., None],
                           st.complete.float()[..., None], lt], dim=-1)
        tok = self.ctx_embed(feats)
        a = self.set_ln(tok)
        tok = tok + self.set_attn(a, a, a, need_weights=False)[0]
        return tok + self.set_mlp(self.set_ln2(tok))

    def pair_features(self, st: StudyTensors, sidx: torch.Tensor, y_pre: torch.Tensor,
                      c: torch.Tensor, qfeats: torch.Tensor | None) -> torch.Tensor:
        """(B, K, N_PAIR) features relating each query to each context curve of its study.

        ``y_pre`` (B, C) the queries' prefixes (zero-padded), ``c`` (B,) their lengths."""
        T = st.horizon
        cy = st.y[sidx]  # (B, K, T)
        L = st.length[sidx]
        B, K = L.shape
        cc = c[:, None].expand(B, K)
        half = (c // 2).clamp_min(1)
        at_c = torch.minimum(cc, L) - 1
        at_h = torch.minimum(half[:, None].expand(B, K), L) - 1
        yk = cy.gather(2, at_c[..., None])[..., 0]
        yk_h = cy.gather(2, at_h[..., None])[..., 0]
        yk_last = cy.gather(2, (L - 1)[..., None])[..., 0]
        yt = y_pre.gather(1, (c - 1)[:, None])
        yt_h = y_pre.gather(1, (half - 1)[:, None])
        dist, has = config_distance(st.feats, qfeats, sidx, K, yk_last)
        return torch.stack([
            yk, (L >= cc).float(), yk - yt, yk_h - yt_h, yk_last, yk_last - yt,
            (L - cc).float() / T, st.complete[sidx].float(), dist, has.expand(B, K),
            (c.float() / T)[:, None].expand(B, K), yt.expand(B, K)], dim=-1)

    def forward(
        self,
        x_ctx: torch.Tensor,
        y_ctx: torch.Tensor,
        x_qry: torch.Tensor,
        horizon: torch.Tensor,
        ctx_mask: torch.Tensor | None = None,
        study: StudyTensors | None = None,
        sidx: torch.Tensor | None = None,
        qfeats: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
        frozen_base: bool = False,
    ) -> torch.Tensor:
        """Bucket logits (B, Q, n_buckets), as :meth:`PFN.forward`, reading ``study``.

        ``sidx`` (B,): the study of each query (default: all study 0); ``qfeats`` (B, F) the
        queries' raw config features; ``tokens`` the cached :meth:`encode_context` of ``study``.
        """
        if frozen_base:
            with torch.no_grad():
                h = self.base.encode(x_ctx, y_ctx, x_qry, horizon, ctx_mask)
        else:
            h = self.base.encode(x_ctx, y_ctx, x_qry, horizon, ctx_mask)
        if study is None or study.y.shape[1] == 0:
            return self.base.head(self.base.ln_f(h))
        B = h.shape[0]
        if sidx is None:
            sidx = torch.zeros(B, dtype=torch.long, device=h.device)
        if tokens is None:
            tokens = self.encode_context(study)
        c = (ctx_mask.sum(1) if ctx_mask is not None
             else torch.full((B,), x_ctx.shape[1], device=h.device)).long()
        pair = self.pair_features(study, sidx, y_ctx, c, qfeats)
        tok = tokens[sidx] + self.pair_embed(pair)
        tok = tok + self.tok_mlp(self.tok_ln(tok))
        kv = torch.cat([self.null.expand(B, 1, -1), tok], dim=1)
        for blk in self.cross:
            h = blk(h, kv, None)
        logp = torch.log_softmax(self.base.head(self.base.ln_f(h)).float(), dim=-1)
        return self._mixture(logp, h, tok, study, sidx, x_qry)

    def _mixture(self, logp: torch.Tensor, h: torch.Tensor, tok: torch.Tensor,
                 study: StudyTensors, sidx: torch.Tensor, x_qry: torch.Tensor) -> torch.Tensor:
        """Log of ``(1 - w) p + w q``: ``p`` the network's bucket distribution, ``q`` a kernel
        density of the context curves' values at the query step, weighted by a learned score
        of each context curve (only curves observed that far count); ``w`` and the bandwidth
        are read from the query's state.  Returned as log-probabilities (valid logits)."""
        T = study.horizon
        cy = study.y[sidx]  # (B, K, T)
        L = study.length[sidx]
        step = (x_qry * T).round().long().clamp(1, T)  # (B, Q)
        B, Q = step.shape
        K = cy.shape[1]
        vals = cy.gather(2, (step - 1)[:, None, :].expand(-1, K, -1))  # (B, K, Q)
        seen = L[:, :, None] >= step[:, None, :]
        score = self.nb_score(tok)[..., 0]  # (B, K)
        a = score[:, :, None].masked_fill(~seen, float("-inf"))
        any_seen = seen.any(1)  # (B, Q)
        a = torch.softmax(a.masked_fill(~any_seen[:, None, :], 0.0), dim=1)  # (B, K, Q)
        idx = self.base.bucket_of(vals.transpose(1, 2).contiguous())  # (B, Q, K)
        hist = torch.zeros(B, Q, self.cfg.n_buckets, device=h.device, dtype=torch.float32)
        hist = hist.scatter_add(2, idx, a.transpose(1, 2).float())
        m = self.mix(h).float()
        w = torch.sigmoid(m[..., 0]) * any_seen.float()
        pi = torch.softmax(m[..., 1:], dim=-1)  # (B, Q, S)
        n = self.cfg.n_buckets
        q = ((hist.reshape(B * Q, n) @ self.kernels).view(B, Q, -1, n) * pi[..., None]).sum(2)
        p = torch.exp(logp)
        return torch.log(((1 - w)[..., None] * p + w[..., None] * q).clamp_min(1e-30))
