"""``dynamic`` hypernetwork: a small recurrent network rescales a recurrent cell's weights at
every time step (HyperLSTM; Ha, Dai and Le, "HyperNetworks", ICLR 2017, section 3.2).

Called by the loop-based recurrent cells (``lstm``, ``gru``, ``rnn_*``, ``rhn``, ``slstm``) once
per time step through :meth:`DynamicScaler.step`.  At step t the hypernetwork LSTM reads
``[x_t, h_{t-1}]`` and emits per-row scales ``s_x(t)``, ``s_h(t)`` and a bias ``b(t)`` so that
the main cell's pre-activation is::

    s_x(t) * (W_x x_t) + s_h(t) * (W_h h_{t-1}) + b + b(t)

i.e. the effective weights are ``diag(s_x(t)) W_x`` and ``diag(s_h(t)) W_h``: they change at
every step.  Without MIP the scales are produced directly (output bias initialised to 1, as in
Ha et al.); with MIP the hypernetwork input is encoded with constant norm (:func:`mip_encode`)
and the output is a residual on the base weights: ``s = 1 + delta(t)`` with ``delta`` starting
near 0.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.hyper._mip import mip_encode

__all__ = ["DynamicScaler"]


class DynamicScaler(nn.Module):
    """Per-time-step weight scales for one recurrent cell.

    ``n_x``/``n_h`` are the lengths of the input/recurrent pre-activation vectors.  When
    ``record`` is true, :attr:`last_scales` holds the (B, T, n_x + n_h) scales of the last
    sequence (tests use it to see the weights change over time).
    """

    def __init__(self, d_in: int, d_state: int, n_x: int, n_h: int, hyper_size: int,
                 mip: bool = False) -> None:
        super().__init__()
        self.mip = mip
        self.n_x, self.n_h = n_x, n_h
        in_dim = 2 * (d_in + d_state) if mip else d_in + d_state
        self.cell = nn.LSTMCell(in_dim, hyper_size)
        self.to_scale = nn.Linear(hyper_size, n_x + n_h)
        self.to_bias = nn.Linear(hyper_size, n_x, bias=False)
        with torch.no_grad():
            self.to_scale.weight.normal_(0.0, 0.1 / hyper_size**0.5)
            self.to_scale.bias.fill_(0.0 if mip else 1.0)
            self.to_bias.weight.zero_()
        self.record = False
        self.last_scales: torch.Tensor | None = None
        self.last_inputs: torch.Tensor | None = None
        self._trace: list[torch.Tensor] = []
        self._inputs: list[torch.Tensor] = []

    def init_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = like.new_zeros(batch, self.cell.hidden_size)
        self._trace, self._inputs = [], []
        return z, z

    def step(self, x_t: torch.Tensor, h_prev: torch.Tensor,
             state: tuple[torch.Tensor, torch.Tensor]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Return ``(s_x, s_h, b, new_state)`` for one step."""
        u = torch.cat([x_t, h_prev], dim=-1)
        if self.mip:
            u = mip_encode(u)
        hz, cz = self.cell(u, state)
        s = self.to_scale(hz)
        if self.mip:
            s = 1.0 + s
        if self.record:
            self._trace.append(s.detach())
            self._inputs.append(u.detach())
        return s[:, : self.n_x], s[:, self.n_x:], self.to_bias(hz), (hz, cz)

    def finish(self) -> None:
        """Called by the cell after the last step: publish the recorded trace."""
        if self.record and self._trace:
            self.last_scales = torch.stack(self._trace, dim=1)
            self.last_inputs = torch.stack(self._inputs, dim=1)
        self._trace, self._inputs = [], []
