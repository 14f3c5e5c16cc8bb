"""The worker's training loop (nas.training): learning, early stop, failures, options."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from nas.errors import ConfigError
from nas.interfaces import TaskSpec
from nas.tasks import DelayedMatchTask, Lorenz96Task, ParityTask, RegularLanguageTask
from nas.testing import ToySpace
from nas.training import (
    HyperParams,
    TrainingOptions,
    TrialFailed,
    curriculum_fraction,
    prune_schedule,
    train,
    train_final,
)

torch.set_num_threads(1)

GRU = {"layers": [{"cell": "gru", "hypernet": "none", "activation": None}], "hidden": 32,
       "lr": 1e-2}


class _Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.epochs: list[int] = []
        self.metrics: list[dict[str, float]] = []
        self.stop_after = stop_after

    def __call__(self, epoch: int, metrics: dict[str, float]) -> bool | None:
        self.epochs.append(epoch)
        self.metrics.append(metrics)
        return self.stop_after is not None and epoch >= self.stop_after


def test_a_tiny_gru_learns_3_bit_parity_and_reports_every_epoch() -> None:
    rec = _Recorder()
    task = ParityTask(bits=3, n_train=1000, n_val=200, n_test=200)
    final = train(ToySpace(), GRU, task, TrainingOptions(max_epochs=8, seed=0), rec)
    assert rec.epochs == list(range(1, 9))
    assert {"val_accuracy", "train_loss", "val_loss", "params"} <= set(rec.metrics[0])
    assert final["val_accuracy"] >= 0.95
    assert final == rec.metrics[-1]
    assert rec.metrics[-1]["train_loss"] < rec.metrics[0]["train_loss"]


def test_training_is_deterministic_under_a_seed() -> None:
    task = DelayedMatchTask(max_delay=4, n_train=300, n_val=100, n_test=50)
    a, b = _Recorder(), _Recorder()
    train(ToySpace(), GRU, task, TrainingOptions(max_epochs=2, seed=5), a)
    train(ToySpace(), GRU, task, TrainingOptions(max_epochs=2, seed=5), b)
    strip = [{k: v for k, v in m.items() if k != "time_s"} for m in a.metrics]
    assert strip == [{k: v for k, v in m.items() if k != "time_s"} for m in b.metrics]


def test_report_returning_true_stops_the_trial() -> None:
    rec = _Recorder(stop_after=2)
    task = ParityTask(bits=4, n_train=200, n_val=50, n_test=50)
    final = train(ToySpace(), GRU, task, TrainingOptions(max_epochs=10), rec)
    assert rec.epochs == [1, 2]
    assert final["epoch"] == 2.0


def test_divergence_raises_trial_failed() -> None:
    # an explosive learning rate on a regression task overflows to inf/NaN for real
    task = Lorenz96Task(n_vars=4, window=4, lead=2, spinup=20, n_train=128, n_val=32,
                        n_test=32)
    config = {**GRU, "optimizer": "sgd", "lr": 1e30}
    rec = _Recorder()
    with pytest.raises(TrialFailed, match="nan|inf"):
        train(ToySpace(), config, task, TrainingOptions(max_epochs=3), rec)
    assert rec.epochs == []


def test_time_limit_raises_trial_failed() -> None:
    task = ParityTask(bits=4, n_train=200, n_val=50, n_test=50)
    with pytest.raises(TrialFailed, match="time limit"):
        train(ToySpace(), GRU, task, TrainingOptions(max_epochs=10_000, time_limit_s=0.3),
              _Recorder())


class _AuxSpace:
    """A model whose only trainable signal besides the task is an aux loss on ``scale``."""

    name = "aux"

    def sample(self, trial: Any) -> dict[str, Any]:
        return {}

    def features(self, config: Any) -> dict[str, float]:
        return {}

    def build(self, config: Any, task: TaskSpec) -> nn.Module:
        class M(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.head = nn.Linear(task.input_size, task.output_size)
                self.scale = nn.Parameter(torch.tensor(5.0))
                self.aux_loss: torch.Tensor | None = None

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                self.aux_loss = self.scale ** 2
                return self.head(x[:, -1])

        return M()


def test_the_models_aux_loss_is_minimised_too() -> None:
    task = ParityTask(bits=2, n_train=256, n_val=32, n_test=32)
    captured: list[nn.Module] = []
    space = _AuxSpace()
    orig = space.build

    def build(config: Any, spec: TaskSpec) -> nn.Module:
        captured.append(orig(config, spec))
        return captured[-1]

    space.build = build  # type: ignore[method-assign]
    train(space, {"optimizer": "sgd", "lr": 0.05}, task,
          TrainingOptions(max_epochs=5, batch_size=16), _Recorder())
    assert abs(float(captured[0].scale.detach())) < 1.0


def test_pruning_reaches_the_target_sparsity_and_keeps_weights_zero() -> None:
    task = ParityTask(bits=4, n_train=200, n_val=50, n_test=50)
    rec = _Recorder()
    train(ToySpace(), {**GRU, "prune_sparsity": 0.6}, task, TrainingOptions(max_epochs=4),
          rec)
    sparsity = [m["sparsity"] for m in rec.metrics]
    assert sparsity == sorted(sparsity)
    assert sparsity[-1] >= 0.59


def test_curricula_use_growing_or_cycling_fractions_of_the_data() -> None:
    easy = [curriculum_fraction("easy_to_hard", e, 8) for e in range(1, 9)]
    assert easy[0] == 0.25 and easy[-1] == 1.0 and easy == sorted(easy)
    cyc = [curriculum_fraction("cyclical", e, 12) for e in range(1, 13)]
    assert max(cyc) == 1.0 and min(cyc) == 0.25
    steps = list(zip(cyc, cyc[1:]))  # noqa: RUF007
    assert any(b < a for a, b in steps) and any(b > a for a, b in steps)
    assert cyc[:4] == cyc[4:8]
    assert curriculum_fraction("none", 1, 5) == 1.0
    assert prune_schedule(0.5, 10, 20) == pytest.approx(0.5)
    assert 0 < prune_schedule(0.5, 1, 20) < prune_schedule(0.5, 5, 20) < 0.5


def test_easy_to_hard_trains_on_the_easiest_examples_first() -> None:
    task = RegularLanguageTask(seq_len=12, n_train=200, n_val=40, n_test=40)
    rec = _Recorder()
    train(ToySpace(), {**GRU, "curriculum": "easy_to_hard"}, task,
          TrainingOptions(max_epochs=4, batch_size=32), rec)
    assert [m["data_fraction"] for m in rec.metrics] == [0.25, 0.625, 1.0, 1.0]
    for m in rec.metrics:
        assert math.isfinite(m["val_accuracy"])


def test_train_final_scores_on_the_test_split() -> None:
    task = DelayedMatchTask(max_delay=3, n_train=300, n_val=100, n_test=80)
    res = train_final(ToySpace(), GRU, task, TrainingOptions(max_epochs=2))
    assert set(res.metrics) >= {"test_accuracy", "test_loss", "train_loss", "params"}
    assert 0.0 <= res.metrics["test_accuracy"] <= 1.0
    assert isinstance(res.model, nn.Module)


@pytest.mark.parametrize("config, key", [
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"lr": -1.0}, "lr"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"curriculum": "random"}, "curriculum"),
    ({"prune_sparsity": 1.0}, "prune_sparsity"),
    ({"grad_clip": -1}, "grad_clip"),
])
def test_bad_training_keys_raise_config_error(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        HyperParams.from_config(config)


@pytest.mark.parametrize("options, key", [
    ({"max_epochs": 0}, "max_epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"device": "tpu"}, "device"),
    ({"time_limit_s": -1}, "time_limit_s"),
    ({"threads": 0}, "threads"),
])
def test_bad_training_options_raise_config_error(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        TrainingOptions(**options)


def test_training_options_round_trip_and_reject_unknown_keys() -> None:
    opts = TrainingOptions(max_epochs=3, time_limit_s=10.0)
    assert TrainingOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ConfigError, match="epochs"):
        TrainingOptions.from_dict({"epochs": 3})


class _ProbeSpace(_AuxSpace):
    """A linear model that records the training inputs of its first epoch."""

    def __init__(self, per_epoch: int) -> None:
        self.seen: list[torch.Tensor] = []
        self.per_epoch = per_epoch

    def build(self, config: Any, task: TaskSpec) -> nn.Module:
        space = self

        class M(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.head = nn.Linear(task.input_size, task.output_size)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if self.training and sum(len(s) for s in space.seen) < space.per_epoch:
                    space.seen.append(x.detach().clone())
                return self.head(x[:, -1])

        return M()


def test_easy_to_hard_takes_the_easiest_examples_in_the_first_epoch() -> None:
    bits = 6
    task = ParityTask(bits=bits, n_train=400, n_val=40, n_test=40)
    difficulty = task.data(0)[0].difficulty
    space = _ProbeSpace(per_epoch=100)  # 25 % of 400 in epoch 1
    train(space, {"curriculum": "easy_to_hard"}, task, TrainingOptions(max_epochs=4), _Recorder())
    seen = torch.cat(space.seen)
    first_one = torch.where((seen[..., 0] > 0).any(1), (seen[..., 0] > 0).float().argmax(1),
                            torch.tensor(bits))
    seen_difficulty = bits - first_one
    assert len(seen) == 100
    assert float(seen_difficulty.max()) <= float(difficulty.sort().values[99])


def test_pruned_weights_stay_zero_through_optimiser_steps() -> None:
    from nas.training._pruning import _Pruner

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    pruner = _Pruner(model)
    pruner.update(0.5)
    zero_before = [(p == 0) for p in pruner.params]
    assert pruner.sparsity() == pytest.approx(0.5, abs=0.01)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        model(torch.randn(32, 8)).pow(2).mean().backward()
        opt.step()
        pruner.apply()
    for p, z in zip(pruner.params, zero_before):
        assert torch.all(p[z] == 0)
    assert model[0].bias.abs().sum() > 0  # biases (1-D) are not pruned


def test_a_custom_trainer_gets_the_same_training_options_from_the_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One TrainingOptions: the worker hands a study's own ``training.trainer`` the options the
    default trainer gets (seed = study seed + trial number), and emits what it reports."""
    from nas.config import config_from_dict
    from nas.runner._worker import run_trial, static_payload

    (tmp_path / "wtc_custom_trainer.py").write_text(
        "SEEN = []\n"
        "def train(space, config, task, options, report):\n"
        "    SEEN.append(options)\n"
        "    for epoch in range(1, options.max_epochs + 1):\n"
        "        report(epoch, {'val_accuracy': 0.1 * epoch, 'note': 'not a number'})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = config_from_dict({
        "study": {"name": "custom", "seed": 10},
        "search": {"space": "nas.testing.toy:ToySpace"},
        "task": {"name": "nas.testing.toy:ToyTask"},
        "training": {"max_epochs": 3, "batch_size": 16, "device": "cpu",
                     "trainer": "wtc_custom_trainer:train"}})
    emitted: list[dict[str, Any]] = []
    run_trial(static_payload(cfg), {"number": 4, "config": {"ceiling": 0.9, "rate": 0.5}},
              emitted.append, "node-a")
    import wtc_custom_trainer  # type: ignore[import-not-found]

    assert wtc_custom_trainer.SEEN == [TrainingOptions(max_epochs=3, batch_size=16, device="cpu",
                                                       seed=14)]
    assert [e["epoch"] for e in emitted] == [1, 2, 3]
    assert emitted[0]["nas_node"] == "node-a" and "note" not in emitted[0]
    import torch  # where it ran: the study's device, the worker's torch threads; once

    assert (emitted[0]["nas_device"], emitted[0]["nas_threads"]) == ("cpu",
                                                                      torch.get_num_threads())
    assert not {"nas_node", "nas_device", "nas_threads"} & set(emitted[1])
    assert emitted[2]["val_accuracy"] == pytest.approx(0.3)


def test_training_label_smoothing_reaches_the_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A study file's ``training.label_smoothing`` (one declared field) is checked, carried to
    the worker's TrainingOptions and smooths the default trainer's training loss only."""
    from nas.config import config_from_dict
    from nas.runner._worker import prepare_trial, static_payload
    from nas.training import _loop

    study = {"study": {"name": "ls"}, "search": {"space": "nas.testing.toy:ToySpace"},
             "task": {"name": "nas.testing.toy:ToyTask"},
             "training": {"max_epochs": 1, "label_smoothing": 0.2}}
    cfg = config_from_dict(study)
    assert cfg.to_dict()["training"]["label_smoothing"] == 0.2
    assert prepare_trial(static_payload(cfg), 0).options.label_smoothing == 0.2
    with pytest.raises(ConfigError, match=r"training\.label_smoothing = 1\.5: must be a number"):
        config_from_dict({**study, "training": {"label_smoothing": 1.5}})

    seen: list[float] = []
    real = _loop.compute_loss

    def spy(out: Any, y: Any, spec: Any, label_smoothing: float = 0.0) -> Any:
        seen.append(label_smoothing)
        return real(out, y, spec, label_smoothing=label_smoothing)

    monkeypatch.setattr(_loop, "compute_loss", spy)
    task = ParityTask(bits=3, n_train=64, n_val=32, n_test=32)
    losses = []
    for ls in (0.0, 0.3):
        seen.clear()
        rec = _Recorder()
        train(ToySpace(), GRU, task, TrainingOptions(max_epochs=1, seed=0, label_smoothing=ls),
              rec)
        assert seen and set(seen) == {ls}
        losses.append(rec.metrics[0]["train_loss"])
    assert losses[0] != losses[1]
