"""Forecasting the Lorenz-96 system (Lorenz 1996), integrated with classical RK4.

    dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,    i = 1..K (cyclic indices)

Each example is an independent trajectory: x(0) = F + N(0, 1) noise, ``spinup`` RK4 steps of
size ``dt`` onto the attractor, then a ``window`` of states as input and the state ``lead``
steps after the window's last state as target.  States are standardised with the mean and
standard deviation of the training split's inputs (one scalar each; the system is symmetric
under index shifts).

Objective (option ``objective``): ``val_skill`` (the default) = max(0, 1 - MSE_model /
MSE_persistence) in [0, 1], maximise, where the persistence forecast predicts that the state
``lead`` steps ahead equals the last input state (the validation dataset carries
MSE_persistence as ``reference_mse``).  Skill 0 is no better than persistence; 1 is a perfect
forecast.  ``val_loss``: the validation MSE on the standardised states itself, minimise (the
test metric is then the test MSE).
"""

from __future__ import annotations

import numpy as np

from nas._checks import Checker
from nas.interfaces import Direction, TaskSpec
from nas.tasks._base import SPLITS, BaseTask, check_float, check_int, make_dataset

if False:  # pragma: no cover - typing only, keeps torch out of import time
    from torch.utils.data import TensorDataset

__all__ = ["Lorenz96Task", "lorenz96_rk4"]

#: the objectives the task can report (option ``objective``)
OBJECTIVES = ("val_skill", "val_loss")


def _l96(x: np.ndarray, forcing: float) -> np.ndarray:
    return (np.roll(x, -1, axis=-1) - np.roll(x, 2, axis=-1)) * np.roll(x, 1, axis=-1) \
        - x + forcing


def lorenz96_rk4(x: np.ndarray, forcing: float, dt: float) -> np.ndarray:
    """One classical Runge-Kutta step of the Lorenz-96 ODE for a batch of states (..., K)."""
    k1 = _l96(x, forcing)
    k2 = _l96(x + 0.5 * dt * k1, forcing)
    k3 = _l96(x + 0.5 * dt * k2, forcing)
    k4 = _l96(x + dt * k3, forcing)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


class Lorenz96Task(BaseTask):
    """Lorenz-96 forecasting: from a window of K-dimensional states predict the state ``lead``
    steps ahead; objective is skill over persistence."""

    name = "lorenz96"

    def __init__(self, n_vars: int = 8, forcing: float = 8.0, dt: float = 0.05,
                 window: int = 16, lead: int = 4, spinup: int = 200, n_train: int = 2000,
                 n_val: int = 500, n_test: int = 500, objective: str = "val_skill") -> None:
        self.objective = Checker(f"task {self.name}").choice(objective, "objective", OBJECTIVES)
        self.n_vars = check_int(self.name, "n_vars", n_vars, 4, 1024)
        self.forcing = check_float(self.name, "forcing", forcing, 0.0, 100.0)
        self.dt = check_float(self.name, "dt", dt, 0.0, 0.2, lo_open=True)
        self.window = check_int(self.name, "window", window, 1, 10_000)
        self.lead = check_int(self.name, "lead", lead, 1, 10_000)
        self.spinup = check_int(self.name, "spinup", spinup, 0, 100_000)
        self._sizes(n_train, n_val, n_test)

    def spec(self) -> TaskSpec:
        if self.objective == "val_loss":
            # from a perfect forecast (0) to the climatological one: the standardised states have
            # variance ~1, so forecasting their mean scores ~1; worse than that is clipped to it
            return TaskSpec(name=self.name, input_size=self.n_vars, output_size=self.n_vars,
                            seq_len=self.window, objective="val_loss", direction=Direction.MINIMIZE,
                            objective_range=(0.0, 1.0), output_mode="last", loss="mse")
        return TaskSpec(name=self.name, input_size=self.n_vars, output_size=self.n_vars,
                        seq_len=self.window, objective="val_skill", direction=Direction.MAXIMIZE,
                        objective_range=(0.0, 1.0), output_mode="last", loss="mse")

    def _trajectories(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = self.forcing + rng.normal(0.0, 1.0, size=(n, self.n_vars))
        for _ in range(self.spinup):
            x = lorenz96_rk4(x, self.forcing, self.dt)
        states = np.empty((n, self.window, self.n_vars))
        for t in range(self.window):
            states[:, t] = x
            x = lorenz96_rk4(x, self.forcing, self.dt)
        for _ in range(self.lead - 1):
            x = lorenz96_rk4(x, self.forcing, self.dt)
        return states, x

    def data(self, seed: int) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        """Train, validation and test trajectories from ``seed``, standardised with the
        training inputs' statistics; each split carries its persistence ``reference_mse``."""
        seed = check_int(self.name, "seed", seed, 0)
        raw = []
        for k, n in enumerate((self.n_train, self.n_val, self.n_test)):
            raw.append(self._trajectories(np.random.default_rng([seed, k]), n))
        mean = float(raw[0][0].mean())
        std = float(raw[0][0].std()) or 1.0
        out = []
        for (x, y), _split in zip(raw, SPLITS):
            xs = ((x - mean) / std).astype(np.float32)
            ys = ((y - mean) / std).astype(np.float32)
            ref = float(np.mean((xs[:, -1] - ys) ** 2))
            out.append(make_dataset(xs, ys, reference_mse=ref))
        return out[0], out[1], out[2]
