"""The built-in tasks: conformance (nas.testing.check_task), determinism, semantics, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.errors import ConfigError
from nas.registry import create
from nas.tasks import (
    BUILTIN_TASKS,
    AssociativeRecallTask,
    CopyTask,
    DelayedMatchTask,
    DigitsTask,
    HMMTask,
    Lorenz96Task,
    ParityTask,
    RegularLanguageTask,
)
from nas.tasks._lorenz import lorenz96_rk4
from nas.testing import check_task

SMALL = {"n_train": 64, "n_val": 32, "n_test": 32}


def _small(name: str):
    cls = BUILTIN_TASKS[name]
    return cls() if name == "digits" else cls(**SMALL)


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_every_task_passes_the_conformance_check(name: str) -> None:
    report = check_task(_small(name), seed=3)
    assert report.ok, report.problems


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_entry_point_builds_the_task_and_data_is_deterministic(name: str) -> None:
    opts = {} if name == "digits" else SMALL
    task = create("task", name, opts)
    assert task.name == name
    a, b, c = task.data(7), task.data(7), task.data(8)
    for s1, s2 in zip(a, b):
        assert torch.equal(s1.tensors[0], s2.tensors[0])
        assert torch.equal(s1.tensors[1], s2.tensors[1])
    assert not torch.equal(a[0].tensors[0], c[0].tensors[0])


def test_validation_split_does_not_depend_on_n_train() -> None:
    v1 = ParityTask(bits=6, n_train=50, n_val=40).data(0)[1]
    v2 = ParityTask(bits=6, n_train=90, n_val=40).data(0)[1]
    assert torch.equal(v1.tensors[0], v2.tensors[0])


def test_parity_labels_are_the_xor_of_the_bits() -> None:
    x, y = ParityTask(bits=5, **SMALL).data(0)[0].tensors
    bits = (x[..., 0] > 0).long()
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(bits.sum(1) % 2, y)


def test_delayed_match_places_sample_before_probe_and_balances_labels() -> None:
    task = DelayedMatchTask(n_symbols=3, min_delay=2, max_delay=5, n_train=400, n_val=8,
                            n_test=8)
    ds = task.data(1)[0]
    x, y = ds.tensors
    assert x.shape[1] == 7
    delay = ds.difficulty.long()
    for i in range(50):
        t_sample = 7 - 2 - int(delay[i])
        sample = x[i, t_sample].argmax()
        assert x[i].sum() == 2.0  # exactly two presentations
        assert int(y[i]) == int(sample == x[i, -1].argmax())
    assert 0.4 < y.float().mean() < 0.6
    assert 2 <= int(delay.min()) and int(delay.max()) <= 5


def test_copy_targets_repeat_the_input_after_the_delimiter() -> None:
    task = CopyTask(length=4, n_symbols=5, delay=2, **SMALL)
    x, y = task.data(0)[0].tensors
    T = 2 * 4 + 2 + 1
    assert x.shape[1:] == (T, 6) and y.shape[1:] == (T,)
    assert torch.all(x[:, 6, 5] == 1)  # delimiter after the symbols and the delay
    assert torch.equal(y[:, 7:11], x[:, :4, :5].argmax(-1))
    assert torch.all(y[:, :7] == -100)


def test_associative_recall_answer_is_the_value_stored_under_the_query() -> None:
    task = AssociativeRecallTask(n_pairs=3, n_keys=5, n_values=4, **SMALL)
    x, y = task.data(0)[0].tensors
    for i in range(20):
        query = int(x[i, -1, :5].argmax())
        keys = [int(x[i, 2 * p, :5].argmax()) for p in range(3)]
        assert len(set(keys)) == 3
        value = int(x[i, 2 * keys.index(query) + 1, 5:9].argmax())
        assert value == int(y[i])


def test_regular_language_labels_are_consistent_with_a_dfa() -> None:
    task = RegularLanguageTask(min_states=2, max_states=3, n_symbols=2, seq_len=40,
                               max_string_len=4, **SMALL)
    ds = task.data(0)[0]
    x, y = ds.tensors
    tokens = x[..., :3].argmax(-1)
    # the previous answer is fed back as +-1
    assert torch.equal(x[:, 1:, 3], 2.0 * y[:, :-1].float() - 1.0)
    assert torch.all(x[:, 0, 3] == 0)
    for i in range(x.shape[0]):
        # after a separator the DFA is in its start state: the same answer every time
        at_sep = y[i][tokens[i] == 2]
        assert at_sep.numel() > 0 and bool(torch.all(at_sep == at_sep[0]))
    assert set(ds.difficulty.long().unique().tolist()) <= {2, 3}
    assert 0.2 < y.float().mean() < 0.8


def test_lorenz96_rk4_keeps_the_fixed_point_and_skill_is_relative_to_persistence() -> None:
    fixed = np.full((1, 6), 8.0)
    assert np.allclose(lorenz96_rk4(fixed, 8.0, 0.05), fixed)
    task = Lorenz96Task(n_vars=6, window=5, lead=3, spinup=50, **SMALL)
    tr, va, _ = task.data(0)
    x, y = va.tensors
    persistence = float(((x[:, -1] - y) ** 2).mean())
    assert va.reference_mse == pytest.approx(persistence, rel=1e-6)
    assert abs(float(tr.tensors[0].mean())) < 1e-4  # standardised with training statistics
    spec = task.spec()
    assert spec.objective == "val_skill" and spec.loss == "mse"


def test_lorenz96_can_minimise_its_validation_mse() -> None:
    """``objective = "val_loss"``: the study minimises the validation MSE; the same model
    trained the same way scores the skill 1 - MSE / persistence MSE under the default."""
    import optuna

    from nas.training import TrainingOptions, train
    from search_spaces import SeqCellsSpace

    opts = {"n_vars": 6, "window": 5, "lead": 3, "spinup": 50, **SMALL}
    mse_task = Lorenz96Task(objective="val_loss", **opts)
    skill_task = Lorenz96Task(**opts)
    spec = mse_task.spec()
    assert (spec.objective, spec.direction, spec.objective_range) == \
        ("val_loss", "minimize", (0.0, 1.0))
    space = SeqCellsSpace(cells=["gru"], max_layers=1, hypernets=["none"], hidden=[8],
                          optimizers=["adam"], lr=[1e-2, 1e-2])
    config = space.sample(optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0)).ask())
    got = {}
    for name, task in (("mse", mse_task), ("skill", skill_task)):
        seen: list[dict[str, float]] = []
        train(space, config, task, TrainingOptions(max_epochs=1, threads=1),
              lambda e, m, seen=seen: seen.append(m) and None)
        got[name] = seen[-1]
    mse = got["mse"]["val_loss"]
    ref = skill_task.data(0)[1].reference_mse
    assert mse > 0
    assert got["skill"]["val_skill"] == pytest.approx(max(0.0, 1.0 - mse / ref), abs=1e-5)


def test_hmm_targets_are_the_next_emission_and_the_forward_algorithm_is_bayes() -> None:
    import itertools

    task = HMMTask(n_states=3, n_symbols=3, seq_len=4, concentration=0.5, **SMALL)
    x, y = task.data(0)[1].tensors
    assert x.shape == (32, 4, 3) and y.shape == (32, 4)
    assert torch.equal(x[:, 1:].argmax(-1), y[:, :-1])  # y_t is the input of step t + 1
    pi, A, E = task.hmm()
    obs = np.array([[0, 2, 1, 1]])
    pred = task.predictive(obs)[0]
    for t in range(4):  # brute force: p(o_{t+1} | o_1..o_t) over all state paths
        joint = np.zeros(3)
        for path in itertools.product(range(3), repeat=t + 2):
            p = pi[path[0]] * E[path[0], obs[0, 0]]
            for i in range(1, t + 2):
                p *= A[path[i - 1], path[i]]
                if i <= t:
                    p *= E[path[i], obs[0, i]]
            joint += p * E[path[t + 1]]
        assert np.allclose(pred[t], joint / joint.sum(), atol=1e-12)


def test_hmm_reports_its_bayes_limit_as_spec_extra_and_metric() -> None:
    from nas.training import TrainingOptions, evaluate_test, train
    from search_spaces import SeqCellsSpace

    task = HMMTask(n_train=256, n_val=128, n_test=128)
    bayes = task.spec().extra["bayes_accuracy"]
    val = task.data(0)[1]
    assert 0.5 < bayes < 1 and abs(val.bayes_accuracy - bayes) < 0.05
    # the Bayes predictor beats predicting from the last emission alone (it needs memory)
    x, y = val.tensors
    assert val.bayes_accuracy > float((x.argmax(-1) == y).float().mean())
    cfg = {"hidden": 16, "layers": [{"cell": "gru", "hypernet": "none", "mip": False}],
           "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "dropout": 0.0,
           "grad_clip": 1.0, "curriculum": "none", "prune_sparsity": 0.0}
    seen: list[dict[str, float]] = []
    train(SeqCellsSpace(), cfg, task, TrainingOptions(max_epochs=1, batch_size=64,
                                                      device="cpu", seed=0, threads=1),
          lambda e, m: seen.append(m) is not None)
    assert seen[-1]["val_bayes_accuracy"] == val.bayes_accuracy
    assert seen[-1]["val_accuracy"] <= val.bayes_accuracy + 0.05
    model = SeqCellsSpace().build(cfg, task.spec())
    test = evaluate_test(model, task.spec(), task.data(0)[2])
    assert test["test_bayes_accuracy"] == task.data(0)[2].bayes_accuracy


def test_digits_splits_are_disjoint_and_cover_the_bundled_set() -> None:
    tr, va, te = DigitsTask(n_val=200, n_test=100).data(0)
    sizes = [len(tr), len(va), len(te)]
    assert sizes == [1797 - 300, 200, 100]
    rows = {tuple(r) for ds in (tr, va, te) for r in ds.tensors[0].reshape(len(ds), -1)
            .numpy().round(4).tolist()}
    assert len(rows) > 1700  # few exact duplicate images exist in the set
    assert float(tr.tensors[0].max()) <= 1.0


@pytest.mark.parametrize("cls, options, key", [
    (ParityTask, {"bits": 0}, "bits"),
    (ParityTask, {"bits": 2.5}, "bits"),
    (ParityTask, {"n_train": 0}, "n_train"),
    (DelayedMatchTask, {"min_delay": 5, "max_delay": 3}, "max_delay"),
    (DelayedMatchTask, {"noise": -1.0}, "noise"),
    (CopyTask, {"n_symbols": 1}, "n_symbols"),
    (AssociativeRecallTask, {"n_pairs": 9, "n_keys": 8}, "n_pairs"),
    (RegularLanguageTask, {"max_states": 1}, "max_states"),
    (Lorenz96Task, {"dt": 0.0}, "dt"),
    (Lorenz96Task, {"n_vars": 3}, "n_vars"),
    (Lorenz96Task, {"objective": "val_skil"}, "objective"),
    (DigitsTask, {"n_val": 2000}, "n_val"),
    (HMMTask, {"concentration": 0.0}, "concentration"),
    (HMMTask, {"stickiness": 1.5}, "stickiness"),
    (HMMTask, {"n_symbols": 1}, "n_symbols"),
])
def test_bad_options_raise_config_error_naming_the_key(cls, options, key) -> None:
    with pytest.raises(ConfigError, match=key):
        cls(**options)


def test_negative_seed_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="seed"):
        ParityTask(**SMALL).data(-1)


class _BrokenTask:
    """Labels outside the declared classes, data that ignores the seed's determinism."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def spec(self):
        from nas.interfaces import TaskSpec

        return TaskSpec(name="broken", input_size=2, output_size=2, seq_len=3)

    def data(self, seed: int):
        from torch.utils.data import TensorDataset

        self.calls += 1
        g = torch.Generator().manual_seed(seed * 100 + self.calls)
        x = torch.randn(10, 3, 2, generator=g)
        y = torch.randint(0, 3, (10,), generator=g)  # class 2 does not exist
        return TensorDataset(x, y), TensorDataset(x, y), TensorDataset(x, y)


def test_check_task_reports_what_is_wrong_with_a_broken_task() -> None:
    report = check_task(_BrokenTask())
    assert not report.ok
    text = "\n".join(report.problems)
    assert "not deterministic" in text
    assert "outside [0, 2)" in text
