"""nas evaluate: retrain the best configurations with several seeds, store and save weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _run_helpers import toy_sections

from nas.cli import main
from nas.config import config_from_dict
from nas.errors import ConfigError
from nas.evaluate import evaluate_study
from nas.storage import Storage


def _study(url: str, name: str = "ev") -> None:
    cfg = config_from_dict(toy_sections(name, max_epochs=2))
    st = Storage(url)
    sid = st.create_study(name, space=cfg.search.space, task=cfg.task.name,
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                          config=cfg.to_dict())
    for n, (value, state) in enumerate([(0.6, "COMPLETE"), (0.9, "COMPLETE"),
                                        (0.95, "STOPPED"), (0.7, "COMPLETE")]):
        tid = st.create_trial(sid, n, config={"ceiling": 0.5 + n / 10, "rate": 1.0,
                                              "mode": "ok", "epoch_s": 0.0},
                              distributions={})
        st.add_points(tid, [(1, value / 2, None), (2, value, None)])
        st.finish_trial(tid, state=state, values=[value], epochs=2)


def test_evaluate_top_k_with_seeds(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_model

    from nas.testing.toy import ToySpace, ToyTask

    torch.set_num_threads(1)
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    _study(url)
    doc = evaluate_study("ev", storage=url, top=2, seeds=2, out_dir=tmp_path / "models")
    res = doc["results"]
    # the best two COMPLETE trials (the STOPPED one does not count), best first
    assert [r["number"] for r in res] == [1, 3]
    assert [r["val_value"] for r in res] == [0.9, 0.7]
    for r in res:
        assert r["metric"] == "test_accuracy" and len(r["runs"]) == 2
        vals = [run["test_accuracy"] for run in r["runs"]]
        assert all(0.0 <= v <= 1.0 for v in vals)
        assert r["mean"] == pytest.approx(sum(vals) / 2)
        assert r["std"] >= 0.0
        d = Path(r["dir"])
        meta = json.loads((d / "config.json").read_text())
        assert meta["trial"] == r["number"] and meta["mean"] == r["mean"]
        model = ToySpace().build(meta["config"], ToyTask().spec())
        load_model(model, str(d / "seed-1.safetensors"))  # the weights load back
    st = Storage(url)
    rec = st.get_study("ev")
    stored = st.study_evaluation(rec.id)
    assert stored is not None and "evaluation" not in rec.config
    assert stored.to_dict("ev") == json.loads(json.dumps(doc))  # the document, as returned
    assert stored.seeds == 2 and stored.top == 2 and stored.metric == "test_accuracy"


def test_evaluate_errors_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    _study(url)
    with pytest.raises(ConfigError, match="--seeds = 0"):
        evaluate_study("ev", storage=url, seeds=0)
    assert main(["evaluate", "nope", "--storage", url]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    code = main(["evaluate", "ev", "--storage", url, "--top", "1", "--seeds", "1", "--json",
                 "--out", str(tmp_path / "m")])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["number"] == 1 and doc["seeds"] == 1
