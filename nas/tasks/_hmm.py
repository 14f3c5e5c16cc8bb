"""Next-emission prediction for a random hidden Markov model, with its Bayes limit.

After "Mechanistic interpretability of RNNs emulating hidden Markov models" (2025): a model that predicts the next emission of an HMM as well as possible has to track the
filtering distribution over hidden states, which the forward algorithm computes exactly.

The HMM (``n_states`` hidden states, ``n_symbols`` emissions) is drawn once from ``hmm_seed``,
independently of the data seed, so all splits and all studies with the same options share it:
initial distribution ~ Dirichlet(1), each transition row ~ Dirichlet(``concentration``) mixed
with ``stickiness`` of self-transition, each emission row ~ Dirichlet(``concentration``).

x: (seq_len, n_symbols) one-hot emissions o_1..o_T; y: (seq_len,) the next emissions
o_2..o_{T+1} (output mode ``sequence``, objective = per-step validation accuracy).

The Bayes-optimal predictor runs the forward algorithm: alpha_1 ∝ pi * E[:, o_1],
alpha_t ∝ (alpha_{t-1} A) * E[:, o_t], and predicts argmax_o ((alpha_t A) E)[o].  Its accuracy
is the best any model can reach; it is reported

* as ``spec().extra["bayes_accuracy"]`` (expected, from 4000 sequences drawn with a fixed
  seed) and in ``nas spaces``;
* as the ``bayes_accuracy`` attribute of every generated split (its empirical accuracy on that
  split), which :mod:`nas.training` reports as the extra metric ``val_bayes_accuracy`` next to
  ``val_accuracy`` (and ``test_bayes_accuracy`` for the final test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nas.interfaces import Direction, TaskSpec
from nas.tasks._base import BaseTask, check_float, check_int

if TYPE_CHECKING:
    from torch.utils.data import TensorDataset

__all__ = ["HMMTask"]

_EXPECTED_N = 4000  # sequences for the expected Bayes accuracy in the spec
_EXPECTED_SEED = 12345


class HMMTask(BaseTask):
    """Hidden Markov model: predict the next emission of a seeded random HMM; the Bayes-optimal
    accuracy (forward algorithm) is reported as the limit."""

    name = "hmm"

    def __init__(self, n_states: int = 4, n_symbols: int = 4, seq_len: int = 32,
                 concentration: float = 0.2, stickiness: float = 0.9, hmm_seed: int = 0,
                 n_train: int = 2000, n_val: int = 500, n_test: int = 500) -> None:
        self.n_states = check_int(self.name, "n_states", n_states, 1, 256)
        self.n_symbols = check_int(self.name, "n_symbols", n_symbols, 2, 1024)
        self.seq_len = check_int(self.name, "seq_len", seq_len, 1, 10_000)
        self.concentration = check_float(self.name, "concentration", concentration, 0.0, 1e3,
                                         lo_open=True)
        self.stickiness = check_float(self.name, "stickiness", stickiness, 0.0, 1.0)
        self.hmm_seed = check_int(self.name, "hmm_seed", hmm_seed, 0)
        self._sizes(n_train, n_val, n_test)
        self._expected: float | None = None

    # ------------------------------------------------------------------ the HMM
    def hmm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pi (S,), A (S, S) row-stochastic transitions, E (S, K) emissions)."""
        rng = np.random.default_rng([self.hmm_seed, 7919])
        S, K, a = self.n_states, self.n_symbols, self.concentration
        pi = rng.dirichlet(np.ones(S))
        A = (1 - self.stickiness) * rng.dirichlet(np.full(S, a), size=S) \
            + self.stickiness * np.eye(S)
        E = rng.dirichlet(np.full(K, a), size=S)
        return pi, A, E

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, seq_len + 1) emissions of ``n`` independent runs of the HMM."""
        pi, A, E = self.hmm()
        T = self.seq_len + 1
        cA, cE = np.cumsum(A, axis=1), np.cumsum(E, axis=1)
        state = np.minimum((rng.random(n)[:, None] > np.cumsum(pi)[None]).sum(1),
                           self.n_states - 1)
        obs = np.empty((n, T), dtype=np.int64)
        for t in range(T):
            if t:
                state = np.minimum((rng.random(n)[:, None] > cA[state]).sum(1),
                                   self.n_states - 1)
            obs[:, t] = np.minimum((rng.random(n)[:, None] > cE[state]).sum(1),
                                   self.n_symbols - 1)
        return obs

    def predictive(self, obs: np.ndarray) -> np.ndarray:
        """Forward algorithm: (n, T') observed emissions -> (n, T', n_symbols) Bayes
        predictive distributions p(o_{t+1} | o_1..o_t) (normalised at each step)."""
        pi, A, E = self.hmm()
        n, T = obs.shape
        out = np.empty((n, T, self.n_symbols))
        alpha = np.broadcast_to(pi, (n, self.n_states))
        for t in range(T):
            prior = alpha if t == 0 else alpha @ A
            alpha = prior * E[:, obs[:, t]].T
            alpha = alpha / alpha.sum(1, keepdims=True)
            out[:, t] = (alpha @ A) @ E
        return out

    def bayes_accuracy(self, obs: np.ndarray) -> float:
        """Accuracy of the Bayes-optimal predictor on (n, seq_len + 1) emissions."""
        pred = self.predictive(obs[:, :-1]).argmax(-1)
        return float((pred == obs[:, 1:]).mean())

    def expected_bayes_accuracy(self) -> float:
        """E[max_o p(o_{t+1} | o_1..o_t)] over steps, estimated from fixed-seed sequences."""
        if self._expected is None:
            obs = self.sample(np.random.default_rng([self.hmm_seed, _EXPECTED_SEED]),
                              _EXPECTED_N)
            self._expected = float(self.predictive(obs[:, :-1]).max(-1).mean())
        return self._expected

    # ------------------------------------------------------------------ task interface
    def spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, input_size=self.n_symbols, output_size=self.n_symbols,
                        seq_len=self.seq_len, objective="val_accuracy",
                        direction=Direction.MAXIMIZE,
                        objective_range=(0.0, 1.0), output_mode="sequence",
                        loss="cross_entropy",
                        extra={"bayes_accuracy": round(self.expected_bayes_accuracy(), 4)})

    def _generate(self, rng: np.random.Generator, n: int, split: str
                  ) -> tuple[np.ndarray, np.ndarray, None]:
        obs = self.sample(rng, n)
        x = np.zeros((n, self.seq_len, self.n_symbols), dtype=np.float32)
        x[np.arange(n)[:, None], np.arange(self.seq_len)[None], obs[:, :-1]] = 1.0
        return x, obs[:, 1:], None

    def data(self, seed: int) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        """Train, validation and test splits; each carries ``bayes_accuracy``, the empirical
        accuracy of the Bayes-optimal predictor on it."""
        splits = super().data(seed)
        for ds in splits:
            x, y = ds.tensors
            obs = np.concatenate([x.argmax(-1).numpy(), y[:, -1:].numpy()], axis=1)
            ds.bayes_accuracy = self.bayes_accuracy(obs)  # type: ignore[attr-defined]
        return splits
