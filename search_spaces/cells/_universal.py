"""``universal``: one weight-shared attention block applied repeatedly with per-position
adaptive computation time (Dehghani et al., "Universal Transformers", ICLR 2019; ACT from
Graves, "Adaptive Computation Time for Recurrent Neural Networks", 2016).

At every step n each position computes a halting probability p_n = sigmoid(w . s + b).  A
position halts at the first step where its cumulative probability would exceed 1 - eps; its
remainder R = 1 - (sum of earlier p) is used as the last weight, and the output is the
weighted mean of the states (Graves, eq. 6-7).  A position that never halts stops at
``max_steps``.  The ponder cost rho = N + R (Graves, eq. 11), averaged over positions and
multiplied by ``ponder``, is left in :attr:`aux_loss` after each forward; the model sums it and
the training loop adds it to the loss.  :attr:`last_n_updates` holds N per position (B, T).
Halted positions keep being updated (their output weight is 0), so causality holds: state t
only ever attends to states <= t.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.cells._attention import AttentionBlock, sinusoidal

__all__ = ["UniversalCell"]

EPS = 0.01


class UniversalCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) universal-transformer layer with ACT."""

    def __init__(self, d_in: int, d_out: int, *, heads: int = 2, max_steps: int = 4,
                 ponder: float = 0.01, pos: str = "rotary", activation: str = "gelu") -> None:
        super().__init__()
        if max_steps < 1:
            raise ValueError(f"max_steps is {max_steps}, but must be >= 1")
        if pos == "learned":
            raise ValueError("universal supports pos none|sinusoidal|rotary|alibi")
        self.max_steps = max_steps
        self.ponder = float(ponder)
        self.pos = pos
        self.d = d_out
        self.inp = nn.Linear(d_in, d_out) if d_in != d_out else None
        self.block = AttentionBlock(d_out, heads, pos, activation)
        self.step_embed = nn.Parameter(torch.randn(max_steps, d_out) * 0.02)
        self.halt = nn.Linear(d_out, 1)
        with torch.no_grad():
            self.halt.bias.fill_(1.0)  # start near 2 steps, as Dehghani et al. do
        self.aux_loss: torch.Tensor = torch.zeros(())
        self.last_n_updates: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inp is not None:
            x = self.inp(x)
        B, T, _ = x.shape
        if self.pos == "sinusoidal":
            x = x + sinusoidal(T, self.d, x)
        state = x
        cum = x.new_zeros(B, T)          # sum of p over steps while running
        remainder = x.new_zeros(B, T)
        n_updates = x.new_zeros(B, T)
        out = torch.zeros_like(x)
        running = x.new_ones(B, T)
        for n in range(self.max_steps):
            state = state + self.step_embed[n]
            p = torch.sigmoid(self.halt(state)).squeeze(-1)
            if n == self.max_steps - 1:
                halting = running
            else:
                halting = (cum + p > 1.0 - EPS).to(x.dtype) * running
            still = running - halting
            weight = p * still + halting * (1.0 - cum)
            remainder = remainder + halting * (1.0 - cum)
            cum = cum + p * still
            n_updates = n_updates + running
            state = self.block(state)
            out = out + weight.unsqueeze(-1) * state
            running = still
            if not bool(running.any()):
                break
        self.last_n_updates = n_updates.detach()
        self.aux_loss = self.ponder * (n_updates + remainder).mean()
        return out
