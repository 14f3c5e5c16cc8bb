"""``nas spaces`` and ``nas spaces check`` (JSON documents and exit codes), and the checks."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from nas.cli import main
from nas.tasks import CopyTask, ParityTask
from nas.testing import ToySpace, check_space

torch.set_num_threads(1)

TOY = "nas.testing.toy:ToySpace"
TOY_RNN = '{"cells": ["gru", "lstm", "rnn"]}'  # the toy space with its model searched

# A space whose model reads the sequence backwards (so it is not causal), and one whose build
# is not deterministic under a seed; written to a temporary module and named "module:attr".
BROKEN = textwrap.dedent('''
    import torch
    from nas.testing.toy import ToySpace

    class Reversed(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(torch.flip(x, dims=[1]))

    class LeakySpace(ToySpace):
        def build(self, config, task):
            return Reversed(super().build(config, task))

    class RandomSpace(ToySpace):
        calls = 0

        def build(self, config, task):
            RandomSpace.calls += 1
            torch.manual_seed(RandomSpace.calls)  # ignores the caller's seed
            return super().build(config, task)
''')


@pytest.fixture()
def broken_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "nas_broken_spaces.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "nas_broken_spaces"


def test_nas_spaces_lists_spaces_and_tasks_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {(r["kind"], r["name"]) for r in rows}
    assert ("space", "seq_cells") in names
    for task in ("parity", "delayed_match", "copy", "associative_recall", "regular_language",
                 "lorenz96", "digits"):
        assert ("task", task) in names
    lorenz = next(r for r in rows if r["name"] == "lorenz96")
    assert lorenz["details"]["objective"] == "val_skill"
    assert all(r["description"] for r in rows)


def test_nas_spaces_table_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "kind,name,target,description,details"
    assert "nas.tasks:ParityTask" in out


def test_check_prints_the_documented_json_and_exits_0(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    rc = main(["spaces", "check", TOY, "--samples", "3", "--task", "parity", "--seed", "1",
               "--space-options", TOY_RNN,
               "--task-options", '{"bits": 4, "n_train": 64, "n_val": 16, "n_test": 16}',
               "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["space"] == TOY and doc["task"] == "parity"
    assert len(doc["samples"]) == 3
    for s in doc["samples"]:
        assert set(s) == {"config", "n_params", "ms_per_step", "ok", "error"}
        assert s["ok"] and s["error"] is None and s["n_params"] > 0 and s["ms_per_step"] > 0
    summary = doc["summary"]
    assert summary["n"] == 3 and summary["failures"] == 0
    assert set(summary["coverage"]) == {"cell", "hypernet", "activation"}
    n_layers = sum(len(s["config"]["layers"]) for s in doc["samples"])
    assert sum(summary["coverage"]["cell"].values()) == n_layers
    assert summary["coverage"]["hypernet"] == {"none": n_layers}


def test_check_exits_1_and_names_the_failure_for_a_non_causal_space(
        broken_module: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["spaces", "check", f"{broken_module}:LeakySpace", "-n", "2", "--task", "copy",
               "--task-options", '{"n_train": 32, "n_val": 8, "n_test": 8}', "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert doc["summary"]["failures"] == 2
    assert all("not causal" in s["error"] for s in doc["samples"])


def test_check_catches_a_nondeterministic_build(broken_module: str) -> None:
    import importlib

    space = importlib.import_module(broken_module).RandomSpace()
    report = check_space(space, ParityTask(bits=3, n_train=32, n_val=8, n_test=8), samples=2)
    assert not report.ok
    assert all("deterministic" in s.error for s in report.samples)


def test_check_of_a_sequence_task_passes_in_process() -> None:
    report = check_space(ToySpace(cells=["lstm"], max_layers=1),
                         CopyTask(length=3, n_train=32, n_val=8, n_test=8), samples=2, seed=4)
    assert report.ok, [s.error for s in report.samples]
    assert report.coverage()["cell"] == {"lstm": 2}


@pytest.mark.parametrize("argv", [
    ["spaces", "check", "no_such_space", "-n", "1"],
    ["spaces", "check", TOY, "--task", "no_such_task", "-n", "1"],
    ["spaces", "check", TOY, "--samples", "0"],
    ["spaces", "check", TOY, "--space-options", "{not json"],
    ["spaces", "check", TOY, "--space-options", '{"cells": ["transformer"]}'],
    ["spaces", "check", TOY, "--task-options", '{"bits": -3}'],
])
def test_user_errors_exit_2_with_one_line(argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas: error:") and "\n" not in err


def test_the_built_in_space_passes_a_few_samples(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["spaces", "check", "seq_cells", "-n", "3", "--seed", "2", "--task", "parity",
               "--space-options", '{"max_layers": 1, "hidden": [16], "max_loops": 1}',
               "--task-options", '{"bits": 4, "n_train": 64, "n_val": 16, "n_test": 16}',
               "--batch-size", "8", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert [s["error"] for s in doc["samples"]] == [None, None, None]
    assert rc == 0
    assert sum(doc["summary"]["coverage"]["cell"].values()) == 3
