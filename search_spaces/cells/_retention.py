"""``retention``: multi-scale retention (Sun et al., "Retentive Network: A Successor to
Transformer for Large Language Models", 2023), i.e. decayed linear attention.

Head h has a fixed decay gamma_h = 1 - 2^(-5-h).  With rotary-rotated queries/keys Q, K and V:

* parallel form (training):   Y = (Q K^T * D) V,  D[n, m] = gamma^(n-m) if n >= m else 0
* recurrent form (stepping):  S_n = gamma S_{n-1} + K_n^T V_n,   Y_n = Q_n S_n

Both give the same Y (tests check 1e-5 in float64).  Then a per-head group norm, a gate
``act(X W_G)`` with the sampled activation (the paper uses swish), and an output projection.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces._activations import make_activation
from search_spaces.cells._attention import rotate

__all__ = ["RetentionCell"]


class RetentionCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) multi-scale retention layer."""

    log_gamma: torch.Tensor

    def __init__(self, d_in: int, d_out: int, *, heads: int = 2, activation: str = "gelu") -> None:
        super().__init__()
        d = d_out
        if d % heads or (d // heads) % 2:
            raise ValueError(f"width {d} must split into {heads} heads of even size")
        self.heads = heads
        self.d = d
        self.qkv = nn.Linear(d_in, 3 * d, bias=False)
        self.gate = nn.Linear(d_in, d, bias=False)
        self.norm = nn.GroupNorm(heads, d)
        self.out = nn.Linear(d, d_out, bias=False)
        self.act = make_activation(activation)
        gammas = 1.0 - 2.0 ** (-5.0 - torch.arange(heads, dtype=torch.float32))
        self.register_buffer("log_gamma", torch.log(gammas), persistent=False)

    def _qkv(self, x: torch.Tensor, offset: int = 0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        dh = self.d // self.heads
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        return rotate(q, offset), rotate(k, offset) * dh ** -0.5, v

    def init_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The empty recurrent state S_0 (B, heads, dh, dh) for :meth:`step`."""
        dh = self.d // self.heads
        return like.new_zeros(batch, self.heads, dh, dh)

    def step(self, x_t: torch.Tensor, state: torch.Tensor, t: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the recurrent form for step-by-step use: ``x_t`` (B, d_in) at position
        ``t`` (0-based) -> (output (B, d_out), new state).  Stepping t = 0..T-1 reproduces
        ``forward`` on the whole sequence."""
        B = x_t.shape[0]
        q, k, v = self._qkv(x_t.unsqueeze(1), offset=t)  # (B, heads, 1, dh)
        gamma = torch.exp(self.log_gamma.to(x_t.dtype)).view(-1, 1, 1)
        state = gamma * state + k.transpose(-1, -2) @ v
        y = self.norm((q @ state).reshape(B, self.d))
        return self.out(self.act(self.gate(x_t)) * y), state

    def retention(self, x: torch.Tensor, mode: str = "parallel") -> torch.Tensor:
        """Raw retention output (B, heads, T, dh) in the ``parallel`` or ``recurrent`` form."""
        q, k, v = self._qkv(x)
        T = x.shape[1]
        lg = self.log_gamma.to(x.dtype).view(-1, 1, 1)
        if mode == "parallel":
            idx = torch.arange(T, device=x.device)
            diff = (idx.unsqueeze(1) - idx.unsqueeze(0)).to(x.dtype)
            decay = torch.exp(lg * diff.clamp(min=0)) * (diff >= 0).to(x.dtype)
            return ((q @ k.transpose(-1, -2)) * decay) @ v
        if mode == "recurrent":
            gamma = torch.exp(lg)
            S = q.new_zeros(q.shape[0], self.heads, q.shape[-1], v.shape[-1])
            ys = []
            for t in range(T):
                S = gamma * S + k[:, :, t].unsqueeze(-1) * v[:, :, t].unsqueeze(-2)
                ys.append((q[:, :, t].unsqueeze(-2) @ S).squeeze(-2))
            return torch.stack(ys, dim=2)
        raise ValueError(f"mode is {mode!r}, but must be 'parallel' or 'recurrent'")

    def forward(self, x: torch.Tensor, mode: str = "parallel") -> torch.Tensor:
        B, T, _ = x.shape
        y = self.retention(x, mode).transpose(1, 2).reshape(B * T, self.d)
        y = self.norm(y).view(B, T, self.d)
        return self.out(self.act(self.gate(x)) * y)
