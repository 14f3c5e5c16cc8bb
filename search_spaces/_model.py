"""The model ``SeqCellsSpace.build`` returns: input projection, a stack of cell layers
(residual + norm, mixed cells, optional weight-tied looping, per-layer hypernetworks), head.

Reads top to bottom: :class:`Block` (one layer), :class:`SeqModel` (the stack).  Built on a
Ray worker by ``SeqCellsSpace.build``; the training loop calls ``model(x)`` and then adds
``model.aux_loss`` (ACT ponder cost of ``universal`` layers, zero otherwise) to its loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from search_spaces.cells import make_cell
from search_spaces.hyper import ChunkLayout, ChunkRNNHypernet, StaticHypernet

__all__ = ["Block", "SeqModel"]


class Block(nn.Module):
    """One layer: ``x + drop(cell(norm(x)))`` (pre), ``norm(x + drop(cell(x)))`` (post) or
    without norm; without ``residual`` the ``x +`` is dropped.

    ``layout`` is set when the layer's weights come from a ``static`` or ``rnn_chunks``
    hypernetwork; ``static`` is the layer's own :class:`StaticHypernet`.
    """

    def __init__(self, layer: Mapping[str, Any], hidden: int, norm: str, residual: bool,
                 dropout: float) -> None:
        super().__init__()
        self.cell = make_cell(layer, hidden, hidden)
        self.norm_mode = norm
        self.norm = nn.LayerNorm(hidden) if norm != "none" else None
        self.residual = residual
        self.drop = nn.Dropout(dropout)
        self.hypernet = str(layer.get("hypernet", "none"))
        mip = bool(layer.get("mip", False))
        self.layout: ChunkLayout | None = None
        self.static: StaticHypernet | None = None
        if self.hypernet in ("static", "rnn_chunks"):
            self.layout = ChunkLayout(self.cell, mip)
        if self.hypernet == "static" and self.layout is not None:
            self.static = StaticHypernet(self.layout, int(layer["hyper_size"]), mip)

    def run_cell(self, h: torch.Tensor, chunks: torch.Tensor | None) -> torch.Tensor:
        if self.static is not None:
            chunks = self.static()
        if chunks is not None and self.layout is not None:
            out: torch.Tensor = self.layout.call(self.cell, chunks, h)
            return out
        return self.cell(h)

    def forward(self, x: torch.Tensor, chunks: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x) if self.norm is not None and self.norm_mode == "pre" else x
        y = self.drop(self.run_cell(h, chunks))
        out = x + y if self.residual else y
        if self.norm is not None and self.norm_mode == "post":
            out = self.norm(out)
        return out


class SeqModel(nn.Module):
    """(B, T, input_size) -> logits (B, output_size) (``output_mode="last"``) or
    (B, T, output_size) (``"sequence"``)."""

    def __init__(self, layers: Sequence[Mapping[str, Any]], *, input_size: int, output_size: int,
                 hidden: int, norm: str = "pre", residual: bool = True, loops: int = 1,
                 dropout: float = 0.0, output_mode: str = "last",
                 chunk_hyper_size: int = 0) -> None:
        super().__init__()
        self.output_mode = output_mode
        self.loops = loops
        self.inp = nn.Linear(input_size, hidden)
        self.blocks = nn.ModuleList(Block(layer, hidden, norm, residual, dropout)
                                    for layer in layers)
        self.final_norm = nn.LayerNorm(hidden) if norm == "pre" else None
        self.head = nn.Linear(hidden, output_size)
        chunked = {i: (b.layout, bool(layers[i].get("mip", False)))
                   for i, b in enumerate(self.block_list())
                   if b.hypernet == "rnn_chunks" and b.layout is not None}
        self.chunk_hypernet: ChunkRNNHypernet | None = (
            ChunkRNNHypernet(chunked, chunk_hyper_size) if chunked else None)
        self.aux_loss: torch.Tensor = torch.zeros(())

    def prunable_parameters(self) -> list[nn.Parameter]:
        """The weight matrices/kernels magnitude pruning should act on (``prune_sparsity``).

        Every >= 2-D parameter whose name ends in ``weight``/``weight_*`` (linear, recurrent,
        conv and generator weights), but not SSM state parameters (``a_re``, ``a_im``,
        ``c_re``, ``c_im``), hypernetwork chunk embeddings or positional tables, whose zeroing
        would change the model's dynamics rather than sparsify it.  The training loop uses this
        when a model has it.
        """
        out = []
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if p.dim() >= 2 and (leaf == "weight" or leaf.startswith("weight_")):
                out.append(p)
        return out

    def block_list(self) -> list[Block]:
        """The layers, typed."""
        return [b for b in self.blocks if isinstance(b, Block)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = self.chunk_hypernet() if self.chunk_hypernet is not None else {}
        h = self.inp(x)
        aux = h.new_zeros(())
        for _ in range(self.loops):
            for i, block in enumerate(self.block_list()):
                h = block(h, chunks.get(i))
                extra = getattr(block.cell, "aux_loss", None)
                if isinstance(extra, torch.Tensor):
                    aux = aux + extra
        self.aux_loss = aux
        if self.final_norm is not None:
            h = self.final_norm(h)
        if self.output_mode == "last":
            h = h[:, -1]
        out: torch.Tensor = self.head(h)
        return out
