"""Handwritten digits (scikit-learn's bundled 8x8 images, UCI optdigits) read row by row."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from nas.interfaces import Direction, TaskSpec
from nas.tasks._base import BaseTask, check_int, make_dataset

if TYPE_CHECKING:
    from torch.utils.data import TensorDataset

__all__ = ["DigitsTask"]

N_DIGITS = 1797  # images in sklearn.datasets.load_digits (bundled, no download)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


class DigitsTask(BaseTask):
    """Digits: classify scikit-learn's bundled 8x8 digit images fed one row per step.

    x: (8, 8) pixel intensities scaled to [0, 1]; y: the digit 0-9.  ``data(seed)`` shuffles
    the 1,797 images with the seed and splits them into ``n_val`` validation and ``n_test``
    test images; the rest are the training set.
    """

    name = "digits"

    def __init__(self, n_val: int = 300, n_test: int = 300) -> None:
        self.n_val = check_int(self.name, "n_val", n_val, 1, N_DIGITS - 2)
        self.n_test = check_int(self.name, "n_test", n_test, 1, N_DIGITS - 1 - self.n_val)
        self.n_train = N_DIGITS - self.n_val - self.n_test

    def options(self) -> dict[str, int]:
        return {"n_val": self.n_val, "n_test": self.n_test}

    def spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, input_size=8, output_size=10, seq_len=8,
                        objective="val_accuracy", direction=Direction.MAXIMIZE,
                        objective_range=(0.0, 1.0), output_mode="last", loss="cross_entropy")

    def data(self, seed: int) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        """Seeded shuffle of the bundled images into train, validation and test."""
        seed = check_int(self.name, "seed", seed, 0)
        images, labels = _digits()
        perm = np.random.default_rng([seed, 0]).permutation(images.shape[0])
        a, b = self.n_train, self.n_train + self.n_val
        parts = (perm[:a], perm[a:b], perm[b:])
        out = [make_dataset(images[p], labels[p]) for p in parts]
        return out[0], out[1], out[2]
