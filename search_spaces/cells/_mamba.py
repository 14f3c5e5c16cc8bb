"""``mamba``: a selective state-space block in the style of Mamba (Gu and Dao, "Mamba:
Linear-Time Sequence Modeling with Selective State Spaces", 2023), in plain torch.

The block (figure 3 of the paper): the input is projected to two streams of width
E = ``expand`` * d.  Stream x goes through a short causal depthwise convolution (``conv``
taps) and SiLU, then the selective SSM; stream z gates the result, y * SiLU(z); a linear map
brings it back to d.  The SSM (algorithm 2 of the paper) has a diagonal A = -exp(A_log)
(E x N, S4D-real init A_n = -(n + 1), N = ``state``) and *input-dependent* step size, input and
output matrices:

    Delta_t = softplus(W_dt (W_r x_t) + b_dt),  B_t = W_B x_t,  C_t = W_C x_t,
    h_t = exp(Delta_t A) * h_{t-1} + Delta_t B_t x_t,   y_t = C_t . h_t + D x_t

(zero-order hold for A, the paper's simplified Euler step for B; W_r has rank ceil(d / 16)).

The recurrence h_t = a_t * h_{t-1} + b_t is a linear scan, computed three ways:

* ``scan="sequential"``: the reference loop over t;
* ``scan="parallel"``: a Hillis-Steele associative scan over the whole sequence with the
  operator (a1, b1) then (a2, b2) = (a1 a2, a2 b1 + b2), ceil(log2 T) rounds;
* ``scan="chunked"`` (the default for training): the parallel scan inside chunks of
  :data:`CHUNK` steps, all chunks at once, then one sequential pass over the chunks that
  carries each chunk's final state into the next (h_t += (prod of a within the chunk up to t)
  * carry).

They agree to float precision (tests: float64, < 1e-10).  No CUDA kernels.  Options: ``state``
(N), ``expand`` (E / d) and ``conv`` (taps).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CHUNK", "MambaCell", "selective_scan"]

CHUNK = 16


def _parallel(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of h_t = a_t h_{t-1} + b_t (h_0 = 0) along dim 1: (prod a, h)."""
    T = a.shape[1]
    shift = 1
    while shift < T:
        a_prev, b_prev = a[:, :-shift], b[:, :-shift]
        a_cur, b_cur = a[:, shift:], b[:, shift:]
        b = torch.cat([b[:, :shift], a_cur * b_prev + b_cur], dim=1)
        a = torch.cat([a[:, :shift], a_cur * a_prev], dim=1)
        shift *= 2
    return a, b


def selective_scan(a: torch.Tensor, b: torch.Tensor, scan: str = "chunked",
                   chunk: int = CHUNK) -> torch.Tensor:
    """All states h (B, T, ...) of h_t = a_t * h_{t-1} + b_t with h_0 = 0; ``a``, ``b`` of
    shape (B, T, ...)."""
    B, T = a.shape[:2]
    if scan == "sequential":
        h = torch.zeros_like(b[:, 0])
        hs = []
        for t in range(T):
            h = a[:, t] * h + b[:, t]
            hs.append(h)
        return torch.stack(hs, dim=1)
    if scan == "parallel":
        return _parallel(a, b)[1]
    if scan != "chunked":
        raise ValueError(f"scan is {scan!r}, but must be 'sequential', 'parallel' or 'chunked'")
    L = min(chunk, T)
    n = -(-T // L)
    pad = n * L - T
    if pad:  # padding at the end: later steps never reach earlier ones
        a = torch.cat([a, a.new_ones(B, pad, *a.shape[2:])], dim=1)
        b = torch.cat([b, b.new_zeros(B, pad, *b.shape[2:])], dim=1)
    rest = a.shape[2:]
    pa, hb = _parallel(a.reshape(B * n, L, *rest), b.reshape(B * n, L, *rest))
    pa, hb = pa.view(B, n, L, *rest), hb.view(B, n, L, *rest)
    outs = [hb[:, 0]]
    carry = hb[:, 0, -1]
    for c in range(1, n):  # carry each chunk's final state into the next
        h = hb[:, c] + pa[:, c] * carry.unsqueeze(1)
        outs.append(h)
        carry = h[:, -1]
    return torch.stack(outs, dim=1).reshape(B, n * L, *rest)[:, :T]


class MambaCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) gated selective-SSM block (see the module docstring)."""

    def __init__(self, d_in: int, d_out: int, *, state: int = 16, expand: int = 2,
                 conv: int = 4, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 scan: str = "chunked") -> None:
        super().__init__()
        if state < 1 or expand < 1 or conv < 1:
            raise ValueError(f"state={state}, expand={expand}, conv={conv}: all must be >= 1")
        d = d_out
        E = expand * d
        self.E, self.N, self.conv_k, self.scan = E, state, conv, scan
        self.rank = math.ceil(d / 16)
        self.in_proj = nn.Linear(d_in, 2 * E)
        self.conv = nn.Conv1d(E, E, conv, groups=E)
        self.x_proj = nn.Linear(E, self.rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(self.rank, E)
        # Delta initialised log-uniformly in [dt_min, dt_max]: bias = softplus^-1(dt) (paper)
        dt = torch.exp(torch.rand(E) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state + 1, dtype=torch.float32))
                                  .repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d_out)

    def _ssm_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, b, C) of the scan from the conv'd stream x (B, T, E): a, b (B, T, E, N)."""
        r, Bm, Cm = self.x_proj(x).split([self.rank, self.N, self.N], dim=-1)
        delta = F.softplus(self.dt_proj(r))  # (B, T, E)
        A = -torch.exp(self.A_log.to(x.dtype))  # (E, N)
        a = torch.exp(delta.unsqueeze(-1) * A)
        b = (delta * x).unsqueeze(-1) * Bm.unsqueeze(-2)
        return a, b, Cm

    def forward(self, x: torch.Tensor, scan: str | None = None) -> torch.Tensor:
        T = x.shape[1]
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        xs = self.conv(F.pad(xs.transpose(1, 2), (self.conv_k - 1, 0)))[..., :T]
        xs = F.silu(xs.transpose(1, 2))
        a, b, Cm = self._ssm_inputs(xs)
        h = selective_scan(a, b, scan or self.scan)
        y = torch.einsum("bten,btn->bte", h, Cm) + self.D * xs
        return self.out_proj(y * F.silu(z))
