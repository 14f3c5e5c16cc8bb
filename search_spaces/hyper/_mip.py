"""Magnitude-invariant input encoding for hypernetworks (MIP).

Ortiz, Guttag and Dalca, "Magnitude Invariant Parametrizations Improve Hypernetwork Learning"
(ICLR 2024) encode every hypernetwork input ``x`` in [0, 1] as the pair
``(cos(pi/2 * x), sin(pi/2 * x))`` so that the encoded input has the same norm whatever ``x``,
and let the hypernetwork's output be *added* to a learned base weight.  Our hypernetwork inputs
are unbounded (embeddings, hidden states), so we first squash each component to (0, 1) with a
sigmoid.  The encoded vector has norm ``sqrt(dim)`` exactly, for every input.

Called by the static, dynamic and chunked hypernetworks when their layer has ``mip = true``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["mip_encode"]


def mip_encode(u: torch.Tensor) -> torch.Tensor:
    """Encode ``u`` (..., d) as (..., 2d) with constant L2 norm ``sqrt(d)``."""
    a = torch.sigmoid(u) * (math.pi / 2)
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)
