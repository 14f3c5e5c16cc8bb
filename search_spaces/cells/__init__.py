"""The sequence-cell library: every cell maps (batch, time, d_in) -> (batch, time, d_out),
is causal, and takes any length (``attention`` with ``pos = "learned"``: up to 4096 steps).

:data:`CELL_SPECS` describes each cell for the search space: whether a ``dynamic``
hypernetwork applies (the recurrent cells), whether it has a free activation, and the choices
of its own options.  :func:`make_cell` builds one from a layer config; it is called by
``search_spaces._model`` when a model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from search_spaces._activations import lecun_normal_
from search_spaces._names import CELL_SPECS, CELLS, CellSpec
from search_spaces.cells._aaren import AarenCell
from search_spaces.cells._attention import AttentionCell
from search_spaces.cells._mamba import MambaCell
from search_spaces.cells._retention import RetentionCell
from search_spaces.cells._rhn import RHNCell
from search_spaces.cells._rnn import TorchRNNCell
from search_spaces.cells._slstm import SLSTMCell
from search_spaces.cells._ssm import SSMCell
from search_spaces.cells._tcn import TCNCell
from search_spaces.cells._tcnca import TCNCACell
from search_spaces.cells._universal import UniversalCell

__all__ = [
    "CELLS",
    "CELL_SPECS",
    "AarenCell",
    "AttentionCell",
    "CellSpec",
    "MambaCell",
    "RHNCell",
    "RetentionCell",
    "SLSTMCell",
    "SSMCell",
    "TCNCACell",
    "TCNCell",
    "TorchRNNCell",
    "UniversalCell",
    "make_cell",
]


def make_cell(layer: Mapping[str, Any], d_in: int, d_out: int) -> nn.Module:
    """Build the cell of one layer config (keys: ``cell``, ``hypernet``, ``mip``,
    ``activation``, ``hyper_size`` and the cell's options).  Static/chunked hypernetworks are
    attached by the model, not here; ``dynamic`` is built into the recurrent cells."""
    name = layer["cell"]
    spec = CELL_SPECS[name]
    kwargs: dict[str, Any] = {k: layer[k] for k in spec.options if k in layer}
    if spec.free_activation and "activation" in layer:
        kwargs["activation"] = layer["activation"]
    if layer.get("hypernet") == "dynamic":
        kwargs["dynamic_hyper"] = int(layer["hyper_size"])
        kwargs["mip"] = bool(layer.get("mip", False))
    cell: nn.Module
    if name in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        cell = TorchRNNCell(name, d_in, d_out, **kwargs)
    elif name == "rhn":
        cell = RHNCell(d_in, d_out, **kwargs)
    elif name == "slstm":
        cell = SLSTMCell(d_in, d_out, **kwargs)
    elif name == "attention":
        cell = AttentionCell(d_in, d_out, **kwargs)
    elif name == "universal":
        cell = UniversalCell(d_in, d_out, **kwargs)
    elif name == "ssm":
        cell = SSMCell(d_in, d_out, **kwargs)
    elif name == "tcn":
        cell = TCNCell(d_in, d_out, **kwargs)
    elif name == "aaren":
        cell = AarenCell(d_in, d_out, **kwargs)
    elif name == "mamba":
        cell = MambaCell(d_in, d_out, **kwargs)
    elif name == "tcnca":
        cell = TCNCACell(d_in, d_out, **kwargs)
    else:
        cell = RetentionCell(d_in, d_out, **kwargs)
    if kwargs.get("activation") == "selu":
        lecun_normal_(cell, skip=("dynamic",))  # self-normalising init; hypernet keeps its own
    return cell
