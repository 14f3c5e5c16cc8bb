"""``nas bench race``: a tiny race end to end, the exact epoch budget, the JSON adding up, bad
options refused before Ray starts, and the peers built from Optuna's and Tune's own classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _run_helpers import toy_sections, write_study

from nas.bench import _race
from nas.cli import main


def _study(tmp_path: Path, name: str = "race-toy", **kw: object) -> Path:
    return write_study(tmp_path / f"{name}.toml",
                       toy_sections(name, trials=30, max_epochs=4, **kw))  # type: ignore[arg-type]


def _check_doc(doc: dict, budget: int) -> None:
    assert set(doc) >= {"races", "summary"}
    for r in doc["races"]:
        assert {"study", "seed", "entrant", "epochs", "wall_s", "best_value", "test_value",
                "trajectory"} <= set(r)
        assert r["epochs"] <= budget
        assert r["epochs"] <= r["epochs_trained"]
        eps = [e for e, _ in r["trajectory"]]
        bests = [b for _, b in r["trajectory"]]
        assert eps == sorted(eps) and all(1 <= e <= r["epochs"] for e in eps)
        assert bests == sorted(bests)  # best-so-far of a maximised objective only rises
        assert r["best_value"] == bests[-1]
    for s in doc["summary"]:
        rs = [r for r in doc["races"] if r["study"] == s["study"] and r["entrant"] == s["entrant"]]
        assert s["seeds"] == len(rs)
        assert s["best_mean"] == pytest.approx(sum(r["best_value"] for r in rs) / len(rs))
        assert s["epochs_mean"] == pytest.approx(sum(r["epochs"] for r in rs) / len(rs))


def test_tiny_race_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _study(tmp_path)
    png = tmp_path / "race.png"
    rc = main(["bench", "race", str(path), "--seeds", "2", "--budget-epochs", "9",
               "--entrants", "none,optuna-median,optuna-hyperband", "--json", "--plot", str(png)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["races"]) == 6
    _check_doc(doc, 9)
    assert all(r["epochs"] == 9 for r in doc["races"])  # 30 trials of 4 epochs: budget binds
    assert all(isinstance(r["test_value"], float) for r in doc["races"])
    none = next(s for s in doc["summary"] if s["entrant"] == "none")
    assert none["reached"] == none["of"] == 2
    assert png.stat().st_size > 1000


def test_plain_peers_use_the_libraries_own_classes(tmp_path: Path, ray_runtime: None) -> None:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    cfgs = _race.check_race_options([str(_study(tmp_path))], seeds=1, budget_epochs=6,
                                    budget_s=None,
                                    entrants=["optuna-median", "optuna-hyperband", "tune-asha"])
    doc = _race.run_race(cfgs, seeds=1, budget_epochs=6,
                         entrants=["optuna-median", "optuna-hyperband", "tune-asha"], test=False)
    _check_doc(doc, 6)
    study_cls, sampler_cls, pruner_cls = _race._built["optuna-median"]
    assert study_cls is optuna.study.Study and sampler_cls is optuna.samplers.TPESampler
    assert pruner_cls is optuna.pruners.MedianPruner
    assert _race._built["optuna-hyperband"][2] is optuna.pruners.HyperbandPruner
    tuner_cls, search_cls, sched_cls, tsampler = _race._built["tune-asha"]
    assert tuner_cls is tune.Tuner and search_cls is OptunaSearch
    assert sched_cls is ASHAScheduler and tsampler is optuna.samplers.TPESampler


def test_tiny_race_with_ray_entrants(tmp_path: Path, ray_runtime: None) -> None:
    """Two Ray entrants (Tune's ASHA and nas's), one seed, the budget exact."""
    cfgs = _race.check_race_options([str(_study(tmp_path))], seeds=1, budget_epochs=7,
                                    budget_s=None, entrants=["tune-asha", "nas-asha"])
    doc = _race.run_race(cfgs, seeds=1, budget_epochs=7, entrants=["tune-asha", "nas-asha"])
    _check_doc(doc, 7)
    assert [r["entrant"] for r in doc["races"]] == ["tune-asha", "nas-asha"]
    assert all(r["epochs"] == 7 for r in doc["races"])
    assert all(r["test_value"] is not None for r in doc["races"])


@pytest.mark.parametrize("args", [
    ["--seeds", "0"],
    ["--budget-epochs", "0"],
    ["--budget-s", "-1"],
    ["--budget-epochs", "5", "--budget-s", "3"],
    ["--entrants", "none,sklearn"],
    ["--entrants", "none,none"],
    ["--plot", "x.pdf"],
    ["--seeds", "two"],
])
def test_bad_options_exit_2_before_ray(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    import ray

    started: list[bool] = []
    monkeypatch.setattr(ray, "init", lambda *a, **k: started.append(True))
    rc = main(["bench", "race", str(_study(tmp_path)), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert not started
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_study_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "race", str(tmp_path / "nope.toml")]) == 2
    assert "no such study file" in capsys.readouterr().err
