"""``aaren``: attention as a many-to-many RNN (Feng et al., "Attention as an RNN",
2024).

Each head has a *learned* query q (not computed from the input); keys and values come from the
input.  The output at step k is softmax attention of q over the prefix 1..k:

    s_i = q . k_i / sqrt(d_h),   o_k = sum_{i<=k} exp(s_i - m_k) v_i / sum_{i<=k} exp(s_i - m_k)

with m_k = max_{i<=k} s_i for stability.  Two forms give the same o (tests: float64, < 1e-8):

* ``mode="scan"`` (training): a parallel prefix scan (Hillis-Steele, ceil(log2 T) rounds of
  O(T) work) with the paper's associative operator on triples (m, u, w):

      (m_A, u_A, w_A) (+) (m_B, u_B, w_B) = (m, u_A e^{m_A - m} + u_B e^{m_B - m},
                                                w_A e^{m_A - m} + w_B e^{m_B - m}),
      m = max(m_A, m_B),

  starting from (s_i, 1, v_i); o_k = w_k / u_k of the k-th prefix.
* ``mode="recurrent"`` / :meth:`AarenCell.step` (inference): the constant-memory RNN

      m_k = max(m_{k-1}, s_k),  u_k = u_{k-1} e^{m_{k-1} - m_k} + e^{s_k - m_k},
      w_k = w_{k-1} e^{m_{k-1} - m_k} + v_k e^{s_k - m_k},  o_k = w_k / u_k.

As in the paper, Aaren replaces self-attention inside a pre-norm transformer block (then a 2x
feed-forward with the sampled activation).  Options: ``heads``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from search_spaces._activations import make_activation

__all__ = ["AarenCell", "aaren_recurrent", "aaren_scan"]

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _combine(a: State, b: State) -> State:
    """The associative operator of Feng et al. (2024) on (m, u, w) triples (b after a)."""
    m = torch.maximum(a[0], b[0])
    ea, eb = torch.exp(a[0] - m), torch.exp(b[0] - m)
    return m, a[1] * ea + b[1] * eb, a[2] * ea.unsqueeze(-1) + b[2] * eb.unsqueeze(-1)


def aaren_scan(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Prefix-scan form: scores ``s`` (..., T) and values ``v`` (..., T, d) -> (..., T, d)."""
    m, u, w = s, torch.ones_like(s), v
    T = s.shape[-1]
    shift = 1
    while shift < T:  # Hillis-Steele inclusive scan: prefix i combines with prefix i - shift
        prev = (m[..., :-shift], u[..., :-shift], w[..., :-shift, :])
        cur = (m[..., shift:], u[..., shift:], w[..., shift:, :])
        cm, cu, cw = _combine(prev, cur)
        m = torch.cat([m[..., :shift], cm], dim=-1)
        u = torch.cat([u[..., :shift], cu], dim=-1)
        w = torch.cat([w[..., :shift, :], cw], dim=-2)
        shift *= 2
    return w / u.unsqueeze(-1)


def aaren_recurrent(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Recurrent form, one step at a time (same arguments as :func:`aaren_scan`)."""
    state = _init(s[..., 0], v[..., 0, :])
    outs = []
    for t in range(s.shape[-1]):
        o, state = _step(s[..., t], v[..., t, :], state)
        outs.append(o)
    return torch.stack(outs, dim=-2)


def _init(s0: torch.Tensor, v0: torch.Tensor) -> State:
    return (torch.full_like(s0, float("-inf")), torch.zeros_like(s0), torch.zeros_like(v0))


def _step(s: torch.Tensor, v: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    m_prev, u_prev, w_prev = state
    m = torch.maximum(m_prev, s)
    decay = torch.exp(m_prev - m)  # 0 at the first step (m_prev = -inf)
    new = torch.exp(s - m)
    u = u_prev * decay + new
    w = w_prev * decay.unsqueeze(-1) + v * new.unsqueeze(-1)
    return w / u.unsqueeze(-1), (m, u, w)


class AarenCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) pre-norm block with Aaren attention and a feed-forward."""

    def __init__(self, d_in: int, d_out: int, *, heads: int = 2,
                 activation: str = "gelu") -> None:
        super().__init__()
        d = d_out
        if d % heads:
            raise ValueError(f"width {d} must split into {heads} heads")
        self.heads = heads
        self.dh = d // heads
        self.inp = nn.Linear(d_in, d) if d_in != d else None
        self.ln1 = nn.LayerNorm(d)
        self.kv = nn.Linear(d, 2 * d)
        self.query = nn.Parameter(torch.randn(heads, self.dh) / math.sqrt(self.dh))
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, 2 * d)
        self.act = make_activation(activation)
        self.ff2 = nn.Linear(2 * d, d)

    def _scores(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B, heads, T) and values (B, heads, T, dh) of (B, T, d) normed inputs."""
        B, T, _ = h.shape
        k, v = self.kv(h).view(B, T, 2, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        s = torch.einsum("bhtd,hd->bht", k, self.query.to(k.dtype)) / math.sqrt(self.dh)
        return s, v

    def attend(self, x: torch.Tensor, mode: str = "scan") -> torch.Tensor:
        """The raw Aaren output (B, heads, T, dh) of (B, T, d) inputs."""
        s, v = self._scores(self.ln1(x))
        if mode == "scan":
            return aaren_scan(s, v)
        if mode == "recurrent":
            return aaren_recurrent(s, v)
        raise ValueError(f"mode is {mode!r}, but must be 'scan' or 'recurrent'")

    def _finish(self, x: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        B, _, T, _ = o.shape
        x = x + self.proj(o.transpose(1, 2).reshape(B, T, self.heads * self.dh))
        return x + self.ff2(self.act(self.ff1(self.ln2(x))))

    def forward(self, x: torch.Tensor, mode: str = "scan") -> torch.Tensor:
        if self.inp is not None:
            x = self.inp(x)
        return self._finish(x, self.attend(x, mode))

    def init_state(self, batch: int, like: torch.Tensor) -> State:
        """The empty RNN state (m, u, w) for :meth:`step`: constant size, whatever the length."""
        s0 = like.new_zeros(batch, self.heads)
        return _init(s0, like.new_zeros(batch, self.heads, self.dh))

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step for step-by-step inference: ``x_t`` (B, d_in) -> (output (B, d_out), new
        state).  Stepping over a sequence reproduces ``forward``."""
        x = self.inp(x_t) if self.inp is not None else x_t
        s, v = self._scores(self.ln1(x).unsqueeze(1))
        o, state = _step(s[..., 0], v[..., 0, :], state)
        return self._finish(x.unsqueeze(1), o.unsqueeze(2)).squeeze(1), state
