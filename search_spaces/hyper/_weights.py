"""Weight-generating hypernetworks: ``static`` and ``rnn_chunks`` (plus the ``mip`` flag).

Both replace a cell's *weight tensors* (every parameter named ``weight``/``weight_*`` with two or
more dimensions: linear, recurrent and convolution kernels; not norms, biases or SSM
parameters) with generated ones.  :class:`ChunkLayout` cuts those tensors into flat chunks of a
fixed size; a hypernetwork emits one chunk per row of a (n_chunks, chunk) matrix, and
:meth:`ChunkLayout.call` runs the cell with the generated weights via
:func:`torch.func.functional_call` (so fused kernels such as ``nn.LSTM`` still work).

* ``static`` (Ha et al., "HyperNetworks", 2017, section 3.1): a learned embedding per chunk
  and a shared linear generator, ``W_j = G z_j``.
* ``rnn_chunks``: one recurrent hypernetwork (a GRU) for the whole model walks over the chunks
  of every ``rnn_chunks`` layer in order and emits them one by one; layer k starts from the
  GRU state left after layer k-1, so consecutive layers' weights depend on each other.
* ``mip`` (Ortiz et al., ICLR 2024): inputs (embeddings) are encoded with constant norm
  (:func:`mip_encode`) and the output is added to a learned base weight that stays a
  parameter.  Without MIP the original weights are dropped (kept only as non-persistent
  buffers for their shapes) and the generated ones are scaled by the original init std.

Who calls what: ``search_spaces._model.Block`` owns a layout and, for ``static``, a
:class:`StaticHypernet`; the model owns one :class:`ChunkRNNHypernet` and calls it once per
forward pass, before the layers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from search_spaces.hyper._mip import mip_encode

__all__ = ["ChunkLayout", "ChunkRNNHypernet", "StaticHypernet", "target_names"]

MAX_CHUNKS = 64  # chunks per layer; the chunk size grows with the layer instead
MIN_CHUNK = 64


def target_names(cell: nn.Module) -> list[str]:
    """Names of the weight tensors of ``cell`` that a hypernetwork generates."""
    out = []
    for name, p in cell.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.dim() >= 2 and (leaf == "weight" or leaf.startswith("weight_")):
            out.append(name)
    return out


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    *path, leaf = name.split(".")
    for part in path:
        module = getattr(module, part)
    return module, leaf


class ChunkLayout(nn.Module):
    """How one cell's target weights are cut into chunks, and how generated chunks are used.

    ``mip`` keeps the original weights as learned base weights (``W = W0 + s * chunk``);
    otherwise they are turned into non-persistent buffers and ``W = s * chunk``, where ``s``
    is the tensor's std at initialisation (so generated weights start at the usual scale).
    """

    scales: torch.Tensor

    def __init__(self, cell: nn.Module, mip: bool) -> None:
        super().__init__()
        self.mip = mip
        self.names = target_names(cell)
        if not self.names:
            raise ValueError(f"{type(cell).__name__} has no weight matrices to generate")
        params = dict(cell.named_parameters())
        self.shapes = [tuple(params[n].shape) for n in self.names]
        sizes = [math.prod(s) for s in self.shapes]
        total = sum(sizes)
        self.chunk = max(MIN_CHUNK, math.ceil(total / MAX_CHUNKS))
        self.counts = [math.ceil(n / self.chunk) for n in sizes]
        self.n_chunks = sum(self.counts)
        stds = []
        for n in self.names:
            p = params[n]
            stds.append(float(p.detach().float().std()) if p.device.type != "meta" else 0.1)
        self.register_buffer("scales", torch.tensor(stds), persistent=False)
        if not mip:
            for n in self.names:
                owner, leaf = _owner(cell, n)
                value = getattr(owner, leaf).detach()
                delattr(owner, leaf)
                owner.register_buffer(leaf, value, persistent=False)

    def weights(self, cell: nn.Module, chunks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated weights (name -> tensor) from a (n_chunks, chunk) matrix."""
        out: dict[str, torch.Tensor] = {}
        start = 0
        current = dict(cell.named_parameters())
        for i, (name, shape, count) in enumerate(zip(self.names, self.shapes, self.counts)):
            flat = chunks[start:start + count].reshape(-1)[: math.prod(shape)]
            start += count
            w = flat.reshape(shape) * self.scales[i].to(flat.dtype)
            if self.mip:
                w = current[name] + w
            out[name] = w
        return out

    def call(self, cell: nn.Module, chunks: torch.Tensor, *args: Any) -> Any:
        """Run ``cell(*args)`` with its target weights replaced by the generated ones.

        On CUDA, cuDNN RNNs warn that generated weights are not one contiguous buffer; that is
        expected here (they are new tensors at every call), so the warning is silenced.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="RNN module weights are not part")
            return functional_call(cell, self.weights(cell, chunks), args, strict=False)


class StaticHypernet(nn.Module):
    """``static``: a learned embedding per chunk and a shared linear generator."""

    def __init__(self, layout: ChunkLayout, hyper_size: int, mip: bool) -> None:
        super().__init__()
        self.mip = mip
        self.embed = nn.Parameter(torch.randn(layout.n_chunks, hyper_size))
        in_dim = 2 * hyper_size if mip else hyper_size
        self.gen = nn.Linear(in_dim, layout.chunk)
        with torch.no_grad():
            std = 0.01 if mip else 1.0
            self.gen.weight.normal_(0.0, std / math.sqrt(in_dim))
            self.gen.bias.zero_()
        self.last_inputs: torch.Tensor | None = None

    def forward(self) -> torch.Tensor:
        z = mip_encode(self.embed) if self.mip else self.embed
        self.last_inputs = z.detach()
        return self.gen(z)


class ChunkRNNHypernet(nn.Module):
    """``rnn_chunks``: one GRU emits the chunks of every participating layer, in layer order.

    ``layouts`` maps layer index -> (layout, mip).  :meth:`forward` returns layer index ->
    (n_chunks, chunk) and records :attr:`states` (layer index -> GRU state after that layer).
    :meth:`layer_chunks` runs one layer from a given state (tests perturb that state).
    """

    def __init__(self, layouts: Mapping[int, tuple[ChunkLayout, bool]], hyper_size: int) -> None:
        super().__init__()
        self.order = sorted(layouts)
        self.mips = {k: layouts[k][1] for k in self.order}
        self.hyper_size = hyper_size
        self.rnn = nn.GRU(2 * hyper_size, hyper_size, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(1, 1, hyper_size))
        self.embeds = nn.ParameterDict()
        self.heads = nn.ModuleDict()
        for k in self.order:
            layout, mip = layouts[k]
            dim = hyper_size if mip else 2 * hyper_size
            self.embeds[str(k)] = nn.Parameter(torch.randn(layout.n_chunks, dim))
            head = nn.Linear(hyper_size, layout.chunk)
            with torch.no_grad():
                std = 0.01 if mip else 2.0
                head.weight.normal_(0.0, std / math.sqrt(hyper_size))
                head.bias.zero_()
            self.heads[str(k)] = head
        self.states: dict[int, torch.Tensor] = {}

    def layer_chunks(self, k: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Chunks of layer ``k`` starting from GRU state ``h`` (1, 1, hyper); and the new state."""
        e = self.embeds[str(k)]
        inp = mip_encode(e) if self.mips[k] else e
        out, h_new = self.rnn(inp.unsqueeze(0), h)
        return self.heads[str(k)](out[0]), h_new

    def forward(self) -> dict[int, torch.Tensor]:
        h: torch.Tensor = self.h0
        chunks: dict[int, torch.Tensor] = {}
        self.states = {}
        for k in self.order:
            chunks[k], h = self.layer_chunks(k, h)
            self.states[k] = h.detach()
        return chunks
