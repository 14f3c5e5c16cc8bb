"""Per built-in task: data generation time, seconds per epoch and the objective reached by a
small reference model (one GRU layer from ``nas.testing.ToySpace``) with default options.

    python benchmarks/tasks_bench.py [--epochs 10] [--hidden 32] [--threads 1] [--tasks a,b]

Prints a markdown table (paste it into reports); numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from nas.tasks import BUILTIN_TASKS
from nas.testing import ToySpace
from nas.training import TrainingOptions, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tasks", default=",".join(BUILTIN_TASKS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = {"layers": [{"cell": "gru", "hypernet": "none", "activation": None}],
              "hidden": args.hidden, "lr": args.lr}
    # warm-up: the first optimiser and the first forward pay one-off import/allocation costs
    warm = BUILTIN_TASKS["parity"](bits=2, n_train=64, n_val=8, n_test=8)
    train(ToySpace(), config, warm, TrainingOptions(max_epochs=1), lambda e, m: None)
    print(f"GRU hidden {args.hidden}, adam lr {args.lr}, batch 64, {args.epochs} epochs, "
          f"{args.threads} thread(s)\n")
    print("| task | T | n_train | data s | s/epoch | objective (epoch 1 -> last) |")
    print("|---|---|---|---|---|---|")
    for name in args.tasks.split(","):
        task = BUILTIN_TASKS[name]()
        spec = task.spec()
        t0 = time.perf_counter()
        data = task.data(0)
        t_data = time.perf_counter() - t0
        values: list[float] = []
        t0 = time.perf_counter()
        def record(epoch: int, metrics: dict[str, float], values: list[float] = values,
                   key: str = spec.objective) -> None:
            values.append(metrics[key])

        train(ToySpace(), config, task, TrainingOptions(max_epochs=args.epochs, seed=0),
              record, data=data)
        per_epoch = (time.perf_counter() - t0) / args.epochs
        print(f"| {name} | {spec.seq_len} | {len(data[0])} | {t_data:.3f} | {per_epoch:.3f} | "
              f"{spec.objective} {values[0]:.3f} -> {values[-1]:.3f} |")


if __name__ == "__main__":
    main()
