"""``slstm``: scalar LSTM with exponential gating and a stabiliser state (Beck et al.,
"xLSTM: Extended Long Short-Term Memory", 2024, section 2.2).

Per step, with pre-activations from ``W x_t + R h_{t-1} + b``::

    z = act(z~)          i~ (log input gate, exponential gate)
    log f = logsigmoid(f~)  (``forget = "sigmoid"``)  or  f~  (``forget = "exp"``)
    m_t = max(log f + m_{t-1}, i~)                      stabiliser
    i' = exp(i~ - m_t),  f' = exp(log f + m_{t-1} - m_t)
    c_t = f' c_{t-1} + i' z,   n_t = f' n_{t-1} + i',   h_t = sigmoid(o~) * c_t / n_t

We use one full recurrent matrix R (the paper's block-diagonal heads are a special case).
A ``dynamic`` hypernetwork rescales W's and R's rows at every step.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces._activations import make_activation
from search_spaces.hyper import DynamicScaler

__all__ = ["SLSTMCell"]


class SLSTMCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) sLSTM layer."""

    def __init__(self, d_in: int, d_out: int, *, forget: str = "sigmoid",
                 activation: str = "tanh", dynamic_hyper: int = 0, mip: bool = False) -> None:
        super().__init__()
        if forget not in ("sigmoid", "exp"):
            raise ValueError(f"forget is {forget!r}, but must be 'sigmoid' or 'exp'")
        self.forget = forget
        self.d_out = d_out
        self.inp = nn.Linear(d_in, 4 * d_out)
        self.rec = nn.Linear(d_out, 4 * d_out, bias=False)
        with torch.no_grad():  # gate order z, i, f, o; start remembering (f~ > 0)
            self.inp.bias[2 * d_out:3 * d_out].fill_(3.0 if forget == "sigmoid" else 0.0)
        self.act = make_activation(activation)
        self.dynamic: DynamicScaler | None = (
            DynamicScaler(d_in, d_out, 4 * d_out, 4 * d_out, dynamic_hyper, mip)
            if dynamic_hyper > 0 else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        H = self.d_out
        xp = self.inp(x)
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        n = x.new_zeros(B, H)
        m = x.new_zeros(B, H)
        dyn = self.dynamic
        hs = dyn.init_state(B, x) if dyn is not None else None
        outs = []
        for t in range(T):
            gx = xp[:, t]
            gh = self.rec(h)
            if dyn is not None and hs is not None:
                sx, sh, bt, hs = dyn.step(x[:, t], h, hs)
                gx = sx * gx + bt
                gh = sh * gh
            zt, it, ft, ot = (gx + gh).chunk(4, dim=-1)
            logf = torch.nn.functional.logsigmoid(ft) if self.forget == "sigmoid" else ft
            if t == 0:  # empty memory: m_0 = i~, so i' = 1 and the forget gate is unused
                m_new = it
                c = self.act(zt)
                n = torch.ones_like(it)
            else:
                m_new = torch.maximum(logf + m, it)
                i_ = torch.exp(it - m_new)
                f_ = torch.exp(logf + m - m_new)
                c = f_ * c + i_ * self.act(zt)
                n = f_ * n + i_
            h = torch.sigmoid(ot) * c / n
            m = m_new
            outs.append(h)
        if dyn is not None:
            dyn.finish()
        return torch.stack(outs, dim=1)
