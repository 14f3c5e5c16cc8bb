"""Classic recurrent cells: ``lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``.

Without a ``dynamic`` hypernetwork they run torch's fused kernels (``nn.LSTM``, ``nn.GRU``,
``nn.RNN``).  With one, the same parameters are used by a Python loop over time so that a
:class:`~search_spaces.hyper.DynamicScaler` can rescale the weights at every step; the input
projection of all steps is still computed in one matmul.  Gate layouts follow torch's
(LSTM: i, f, g, o; GRU: r, z, n), so both paths compute the same function when the scales are 1.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from search_spaces.hyper import DynamicScaler

__all__ = ["GATES", "TorchRNNCell"]

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


class TorchRNNCell(nn.Module):
    """One recurrent layer of kind ``lstm | gru | rnn_tanh | rnn_relu``: (B, T, d_in) -> (B, T, d_out).

    ``dynamic_hyper`` is the hypernetwork size for the ``dynamic`` mode (0: none).
    """

    def __init__(self, kind: str, d_in: int, d_out: int, *, dynamic_hyper: int = 0,
                 mip: bool = False) -> None:
        super().__init__()
        if kind not in GATES:
            raise ValueError(f"unknown recurrent cell {kind!r}")
        self.kind = kind
        self.d_out = d_out
        rnn: nn.Module
        if kind == "lstm":
            rnn = nn.LSTM(d_in, d_out, batch_first=True)
        elif kind == "gru":
            rnn = nn.GRU(d_in, d_out, batch_first=True)
        else:
            rnn = nn.RNN(d_in, d_out, batch_first=True, nonlinearity=kind[4:])
        self.rnn = rnn
        n = GATES[kind] * d_out
        self.dynamic: DynamicScaler | None = (
            DynamicScaler(d_in, d_out, n, n, dynamic_hyper, mip) if dynamic_hyper > 0 else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic is None:
            y, _ = self.rnn(x)
            return y
        return self._loop(x, self.dynamic)

    def _loop(self, x: torch.Tensor, dyn: DynamicScaler) -> torch.Tensor:
        r = self.rnn
        w_ih: torch.Tensor = cast(torch.Tensor, r.weight_ih_l0)
        w_hh: torch.Tensor = cast(torch.Tensor, r.weight_hh_l0)
        b_ih: torch.Tensor = cast(torch.Tensor, r.bias_ih_l0)
        b_hh: torch.Tensor = cast(torch.Tensor, r.bias_hh_l0)
        B, T, _ = x.shape
        H = self.d_out
        xp = torch.nn.functional.linear(x, w_ih, b_ih)  # (B, T, G*H), all steps at once
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        hs = dyn.init_state(B, x)
        outs = []
        for t in range(T):
            sx, sh, bt, hs = dyn.step(x[:, t], h, hs)
            gx = sx * xp[:, t] + bt
            gh = sh * (h @ w_hh.t()) + b_hh
            if self.kind == "lstm":
                i, f, g, o = (gx + gh).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            elif self.kind == "gru":
                xr, xz, xn = gx.chunk(3, dim=-1)
                hr, hz, hn = gh.chunk(3, dim=-1)
                rg = torch.sigmoid(xr + hr)
                z = torch.sigmoid(xz + hz)
                nn_ = torch.tanh(xn + rg * hn)
                h = (1 - z) * nn_ + z * h
            elif self.kind == "rnn_tanh":
                h = torch.tanh(gx + gh)
            else:
                h = torch.relu(gx + gh)
            outs.append(h)
        dyn.finish()
        return torch.stack(outs, dim=1)
