"""``tcn``: dilated causal temporal convolution (Bai, Kolter and Koltun, "An Empirical
Evaluation of Generic Convolutional and Recurrent Networks for Sequence Modeling", 2018).

``levels`` residual conv layers; level i uses dilation ``growth ** i`` and kernel size
``kernel``, with (kernel - 1) * dilation zeros padded on the left only, so output t sees inputs
<= t.  Receptive field: 1 + (kernel - 1) * sum_i growth**i.  Any length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._activations import make_activation

__all__ = ["TCNCell"]


class TCNCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) stack of dilated causal convolutions."""

    def __init__(self, d_in: int, d_out: int, *, kernel: int = 3, growth: int = 2,
                 levels: int = 2, activation: str = "relu") -> None:
        super().__init__()
        if kernel < 2 or growth < 1 or levels < 1:
            raise ValueError(f"kernel={kernel}, growth={growth}, levels={levels}: need "
                             "kernel >= 2, growth >= 1, levels >= 1")
        self.inp = nn.Linear(d_in, d_out) if d_in != d_out else None
        self.dilations = [growth ** i for i in range(levels)]
        self.kernel = kernel
        self.convs = nn.ModuleList(
            nn.Conv1d(d_out, d_out, kernel, dilation=dil) for dil in self.dilations)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inp is not None:
            x = self.inp(x)
        h = x.transpose(1, 2)  # (B, d, T)
        for conv, dil in zip(self.convs, self.dilations):
            h = h + self.act(conv(F.pad(h, ((self.kernel - 1) * dil, 0))))
        return h.transpose(1, 2)
