"""Activation functions that a cell with a free non-linearity may use.

Called by the cell constructors (``search_spaces.cells``) through :func:`make_activation`; the
space samples the name per layer.  ``selu`` comes with LeCun-normal initialisation
(:func:`lecun_normal_`), which the cell factory applies to the cell's linear/conv weights so that
the network is self-normalising (Klambauer et al., 2017, "Self-Normalizing Neural Networks").
"""

from __future__ import annotations

import math

import torch
from torch import nn

from search_spaces._names import ACTIVATIONS

__all__ = ["ACTIVATIONS", "CRReLU", "lecun_normal_", "make_activation"]



class CRReLU(nn.Module):
    """Correction-regularised ReLU: ``f(x) = relu(x) + eps * x * exp(-x**2 / 2)``.

    The form we implement is the one derived in Sun et al., "A Method on Searching Better
    Activation Functions" (arXiv:2405.12954, 2024): ReLU plus a learnable correction term
    ``eps * x * exp(-x^2/2)`` (a Gaussian-windowed linear term that is only active near 0), with
    ``eps`` a learnable scalar initialised to 0.01.  If the paper's exact parametrisation differs
    in details, this docstring is the definition nas uses.
    """

    def __init__(self, eps: float = 0.01) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.tensor(float(eps)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) + self.eps * x * torch.exp(-0.5 * x * x)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "selu":
        return nn.SELU()
    if name == "crrelu":
        return CRReLU()
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


def lecun_normal_(module: nn.Module, skip: tuple[str, ...] = ()) -> None:
    """LeCun-normal init, N(0, 1/fan_in), of every Linear/Conv1d weight in ``module``.

    Biases keep their (cell-specific) init; submodules whose name starts with one of ``skip``
    are left alone.
    """
    for name, m in module.named_modules():
        if any(name.startswith(s) for s in skip):
            continue
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.normal_(0.0, 1.0 / math.sqrt(fan_in))
