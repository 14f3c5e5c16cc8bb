"""``rhn``: recurrent highway network (Zilly et al., "Recurrent Highway Networks", ICML 2017).

At each time step the state passes through ``recurrence_depth`` highway micro-layers; the input
enters only the first one.  With coupled carry gate (c = 1 - t)::

    h_l = act(W_H x [l=1] + R_H,l s_{l-1} + b_H,l)
    t_l = sigmoid(W_T x [l=1] + R_T,l s_{l-1} + b_T,l)
    s_l = h_l * t_l + s_{l-1} * (1 - t_l)

The output at time t is s_L.  A ``dynamic`` hypernetwork scales the rows of ``W`` and every
``R_l`` at each step.  Transform-gate biases start at -1 (carry), as the paper recommends.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces._activations import make_activation
from search_spaces.hyper import DynamicScaler

__all__ = ["RHNCell"]


class RHNCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) recurrent highway layer."""

    def __init__(self, d_in: int, d_out: int, *, recurrence_depth: int = 2,
                 activation: str = "tanh", dynamic_hyper: int = 0, mip: bool = False) -> None:
        super().__init__()
        if recurrence_depth < 1:
            raise ValueError(f"recurrence_depth is {recurrence_depth}, but must be >= 1")
        self.depth = recurrence_depth
        self.d_out = d_out
        self.inp = nn.Linear(d_in, 2 * d_out, bias=False)
        self.rec = nn.ModuleList(nn.Linear(d_out, 2 * d_out) for _ in range(recurrence_depth))
        with torch.no_grad():
            for lin in self.linears():
                lin.bias[d_out:].fill_(-1.0)
        self.act = make_activation(activation)
        self.dynamic: DynamicScaler | None = (
            DynamicScaler(d_in, d_out, 2 * d_out, 2 * d_out * recurrence_depth, dynamic_hyper, mip)
            if dynamic_hyper > 0 else None
        )

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.rec if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        H = self.d_out
        xp = self.inp(x)
        s = x.new_zeros(B, H)
        dyn = self.dynamic
        hs = dyn.init_state(B, x) if dyn is not None else None
        outs = []
        for t in range(T):
            gx = xp[:, t]
            sh: torch.Tensor | None = None
            if dyn is not None and hs is not None:
                sx, sh, bt, hs = dyn.step(x[:, t], s, hs)
                gx = sx * gx + bt
            for layer, lin in enumerate(self.linears()):
                g = lin(s)
                if sh is not None:
                    w = lin.weight
                    scale = sh[:, layer * 2 * H:(layer + 1) * 2 * H]
                    g = scale * (s @ w.t()) + lin.bias
                if layer == 0:
                    g = g + gx
                hcand, tgate = g.chunk(2, dim=-1)
                tg = torch.sigmoid(tgate)
                s = self.act(hcand) * tg + s * (1 - tg)
            outs.append(s)
        if dyn is not None:
            dyn.finish()
        return torch.stack(outs, dim=1)
