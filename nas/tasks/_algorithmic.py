"""Algorithmic sequence tasks: parity, delayed match-to-sample, copy, associative recall.

All inputs are one-hot (or 0/1) float sequences of shape (T, input_size); the objective is
validation accuracy in [0, 1] (maximise).  Sequence targets of -100 mark steps without a target.
"""

from __future__ import annotations

import numpy as np

from nas.interfaces import Direction, TaskSpec
from nas.tasks._base import BaseTask, check_float, check_int

__all__ = ["AssociativeRecallTask", "CopyTask", "DelayedMatchTask", "ParityTask"]

IGNORE = -100


class ParityTask(BaseTask):
    """N-bit parity: read ``bits`` random bits one per step, output their XOR at the end.

    x: (bits, 1) with bit 1 as +1 and bit 0 as -1 (a zero input would look like no input);
    y: the parity, 0 or 1.  Difficulty of an example: its number of significant bits (leading
    zeros do not change the parity).
    """

    name = "parity"

    def __init__(self, bits: int = 8, n_train: int = 2000, n_val: int = 500,
                 n_test: int = 500) -> None:
        self.bits = check_int(self.name, "bits", bits, 1, 256)
        self._sizes(n_train, n_val, n_test)

    def spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, input_size=1, output_size=2, seq_len=self.bits,
                        objective="val_accuracy", direction=Direction.MAXIMIZE,
                        objective_range=(0.0, 1.0), output_mode="last", loss="cross_entropy")

    def _generate(self, rng: np.random.Generator, n: int, split: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bits = rng.integers(0, 2, size=(n, self.bits))
        y = bits.sum(axis=1) % 2
        first_one = np.where(bits.any(axis=1), bits.argmax(axis=1), self.bits)
        difficulty = self.bits - first_one
        x = (2.0 * bits - 1.0)[:, :, None].astype(np.float32)
        return x, y.astype(np.int64), difficulty


class DelayedMatchTask(BaseTask):
    """Delayed match-to-sample: a sample symbol, a random delay, then a probe; answer match?

    x: (max_delay + 2, n_symbols) one-hot presentations (plus Gaussian ``noise`` on every
    step); the sample is shown d ~ U{min_delay..max_delay} steps before the probe, which is
    always the last step; half the probes match.  y: 1 when the probe equals the sample.
    Difficulty: the delay d.
    """

    name = "delayed_match"

    def __init__(self, n_symbols: int = 4, min_delay: int = 1, max_delay: int = 10,
                 noise: float = 0.0, n_train: int = 2000, n_val: int = 500,
                 n_test: int = 500) -> None:
        self.n_symbols = check_int(self.name, "n_symbols", n_symbols, 2, 1024)
        self.min_delay = check_int(self.name, "min_delay", min_delay, 0, 10_000)
        self.max_delay = check_int(self.name, "max_delay", max_delay, self.min_delay, 10_000)
        self.noise = check_float(self.name, "noise", noise, 0.0, 10.0)
        self._sizes(n_train, n_val, n_test)

    def spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, input_size=self.n_symbols, output_size=2,
                        seq_len=self.max_delay + 2, objective="val_accuracy",
                        direction=Direction.MAXIMIZE, objective_range=(0.0, 1.0),
                        output_mode="last",
                        loss="cross_entropy")

    def _generate(self, rng: np.random.Generator, n: int, split: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        T = self.max_delay + 2
        delay = rng.integers(self.min_delay, self.max_delay + 1, size=n)
        sample = rng.integers(0, self.n_symbols, size=n)
        match = rng.integers(0, 2, size=n)
        # a non-matching probe: a different symbol, uniformly
        other = (sample + rng.integers(1, self.n_symbols, size=n)) % self.n_symbols
        probe = np.where(match == 1, sample, other)
        x = np.zeros((n, T, self.n_symbols), dtype=np.float32)
        rows = np.arange(n)
        x[rows, T - 2 - delay, sample] = 1.0
        x[rows, T - 1, probe] = 1.0
        if self.noise > 0:
            x += rng.normal(0.0, self.noise, size=x.shape).astype(np.float32)
        return x, match.astype(np.int64), delay.astype(np.float64)


class CopyTask(BaseTask):
    """Copy: read ``length`` random symbols, a delimiter, then write them back in order.

    x: (2·length + delay + 1, n_symbols + 1): the symbols one-hot, ``delay`` blank steps, the
    delimiter (last channel), then blanks.  y: (T,) the symbols at the ``length`` steps after
    the delimiter, -100 elsewhere (output_mode ``sequence``).  Accuracy is per copied symbol.
    """

    name = "copy"

    def __init__(self, length: int = 5, n_symbols: int = 8, delay: int = 0,
                 n_train: int = 2000, n_val: int = 500, n_test: int = 500) -> None:
        self.length = check_int(self.name, "length", length, 1, 10_000)
        self.n_symbols = check_int(self.name, "n_symbols", n_symbols, 2, 1024)
        self.delay = check_int(self.name, "delay", delay, 0, 10_000)
        self._sizes(n_train, n_val, n_test)

    @property
    def _T(self) -> int:
        return 2 * self.length + self.delay + 1

    def spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, input_size=self.n_symbols + 1,
                        output_size=self.n_symbols, seq_len=self._T, objective="val_accuracy",
                        direction=Direction.MAXIMIZE, objective_range=(0.0, 1.0),
                        output_mode="sequence", loss="cross_entropy")

    def _generate(self, rng: np.random.Generator, n: int, split: str
                  ) -> tuple[np.ndarray, np.ndarray, None]:
        L, T = self.length, self._T
        sym = rng.integers(0, self.n_symbols, size=(n, L))
        x = np.zeros((n, T, self.n_symbols + 1), dtype=np.float32)
        rows = np.arange(n)[:, None]
        x[rows, np.arange(L)[None, :], sym] = 1.0
        marker = L + self.delay
        x[:, marker, self.n_symbols] = 1.0
        y = np.full((n, T), IGNORE, dtype=np.int64)
        y[:, marker + 1:marker + 1 + L] = sym
        return x, y, None


class AssociativeRecallTask(BaseTask):
    """Associative recall: read ``n_pairs`` key-value pairs, then a query key; output its value.

    Tokens are one-hot over keys (``n_keys``), then values (``n_values``), then a query flag;
    keys in a sequence are distinct.  x: (2·n_pairs + 1, n_keys + n_values + 1); the last
    step shows the queried key with the flag set.  y: the value's index in [0, n_values).
    """

    name = "associative_recall"

    def __init__(self, n_pairs: int = 4, n_keys: int = 8, n_values: int = 8,
                 n_train: int = 2000, n_val: int = 500, n_test: int = 500) -> None:
        self.n_keys = check_int(self.name, "n_keys", n_keys, 1, 1024)
        self.n_pairs = check_int(self.name, "n_pairs", n_pairs, 1, self.n_keys)
        self.n_values = check_int(self.name, "n_values", n_values, 2, 1024)
        self._sizes(n_train, n_val, n_test)

    def spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, input_size=self.n_keys + self.n_values + 1,
                        output_size=self.n_values, seq_len=2 * self.n_pairs + 1,
                        objective="val_accuracy", direction=Direction.MAXIMIZE,
                        objective_range=(0.0, 1.0), output_mode="last", loss="cross_entropy")

    def _generate(self, rng: np.random.Generator, n: int, split: str
                  ) -> tuple[np.ndarray, np.ndarray, None]:
        P, K, V = self.n_pairs, self.n_keys, self.n_values
        keys = np.argsort(rng.random((n, K)), axis=1)[:, :P]  # distinct keys per sequence
        values = rng.integers(0, V, size=(n, P))
        q = rng.integers(0, P, size=n)
        rows = np.arange(n)
        x = np.zeros((n, 2 * P + 1, K + V + 1), dtype=np.float32)
        r = rows[:, None]
        x[r, 2 * np.arange(P)[None, :], keys] = 1.0
        x[r, 2 * np.arange(P)[None, :] + 1, K + values] = 1.0
        x[rows, 2 * P, keys[rows, q]] = 1.0
        x[rows, 2 * P, K + V] = 1.0
        return x, values[rows, q].astype(np.int64), None
