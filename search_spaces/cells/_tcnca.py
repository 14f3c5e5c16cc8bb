"""``tcnca``: temporal convolutions with chunked attention (Terzić et al., "TCNCA: Temporal
Convolution Network with Chunked Attention for Scalable Sequence Processing", 2023).

TCNCA replaces the exponential moving average of MEGA by a dilated causal TCN and keeps MEGA's
chunked attention: the sequence is cut into non-overlapping chunks of ``chunk`` steps and causal
softmax attention runs inside each chunk only, so the cost is O(T * chunk) instead of O(T^2);
information crosses chunk borders through the TCN's receptive field.  Here the block is

    h = TCN(x)      (``levels`` residual dilated causal convolutions, dilation 2^i, ``kernel``)
    h = h + attn_chunk(ln(h)),   out = h + ffn(ln(h))   (2x feed-forward, sampled activation)

Options: ``chunk`` (the searched chunk size), ``kernel``, ``levels``, ``heads``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._activations import make_activation
from search_spaces.cells._tcn import TCNCell

__all__ = ["TCNCACell", "chunked_causal_attention"]


def chunked_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             chunk: int) -> torch.Tensor:
    """Causal attention within chunks of ``chunk`` steps: q, k, v (B, h, T, dh) -> same."""
    B, H, T, dh = q.shape
    n = -(-T // chunk)
    pad = n * chunk - T
    if pad:  # right padding: padded keys come after every real query of their chunk
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(B, H, n, chunk, dh)

    y = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
    return y.reshape(B, H, n * chunk, dh)[:, :, :T]


class TCNCACell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) TCN followed by chunked causal attention."""

    def __init__(self, d_in: int, d_out: int, *, chunk: int = 8, kernel: int = 3,
                 levels: int = 2, heads: int = 2, activation: str = "relu") -> None:
        super().__init__()
        d = d_out
        if chunk < 1 or d % heads:
            raise ValueError(f"chunk={chunk}, heads={heads}: need chunk >= 1 and width {d} "
                             "divisible by heads")
        self.chunk, self.heads = chunk, heads
        self.tcn = TCNCell(d_in, d, kernel=kernel, growth=2, levels=levels,
                           activation=activation)
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, 2 * d)
        self.act = make_activation(activation)
        self.ff2 = nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tcn(x)
        B, T, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(B, T, 3, self.heads, d // self.heads) \
            .permute(2, 0, 3, 1, 4)
        y = chunked_causal_attention(q, k, v, self.chunk)
        h = h + self.proj(y.transpose(1, 2).reshape(B, T, d))
        return h + self.ff2(self.act(self.ff1(self.ln2(h))))
