"""`nas best` writes a study file that re-runs the best trial as it is, and plug-ins next to
the study file import without PYTHONPATH."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import tomllib
from _run_helpers import toy_sections, write_study

from nas.cli import main
from nas.config import load_config
from nas.runner import run_study
from nas.storage import Storage, open_study


def _digits_study(name: str) -> dict[str, dict[str, object]]:
    return {
        "study": {"name": name, "seed": 5},
        "search": {"space": "seq_cells", "sampler": "random", "trials": 2, "concurrency": 1,
                   "space_options": {"cells": ["gru", "lstm"], "max_layers": 1, "hidden": [16],
                                     "hypernets": ["none"], "max_loops": 1}},
        "task": {"name": "digits"},
        "training": {"max_epochs": 2, "batch_size": 64, "device": "cpu"},
        "stopping": {"policy": "none"},
    }


@pytest.mark.usefixtures("ray_runtime")
def test_best_reruns_as_a_study_and_reaches_the_same_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    run_study(write_study(tmp_path / "s.toml", _digits_study("orig")), storage=url,
              ray_storage=str(tmp_path / "ray"))
    best = open_study("orig", storage=url).best_trial
    assert best is not None and best.value is not None

    capsys.readouterr()
    assert main(["best", "orig", "-o", str(tmp_path / "best.toml"), "--storage", url]) == 0
    assert "nas run" in capsys.readouterr().err
    text = (tmp_path / "best.toml").read_text()
    doc = tomllib.loads(text)
    assert text.startswith("# nas best orig: trial ")
    assert doc["search"]["space_options"]["config"] == best.config
    assert doc["task"] == {"name": "digits", "options": {}}
    assert doc["training"]["max_epochs"] == 2 and doc["study"]["seed"] == 5
    # the same document as JSON, which nas run reads too
    assert main(["best", "orig", "--json", "--storage", url]) == 0
    assert json.loads(capsys.readouterr().out) == doc
    assert main(["best", "orig", "-o", str(tmp_path / "b.yaml"), "--storage", url]) == 2

    run_study(load_config(tmp_path / "best.toml"), storage=url, ray_storage=str(tmp_path / "ray"))
    st = Storage(url)
    (again,) = st.trials(st.get_study("orig-best").id)
    assert again.state == "COMPLETE" and again.config == best.config
    assert again.value == pytest.approx(best.value, abs=0.06)  # training noise, 2 epochs
    if best.number == 0:  # the same training seed too: the same value
        assert again.value == pytest.approx(best.value, abs=1e-6)


def test_best_needs_a_complete_trial_of_a_run_study(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    st = Storage(url)
    st.create_study("imported", space="seq_cells", task="digits", config={},
                    objectives=[{"name": "val_accuracy", "direction": "maximize"}])
    capsys.readouterr()
    assert main(["best", "imported", "--storage", url]) == 2
    assert "no stored study file" in capsys.readouterr().err


def test_to_pandas_flattens_layers(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    st = Storage(url)
    sid = st.create_study("p", space="seq_cells", task="digits", config={},
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}])
    layers = [{"cell": "gru", "hypernet": "none"}, {"cell": "attention", "heads": 2}]
    st.finish_trial(st.create_trial(sid, 0, config={"hidden": 16, "layers": layers},
                                    distributions={}), state="COMPLETE", value=0.5)
    df = open_study("p", storage=url).to_pandas()
    assert df.loc[0, "layer0.cell"] == "gru" and df.loc[0, "layer1.cell"] == "attention"
    assert df.loc[0, "layer1.heads"] == 2 and df.loc[0, "params_hidden"] == 16
    assert "params_layers" not in df.columns
    assert (df["layer0.cell"] == "gru").sum() == 1  # filter by cell


_PLUGIN = '''
from nas.testing.toy import ToySpace


class GRUSpace(ToySpace):
    """A user's space in a file next to the study file."""
    name = "gru_space"
'''


@pytest.mark.usefixtures("ray_runtime")
def test_a_plugin_next_to_the_study_file_imports(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    module = f"gru_space_{tmp_path.name.replace('-', '_')}"  # a fresh name: no cached import
    (folder / f"{module}.py").write_text(_PLUGIN)
    sections = toy_sections("plug", trials=2, policy="none", max_epochs=2)
    sections["search"]["space"] = f"{module}:GRUSpace"
    path = write_study(folder / "s.toml", sections)
    monkeypatch.chdir(tmp_path)  # not the study file's folder
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert str(folder) not in sys.path
    url = f"sqlite:///{tmp_path / 'g.db'}"
    run_study(path, storage=url, ray_storage=str(tmp_path / "ray"))  # the driver and the Ray workers import it
    st = Storage(url)
    states = [t.state for t in st.trials(st.get_study("plug").id)]
    assert states == ["COMPLETE", "COMPLETE"]


def test_spaces_check_shows_a_custom_space_config(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"my_space_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(_PLUGIN)
    monkeypatch.chdir(tmp_path)  # `nas spaces check module:attr` in the plug-in's folder
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    assert main(["spaces", "check", f"{module}:GRUSpace", "--samples", "2", "--task",
                 "parity"]) == 0
    out = capsys.readouterr().out
    assert "ceiling=" in out and "mode=ok" in out  # the sampled config, not an empty column
    assert "cell: -" not in out and "…" not in out


def test_resume_of_a_finished_study_prints_its_summary_without_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import nas.plugins
    from nas.errors import ConfigError
    from nas.runner._resume import stored_config

    url = f"sqlite:///{tmp_path / 'r.db'}"
    path = write_study(tmp_path / "s.toml", toy_sections("done", trials=2, policy="none"))
    cfg = load_config(path)
    st = Storage(url)
    sid = st.create_study("done", space=cfg.search.space, task=cfg.task.name,
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                          config=stored_config(cfg))
    for n, v in enumerate((0.5, 0.7)):
        st.finish_trial(st.create_trial(sid, n, config={"x": n}, distributions={}),
                        state="COMPLETE", value=v)
    st.set_study_status(sid, "COMPLETE")

    def no(*a: object, **k: object) -> None:
        raise AssertionError("a finished study needs no plug-ins and no Ray")

    monkeypatch.setattr(nas.plugins, "build_plugins", no)
    capsys.readouterr()
    assert main(["run", str(path), "--resume", "--storage", url]) == 0
    err = capsys.readouterr().err
    assert "best 2" in err and "0.7" in err and "complete 2" in err
    assert st.get_study("done").status == "COMPLETE"  # nothing changed
    # a study that exists is refused without --resume, naming the flag
    with pytest.raises(ConfigError, match="--resume"):
        st.create_study("done", space="s", task="t", config={},
                        objectives=[{"name": "val_accuracy", "direction": "maximize"}])
    import nas

    assert repr(nas.Study("done", storage=url)).startswith("Study('done', storage=")
