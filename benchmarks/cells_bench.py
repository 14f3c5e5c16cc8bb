"""Milliseconds per training step of each ``seq_cells`` cell.

One layer of the cell inside the usual model (input projection, pre-norm residual block, head),
hidden 128, length 64, batch 32 by default; a step is forward, cross-entropy loss (+ aux loss),
backward and an Adam step.  Prints a table (or ``--json``).

    python benchmarks/cells_bench.py                     # every cell, no hypernetwork
    python benchmarks/cells_bench.py --hypernet static --cells lstm ssm
    python benchmarks/cells_bench.py --threads 2 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from nas.interfaces import TaskSpec
from search_spaces import CELL_SPECS, CELLS, SeqCellsSpace

# options for the timing run: the middle choice of each cell option
DEFAULTS: dict[str, dict[str, Any]] = {
    "attention": {"heads": 4, "pos": "rotary"},
    "universal": {"heads": 4, "max_steps": 4, "ponder": 0.01, "pos": "rotary"},
    "rhn": {"recurrence_depth": 2}, "slstm": {"forget": "sigmoid"},
    "ssm": {"state": 32, "disc": "zoh", "diag": "complex"}, "tcn": {"kernel": 3, "growth": 2, "levels": 2},
    "retention": {"heads": 4},
    "aaren": {"heads": 4}, "mamba": {"state": 16, "expand": 2, "conv": 4},
    "tcnca": {"chunk": 8, "kernel": 3, "levels": 2, "heads": 4},
}


def layer_config(cell: str, hypernet: str, mip: bool) -> dict[str, Any]:
    spec = CELL_SPECS[cell]
    ly: dict[str, Any] = {"cell": cell, "hypernet": hypernet, "mip": mip}
    if spec.free_activation:
        ly["activation"] = "gelu"
    if hypernet in ("static", "dynamic"):
        ly["hyper_size"] = 16
    ly.update(DEFAULTS.get(cell, {}))
    return ly


def bench(cell: str, *, hypernet: str, mip: bool, hidden: int, length: int, batch: int,
          steps: int, warmup: int, device: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"hidden": hidden, "norm": "pre", "residual": True, "loops": 1,
                           "layers": [layer_config(cell, hypernet, mip)], "dropout": 0.0}
    if hypernet == "rnn_chunks":
        cfg["chunk_hyper_size"] = 16
    spec = TaskSpec("bench", input_size=8, output_size=8, seq_len=length)
    torch.manual_seed(0)
    model = SeqCellsSpace().build(cfg, spec).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, length, 8, device=device)
    y = torch.randint(0, 8, (batch,), device=device)
    times = []
    for i in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y) + model.aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return {"cell": cell, "hypernet": hypernet, "mip": mip,
            "n_params": sum(p.numel() for p in model.parameters()),
            "ms_per_step": statistics.median(times), "ms_min": min(times)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="*", default=list(CELLS))
    ap.add_argument("--hypernet", default="none",
                    choices=["none", "static", "dynamic", "rnn_chunks"])
    ap.add_argument("--mip", action="store_true")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for cell in args.cells:
        if args.hypernet == "dynamic" and not CELL_SPECS[cell].recurrent:
            continue
        rows.append(bench(cell, hypernet=args.hypernet, mip=args.mip, hidden=args.hidden,
                          length=args.length, batch=args.batch, steps=args.steps,
                          warmup=args.warmup, device=args.device))
        if not args.json:
            r = rows[-1]
            print(f"{r['cell']:<10} {r['hypernet']:<10} params {r['n_params']:>8}  "
                  f"{r['ms_per_step']:8.1f} ms/step (min {r['ms_min']:.1f})", flush=True)
    if args.json:
        json.dump({"hidden": args.hidden, "length": args.length, "batch": args.batch,
                   "threads": args.threads, "device": args.device, "rows": rows}, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
