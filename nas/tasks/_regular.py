"""In-context learning of random regular languages (random DFAs).

Every sequence comes from its *own* random deterministic finite automaton, so a model cannot
memorise one language: it has to infer the automaton from the sequence itself.

Generation of one sequence:

1. A DFA with S ~ U{min_states..max_states} states over ``n_symbols`` symbols: uniformly random
   transitions, start state 0, each state accepting with probability 1/2, re-drawn until at
   least one state accepts and one rejects.
2. A token stream of ``seq_len`` tokens: strings of random symbols with lengths
   U{1..max_string_len}, each followed by a separator token that resets the DFA to its start.
3. Target at step t: does the DFA accept the current string's prefix read so far (the state
   after token t; after a separator, whether the empty string is accepted)?

Input at step t: one-hot of token t (``n_symbols`` symbols + separator) and the *previous*
step's answer as +1/-1 (0 at t = 0).  The labels of the past are thus in context and the model
learns the language from them: a predictor that has identified the DFA is exact, one that has
not is at chance.  Output mode ``sequence``, 2 classes, objective = per-step validation
accuracy.  Difficulty of a sequence: its number of DFA states.
"""

from __future__ import annotations

import numpy as np

from nas.interfaces import Direction, TaskSpec
from nas.tasks._base import BaseTask, check_int

__all__ = ["RegularLanguageTask"]


class RegularLanguageTask(BaseTask):
    """In-context regular languages: predict acceptance of each prefix under a per-sequence
    random DFA, with the previous step's answer given as input."""

    name = "regular_language"

    def __init__(self, min_states: int = 2, max_states: int = 4, n_symbols: int = 2,
                 seq_len: int = 32, max_string_len: int = 6, n_train: int = 2000,
                 n_val: int = 500, n_test: int = 500) -> None:
        self.min_states = check_int(self.name, "min_states", min_states, 2, 64)
        self.max_states = check_int(self.name, "max_states", max_states, self.min_states, 64)
        self.n_symbols = check_int(self.name, "n_symbols", n_symbols, 1, 64)
        self.seq_len = check_int(self.name, "seq_len", seq_len, 2, 10_000)
        self.max_string_len = check_int(self.name, "max_string_len", max_string_len, 1, 10_000)
        self._sizes(n_train, n_val, n_test)

    def spec(self) -> TaskSpec:
        return TaskSpec(name=self.name, input_size=self.n_symbols + 2, output_size=2,
                        seq_len=self.seq_len, objective="val_accuracy",
                        direction=Direction.MAXIMIZE,
                        objective_range=(0.0, 1.0), output_mode="sequence",
                        loss="cross_entropy")

    def _generate(self, rng: np.random.Generator, n: int, split: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        S, A, T = self.max_states, self.n_symbols, self.seq_len
        rows = np.arange(n)
        n_states = rng.integers(self.min_states, S + 1, size=n)
        trans = np.floor(rng.random((n, S, A)) * n_states[:, None, None]).astype(np.int64)
        accept = rng.integers(0, 2, size=(n, S)).astype(bool)
        valid = np.arange(S)[None, :] < n_states[:, None]
        # re-draw one state's bit where all (valid) states agree: both classes exist
        n_acc = (accept & valid).sum(axis=1)
        trivial = (n_acc == 0) | (n_acc == n_states)
        flip = np.floor(rng.random(n) * n_states).astype(np.int64)
        accept[rows[trivial], flip[trivial]] = ~accept[rows[trivial], flip[trivial]]

        sep = A
        tokens = np.empty((n, T), dtype=np.int64)
        labels = np.empty((n, T), dtype=np.int64)
        remaining = rng.integers(1, self.max_string_len + 1, size=n)
        state = np.zeros(n, dtype=np.int64)
        for t in range(T):
            sym = rng.integers(0, A, size=n)
            new_len = rng.integers(1, self.max_string_len + 1, size=n)
            is_sep = remaining == 0
            tok = np.where(is_sep, sep, sym)
            state = np.where(is_sep, 0, trans[rows, state, np.minimum(tok, A - 1)])
            remaining = np.where(is_sep, new_len, remaining - 1)
            tokens[:, t] = tok
            labels[:, t] = accept[rows, state]
        x = np.zeros((n, T, A + 2), dtype=np.float32)
        x[rows[:, None], np.arange(T)[None, :], tokens] = 1.0
        x[:, 1:, A + 1] = 2.0 * labels[:, :-1] - 1.0
        return x, labels, n_states.astype(np.float64)
