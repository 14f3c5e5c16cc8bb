"""Shared plumbing of the built-in tasks: option validation, seeded splits, datasets.

A built-in task is constructed with its options (``cls(**task_options)``, validated at once,
:class:`~nas.errors.ConfigError` naming key, value and rule), declares its
:class:`~nas.interfaces.TaskSpec` with :meth:`spec`, and generates its three splits from a seed
with :meth:`data`.  Every split has its own random stream, ``numpy.random.default_rng([seed,
split])``, so the validation and test sets do not change when ``n_train`` does.

The datasets are :class:`torch.utils.data.TensorDataset` objects ``(x, y)`` with two optional
attributes that :mod:`nas.training` understands: ``difficulty`` (one number per example, larger
is harder; used by the ``easy_to_hard`` curriculum) and ``reference_mse`` (the MSE of a
reference forecast, for skill objectives).  torch is imported only when data is generated, so
listing tasks stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nas._checks import Checker

if TYPE_CHECKING:
    from torch.utils.data import TensorDataset

    from nas.interfaces import TaskSpec

__all__ = ["SPLITS", "BaseTask", "check_float", "check_int", "make_dataset"]

SPLITS = ("train", "val", "test")


def check_int(task: str, key: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in [lo, hi], else ConfigError naming the task, key, value and rule."""
    return Checker(f"task {task}").int_(value, key, lo=lo, hi=hi)


def check_float(task: str, key: str, value: Any, lo: float, hi: float | None = None, *,
                lo_open: bool = False) -> float:
    """``value`` as a finite float in [lo, hi] (or (lo, hi] with ``lo_open``), else ConfigError."""
    return Checker(f"task {task}").num(value, key, lo=lo, hi=hi, lo_open=lo_open)


def make_dataset(x: np.ndarray, y: np.ndarray, *, difficulty: np.ndarray | None = None,
                 reference_mse: float | None = None) -> TensorDataset:
    """A TensorDataset of float32 ``x`` and ``y`` (int64 when integer), with the optional
    ``difficulty`` and ``reference_mse`` attributes set."""
    import torch
    from torch.utils.data import TensorDataset

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if np.issubdtype(y.dtype, np.integer):
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    else:
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
    ds = TensorDataset(xt, yt)
    ds.difficulty = (None if difficulty is None  # type: ignore[attr-defined]
                     else torch.from_numpy(np.asarray(difficulty, dtype=np.float32)))
    ds.reference_mse = reference_mse  # type: ignore[attr-defined]
    return ds


class BaseTask:
    """Base of the built-in tasks: subclasses set ``name``, implement :meth:`spec` and
    :meth:`_generate` (one split from a generator) and store sizes in ``n_train``, ``n_val``,
    ``n_test``."""

    name: str = "task"
    n_train: int
    n_val: int
    n_test: int

    def _sizes(self, n_train: Any, n_val: Any, n_test: Any) -> None:
        self.n_train = check_int(self.name, "n_train", n_train, 1)
        self.n_val = check_int(self.name, "n_val", n_val, 1)
        self.n_test = check_int(self.name, "n_test", n_test, 1)

    def spec(self) -> TaskSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    def _generate(self, rng: np.random.Generator, n: int, split: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:  # pragma: no cover
        raise NotImplementedError

    def data(self, seed: int) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        """Train, validation and test splits generated from ``seed`` (deterministic)."""
        seed = check_int(self.name, "seed", seed, 0)
        out = []
        for k, (split, n) in enumerate(zip(SPLITS, (self.n_train, self.n_val, self.n_test))):
            rng = np.random.default_rng([seed, k])
            x, y, diff = self._generate(rng, n, split)
            out.append(make_dataset(x, y, difficulty=diff))
        return out[0], out[1], out[2]

    def options(self) -> dict[str, Any]:
        """The constructor options of this instance (JSON-able)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"
