"""``attention``: a multi-head causal self-attention block with a positional-encoding option.

The cell is a pre-norm transformer block (attention, then a 2x feed-forward with the sampled
activation), each with its own residual; the model adds its outer residual/norm around it.
Positional encodings (``pos``):

* ``none`` — causal attention alone (order is still visible through the mask);
* ``sinusoidal`` — Vaswani et al. (2017) added to the input; any length;
* ``learned`` — a learned absolute table of :data:`MAX_LEARNED_POSITIONS` rows;
* ``rotary`` — RoPE (Su et al., 2021) on queries and keys; any length;
* ``alibi`` — linear distance biases (Press et al., 2022); any length.

Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention` (fused on CPU
and CUDA).  :class:`AttentionBlock` is also the shared block of ``universal``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces._activations import make_activation
from search_spaces._names import POSITIONAL

__all__ = [
    "MAX_LEARNED_POSITIONS",
    "POSITIONAL",
    "AttentionBlock",
    "AttentionCell",
    "CausalSelfAttention",
    "rotate",
    "sinusoidal",
]

MAX_LEARNED_POSITIONS = 4096


def sinusoidal(T: int, d: int, like: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """(T, d) sinusoidal table (Vaswani et al., 2017) for positions offset..offset+T-1."""
    pos = torch.arange(offset, offset + T, device=like.device, dtype=like.dtype).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d, 2, device=like.device, dtype=like.dtype)
                     * (-math.log(10000.0) / d))
    table = like.new_zeros(T, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table


def rotate(x: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Rotary position embedding of (B, h, T, dh) with even dh (Su et al., RoFormer)."""
    T, dh = x.shape[-2], x.shape[-1]
    pos = torch.arange(offset, offset + T, device=x.device, dtype=x.dtype).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dh, 2, device=x.device, dtype=x.dtype)
                     * (-math.log(10000.0) / dh))
    ang = pos * freq  # (T, dh/2)
    cos, sin = torch.cos(ang), torch.sin(ang)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention on (B, T, d)."""

    slopes: torch.Tensor

    def __init__(self, d: int, heads: int, pos: str) -> None:
        super().__init__()
        if d % heads or (pos == "rotary" and (d // heads) % 2):
            raise ValueError(f"width {d} must split into {heads} heads (of even size for rotary)")
        self.heads = heads
        self.pos = pos
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        if pos == "alibi":  # geometric head slopes, Press et al. (2022)
            slopes = torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)])
            self.register_buffer("slopes", slopes, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.pos == "rotary":
            q, k = rotate(q), rotate(k)
        if self.pos == "alibi":
            idx = torch.arange(T, device=x.device)
            dist = (idx.unsqueeze(1) - idx.unsqueeze(0)).to(x.dtype)  # i - j
            bias = -self.slopes.to(x.dtype).view(-1, 1, 1) * dist
            bias = bias.masked_fill(dist < 0, float("-inf"))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, d))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))`` then ``+ ffn(ln(.))``."""

    def __init__(self, d: int, heads: int, pos: str, activation: str) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, pos)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, 2 * d)
        self.act = make_activation(activation)
        self.ff2 = nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(self.act(self.ff1(self.ln2(x))))


class AttentionCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) causal attention block with positional encoding ``pos``."""

    def __init__(self, d_in: int, d_out: int, *, heads: int = 2, pos: str = "rotary",
                 activation: str = "gelu") -> None:
        super().__init__()
        if pos not in POSITIONAL:
            raise ValueError(f"pos is {pos!r}, but must be one of {', '.join(POSITIONAL)}")
        self.pos = pos
        self.d = d_out
        self.inp = nn.Linear(d_in, d_out) if d_in != d_out else None
        if pos == "learned":
            self.pos_embed = nn.Parameter(torch.randn(MAX_LEARNED_POSITIONS, d_out) * 0.02)
        self.block = AttentionBlock(d_out, heads, pos, activation)

    def add_position(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        if self.pos == "sinusoidal":
            return x + sinusoidal(T, self.d, x)
        if self.pos == "learned":
            if T > MAX_LEARNED_POSITIONS:
                raise ValueError(f"sequence length {T} exceeds the learned positional table "
                                 f"({MAX_LEARNED_POSITIONS}); use another pos")
            return x + self.pos_embed[:T]
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inp is not None:
            x = self.inp(x)
        return self.block(self.add_position(x))
