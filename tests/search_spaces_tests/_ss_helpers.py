"""Shared helpers of the search_spaces tests: tiny synthetic data and a short training loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nas.interfaces import TaskSpec
from search_spaces import CELL_SPECS, SeqCellsSpace

PARITY_SPEC = TaskSpec("parity3", input_size=1, output_size=2, seq_len=3)


def parity_data(n: int, bits: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, bits, 1) inputs in {-1, +1} and (n,) parity labels."""
    g = torch.Generator().manual_seed(seed)
    b = torch.randint(0, 2, (n, bits), generator=g)
    return (2.0 * b - 1.0).unsqueeze(-1), b.sum(1) % 2


def layer(cell: str, hypernet: str = "none", mip: bool = False,
          activation: str | None = None, **opts: Any) -> dict[str, Any]:
    """A layer config with the first choice of each of the cell's options."""
    spec = CELL_SPECS[cell]
    out: dict[str, Any] = {"cell": cell, "hypernet": hypernet, "mip": mip}
    if hypernet in ("static", "dynamic"):
        out["hyper_size"] = 8
    if spec.free_activation:
        out["activation"] = activation or "tanh"
    for k, choices in spec.options.items():
        out[k] = choices[min(1, len(choices) - 1)]
    out.update(opts)
    return out


def config(layers: list[dict[str, Any]], hidden: int = 32, **top: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"hidden": hidden, "norm": "pre", "residual": True, "loops": 1,
                           "layers": layers, "optimizer": "adam", "lr": 1e-2,
                           "weight_decay": 0.0, "dropout": 0.0, "grad_clip": 1.0,
                           "curriculum": "none", "prune_sparsity": 0.0}
    if any(ly["hypernet"] == "rnn_chunks" for ly in layers):
        cfg["chunk_hyper_size"] = 8
    cfg.update(top)
    return cfg


def train_parity(cfg: Mapping[str, Any], steps: int, seed: int = 0,
                 target: float | None = None) -> tuple[float, list[float]]:
    """Train on 3-bit parity with Adam; returns (validation accuracy, losses).

    Stops early once validation accuracy reaches ``target`` (checked every 20 steps).
    """
    torch.manual_seed(seed)
    model = SeqCellsSpace().build(cfg, PARITY_SPEC)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    xv, yv = parity_data(256, seed=seed + 1)
    losses: list[float] = []
    acc = 0.0
    for step in range(steps):
        x, y = parity_data(64, seed=seed * 1000 + step + 7)
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y) + model.aux_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if target is not None and (step + 1) % 20 == 0:
            acc = accuracy(model, xv, yv)
            if acc >= target:
                return acc, losses
    return accuracy(model, xv, yv), losses


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())
