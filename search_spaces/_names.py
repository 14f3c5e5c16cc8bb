"""Names and per-cell facts of the ``seq_cells`` space, without importing torch.

The driver (sampling, features' key set, ``nas spaces``) needs these; only building a model
needs torch.  The cell classes themselves live in :mod:`search_spaces.cells`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# the training keys the space samples: their names live with the training loop that reads them
from nas.training import CURRICULA, OPTIMIZERS

__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "CELL_SPECS",
    "CURRICULA",
    "HYPERNETS",
    "NORMS",
    "OPTIMIZERS",
    "PATTERNS",
    "PATTERN_KS",
    "POSITIONAL",
    "CellSpec",
]

ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "gelu", "selu", "crrelu")
HYPERNETS: tuple[str, ...] = ("none", "static", "dynamic", "rnn_chunks")
POSITIONAL: tuple[str, ...] = ("none", "sinusoidal", "learned", "rotary", "alibi")
NORMS: tuple[str, ...] = ("pre", "post", "none")


@dataclass(frozen=True)
class CellSpec:
    """What the space needs to know about a cell family."""

    recurrent: bool                      # a ``dynamic`` hypernetwork applies
    free_activation: bool                # the layer config carries ``activation``
    options: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # name -> choices


CELL_SPECS: dict[str, CellSpec] = {
    "lstm": CellSpec(True, False),
    "gru": CellSpec(True, False),
    "rnn_tanh": CellSpec(True, False),
    "rnn_relu": CellSpec(True, False),
    "rhn": CellSpec(True, True, {"recurrence_depth": (1, 2, 3)}),
    "slstm": CellSpec(True, True, {"forget": ("sigmoid", "exp")}),
    "attention": CellSpec(False, True, {"heads": (1, 2, 4), "pos": POSITIONAL}),
    "universal": CellSpec(False, True, {"heads": (1, 2, 4), "max_steps": (2, 4, 6),
                                        "ponder": (0.001, 0.01),
                                        "pos": ("none", "sinusoidal", "rotary", "alibi")}),
    "ssm": CellSpec(False, True, {"state": (16, 32, 64), "disc": ("zoh", "bilinear"),
                                  "diag": ("complex", "real")}),
    "tcn": CellSpec(False, True, {"kernel": (2, 3, 5), "growth": (1, 2, 4), "levels": (2, 3)}),
    "retention": CellSpec(False, True, {"heads": (1, 2, 4)}),
    "aaren": CellSpec(False, True, {"heads": (1, 2, 4)}),
    "mamba": CellSpec(False, False, {"state": (8, 16, 32), "expand": (1, 2), "conv": (2, 4)}),
    "tcnca": CellSpec(False, True, {"chunk": (4, 8, 16), "kernel": (2, 3), "levels": (1, 2),
                                    "heads": (1, 2, 4)}),
}
CELLS: tuple[str, ...] = tuple(CELL_SPECS)

# Hybrid stacks: named layer patterns the space samples besides free per-layer cells.
# ``attn_every_k`` (MaTVLM / Jamba-style): layer i (0-based) is ``attention`` when
# (i + 1) % k == 0 and ``mamba`` otherwise, with k = min(pattern_k, depth) so that the last
# layer of a short stack is attention.  ``tcn_then_attn``: the first ceil(depth / 2) layers
# ``tcn``, the rest ``attention``.  Hybrids have at least 2 layers.
PATTERNS: tuple[str, ...] = ("free", "attn_every_k", "tcn_then_attn")
PATTERN_KS: tuple[int, ...] = (2, 3, 4)
PATTERN_CELLS: dict[str, tuple[str, ...]] = {"attn_every_k": ("attention", "mamba"),
                                             "tcn_then_attn": ("tcn", "attention")}


def pattern_cells(pattern: str, depth: int, k: int = 2) -> list[str]:
    """The cell of each layer of a hybrid ``pattern`` with ``depth`` layers."""
    if pattern == "attn_every_k":
        k = min(k, depth)
        return ["attention" if (i + 1) % k == 0 else "mamba" for i in range(depth)]
    if pattern == "tcn_then_attn":
        n_tcn = -(-depth // 2)
        return ["tcn"] * n_tcn + ["attention"] * (depth - n_tcn)
    raise ValueError(f"pattern is {pattern!r}, but must be one of {', '.join(PATTERNS[1:])}")
