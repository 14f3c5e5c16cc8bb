"""Built-in search spaces and the sequence-cell / hypernetwork library of nas.

The engine finds :class:`SeqCellsSpace` through the entry point ``seq_cells`` (group
``nas.search_spaces``); nothing in ``nas`` imports this package directly.

Config contract (what ``SeqCellsSpace.sample`` returns and ``build`` / the training loop read)
---------------------------------------------------------------------------------------------
A config is a JSON-able dict.  Top-level keys:

* architecture: ``hidden`` (int width), ``norm`` (``"pre" | "post" | "none"``), ``residual``
  (bool), ``loops`` (int >= 1: the whole layer stack is applied ``loops`` times with tied
  weights), ``layers`` (list, one dict per layer, see below), and ``chunk_hyper_size`` (int,
  present only when some layer uses the ``rnn_chunks`` hypernetwork), ``pattern`` and
  ``pattern_k`` (present only for a hybrid stack: ``"attn_every_k"`` or ``"tcn_then_attn"``,
  see :data:`search_spaces._names.PATTERNS`; the layers' cells then follow the pattern).
* training options, read by the training loop (``nas.training``), always present:

  ==================  =======  ============================================================
  key                 type     meaning
  ==================  =======  ============================================================
  ``optimizer``       str      ``"adam" | "adamw" | "sgd" | "rmsprop"`` (sgd: momentum 0.9)
  ``lr``              float    learning rate (sampled on a log scale)
  ``weight_decay``    float    weight decay (>= 0; decoupled for adamw, L2 otherwise)
  ``dropout``         float    in [0, 1); already applied *inside* the built model
  ``grad_clip``       float    max global grad norm; ``0.0`` means no clipping
  ``curriculum``      str      ``"none" | "easy_to_hard" | "cyclical"`` (schedules
                               in ``nas.training``)
  ``prune_sparsity``  float    in [0, 1): target fraction of zeroed weights at the end of
                               training (``nas.training``); ``0.0`` = off
  ==================  =======  ============================================================

Each entry of ``layers`` has ``cell`` (one of :data:`CELLS`), ``hypernet`` (one of
:data:`HYPERNETS`), ``mip`` (bool; only true when ``hypernet != "none"``), ``activation``
(one of :data:`ACTIVATIONS`, present only for cells with a free non-linearity), ``hyper_size``
(present only for ``static``/``dynamic``) and cell-specific options (e.g. ``heads``).

The model returned by ``build`` maps (B, T, input_size) float inputs to logits (B, output_size)
for ``output_mode == "last"`` or (B, T, output_size) for ``"sequence"``.  After each forward it
exposes ``model.aux_loss`` (a scalar tensor, e.g. the ACT ponder cost of ``universal`` cells;
zero otherwise) which the training loop adds to the task loss.
"""

from __future__ import annotations

from typing import Any

from search_spaces._fixed import FixedSpace
from search_spaces._names import (
    ACTIVATIONS,
    CELL_SPECS,
    CELLS,
    CURRICULA,
    HYPERNETS,
    NORMS,
    OPTIMIZERS,
    CellSpec,
)
from search_spaces._space import SeqCellsSpace, validate_config

__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "CELL_SPECS",
    "CURRICULA",
    "HYPERNETS",
    "NORMS",
    "OPTIMIZERS",
    "Block",
    "CRReLU",
    "CellSpec",
    "FixedSpace",
    "SeqCellsSpace",
    "SeqModel",
    "make_activation",
    "make_cell",
    "validate_config",
]

_LAZY = {  # torch-heavy names, imported on first use so that the driver/CLI stay fast
    "SeqModel": "search_spaces._model",
    "Block": "search_spaces._model",
    "CRReLU": "search_spaces._activations",
    "make_activation": "search_spaces._activations",
    "make_cell": "search_spaces.cells",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")
