"""``nas bench race``: tiny races end to end (two studies, two seeds), the exact epoch budget,
the JSON adding up, the docs script reproducing the tables from the JSON, bad options refused
before Ray starts, and the peers built from Optuna's and Tune's own classes."""

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
        assert {"study", "seed", "entrant", "epochs", "wall_s", "first_s", "best_value",
                "test_value", "trajectory", "wall_trajectory"} <= set(r)
        assert r["epochs"] <= budget
        assert r["epochs"] <= r["epochs_trained"]
        eps = [e for e, _ in r["trajectory"]]
        bests = [b for _, b in r["trajectory"]]
        assert eps == sorted(eps) and all(1 <= e <= r["epochs"] for e in eps)
        maximize = doc["directions"][r["study"]] == "maximize"
        assert bests == sorted(bests, reverse=not maximize)  # best-so-far only improves
        assert r["best_value"] == bests[-1]
        walls = [w for w, _ in r["wall_trajectory"]]
        assert len(walls) == len(eps) and walls == sorted(walls)
        assert 0 <= r["first_s"] <= walls[0] <= r["wall_s"]
        assert r["first_s"] <= r["spent_s"] <= r["wall_s"]
    for s in doc["summary"]:
        rs = [r for r in doc["races"] if r["study"] == s["study"] and r["entrant"] == s["entrant"]]
        assert s["seeds"] == len(rs)
        assert s["best_mean"] == pytest.approx(sum(r["best_value"] for r in rs) / len(rs))
        assert s["epochs_mean"] == pytest.approx(sum(r["epochs"] for r in rs) / len(rs))
        assert s["first_mean"] == pytest.approx(sum(r["first_s"] for r in rs) / len(rs))
        assert s["teardown_mean"] == pytest.approx(
            sum(r["wall_s"] - r["spent_s"] for r in rs) / len(rs))
        raced_none = any(r["entrant"] == "none" and r["study"] == s["study"]
                         for r in doc["races"])
        assert s["reached"] + len(s["unreached_seeds"]) == s["of"] == \
            (len(rs) if raced_none else 0)
        # 99% of none's best comes no later than none's best itself
        assert s["epochs_to_99_reached"] >= s["reached"]
        if s["reached"]:
            assert s["epochs_to_99_min"] <= s["epochs_to_none_best_min"]
        sign = 1 if doc["directions"][s["study"]] == "maximize" else -1
        assert sign * s["best_at_25_max"] <= sign * s["best_at_50_max"] <= sign * s["best_max"]


def _minimised(tmp_path: Path) -> Path:
    """A second study whose objective is minimised (the toy's loss-like ``val_loss``)."""
    return _study(tmp_path, "race-toy-min",
                  extra={"search": {"objectives": [{"name": "val_loss",
                                                    "direction": "minimize"}]},
                         "task": {"options": {"objective": "val_loss"}}})


def test_tiny_race_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two studies (one maximised, one minimised), two seeds, a budget of 9 epochs: every
    entrant is held to it, the JSON adds up, and the docs script renders the same tables."""
    paths = [_study(tmp_path), _minimised(tmp_path)]
    png = tmp_path / "race.png"
    rc = main(["bench", "race", *map(str, paths), "--seeds", "2", "--budget-epochs", "9",
               "--entrants", "none,optuna-median,optuna-hyperband", "--json", "--plot", str(png)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["races"]) == 12
    assert doc["directions"] == {"race-toy": "maximize", "race-toy-min": "minimize"}
    _check_doc(doc, 9)
    assert all(r["epochs"] == 9 for r in doc["races"])  # 30 trials of 4 epochs: budget binds
    assert all(isinstance(r["test_value"], float) for r in doc["races"])
    for none in (s for s in doc["summary"] if s["entrant"] == "none"):
        assert none["reached"] == none["of"] == 2
    assert png.stat().st_size > 1000
    out = tmp_path / "race.json"
    out.write_text(json.dumps(doc))
    from nas.bench import race_markdown

    assert _render_module().render(out) == race_markdown(doc)  # type: ignore[attr-defined]


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
    """The Ray entrants (Tune's ASHA, nas with the study's own stopping and nas's ASHA) on two
    studies, two seeds, the budget exact."""
    paths = [str(_study(tmp_path, policy="regret")), str(_minimised(tmp_path))]
    entrants = ["none", "tune-asha", "nas", "nas-asha"]
    cfgs = _race.check_race_options(paths, seeds=2, budget_epochs=7, budget_s=None,
                                    entrants=entrants)
    doc = _race.run_race(cfgs, seeds=2, budget_epochs=7, entrants=entrants)
    _check_doc(doc, 7)
    assert [r["entrant"] for r in doc["races"]] == entrants * 4
    assert all(r["epochs"] == 7 for r in doc["races"])
    assert all(r["test_value"] is not None for r in doc["races"])
    assert 0 <= doc["ray_start_s"] <= doc["wall_s"]  # 0 here: the fixture started Ray


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


# ------------------------------------------------------------------ the report (no Ray, no race)

def _rec(seed: int, entrant: str, traj: list[list[float]], test: float | None = 0.5,
          wall: float = 1.0, study: str = "s") -> dict:
    return {"study": study, "seed": seed, "entrant": entrant, "epochs": 10, "epochs_trained": 10,
            "wall_s": wall, "best_value": traj[-1][1] if traj else None, "test_value": test,
            "trajectory": traj, "wall_trajectory": [[0.5 * e, b] for e, b in traj],
            "first_s": 0.25}


def _synthetic() -> list[dict]:
    # none's best per seed: 0.8, 0.6, 0.9; "x" reaches seed 0 at 2, seed 2 at 6, never seed 1
    return [_rec(0, "none", [[1, 0.5], [4, 0.8]], test=0.7, wall=2.0),
            _rec(1, "none", [[3, 0.6]], test=0.5, wall=4.0),
            _rec(2, "none", [[5, 0.9]], test=0.6, wall=6.0),
            _rec(0, "x", [[2, 0.85]], test=0.8),
            _rec(1, "x", [[1, 0.4], [9, 0.55]], test=None),
            _rec(2, "x", [[6, 0.9]], test=0.9)]


def test_summary_spread_and_seeds() -> None:
    from nas.bench._race_report import summarize_by_direction

    none, x = summarize_by_direction(_synthetic(), {"s": "maximize"})
    assert x["seed_list"] == [0, 1, 2] and x["seeds"] == 3
    assert x["best_mean"] == pytest.approx(0.7666666667)
    assert x["best_sd"] == pytest.approx(0.1892969449)  # sample sd of .85, .55, .9
    assert (x["best_min"], x["best_max"]) == (0.55, 0.9)
    assert x["test_mean"] == pytest.approx(0.85) and x["test_min"] == 0.8  # seed 1 had none
    assert (x["reached"], x["of"]) == (2, 3)
    assert x["reached_seeds"] == [0, 2] and x["unreached_seeds"] == [1]
    assert x["epochs_to_none_best"] == pytest.approx(4.0)  # (2 + 6) / 2, seed 1 left out
    assert x["epochs_to_none_best_sd"] == pytest.approx(2.8284271247)
    assert (x["epochs_to_none_best_min"], x["epochs_to_none_best_max"]) == (2, 6)
    assert [p["epochs_to_none_best"] for p in x["per_seed"]] == [2, None, 6]
    assert none["reached"] == none["of"] == 3 and none["unreached_seeds"] == []
    assert none["epochs_to_none_best"] == pytest.approx(4.0)  # 4, 3, 5
    assert none["wall_mean"] == 4.0 and none["wall_sd"] == pytest.approx(2.0)
    assert (none["wall_min"], none["wall_max"]) == (2.0, 6.0)
    # minimising turns the comparison round: seed 0's 0.85 is not down to none's 0.8, seed 1's
    # 0.4 at epoch 1 is below none's 0.6
    x_min = summarize_by_direction(_synthetic(), {"s": "minimize"})[1]
    assert x_min["unreached_seeds"] == [0] and x_min["reached_seeds"] == [1, 2]
    assert [p["epochs_to_none_best"] for p in x_min["per_seed"]] == [None, 1, 6]


def test_tables_name_the_unreached_seeds_and_the_spread() -> None:
    from nas.bench._race_report import race_tables, summarize_by_direction

    races = _synthetic() + [_rec(0, "y", [[1, 0.1]]), _rec(1, "y", [[1, 0.1]]),
                            _rec(2, "y", [[1, 0.1]])]
    rows = race_tables({"summary": summarize_by_direction(races, {"s": "maximize"})})["s"]
    by = {r["entrant"]: r for r in rows}
    assert by["x"]["seeds"] == "3 (0, 1, 2)"
    assert by["x"]["epochs to none's best"] == "4.0 ± 2.8 [2–6] (2/3; not reached: seed 1)"
    assert by["x"]["best @100%"] == "0.7667 ± 0.19 [0.55–0.9]"
    assert by["x"]["wall s to none's best"] == "2 ± 1.4 [1–3] (2/3)"  # half an epoch each
    assert by["none"]["epochs to none's best"] == "4.0 ± 1 [3–5] (3/3)"
    assert by["none"]["wall s"] == "4 ± 2 [2–6]"
    assert by["y"]["epochs to none's best"] == "never (0/3; not reached: seed 0, 1, 2)"


def test_99_percent_and_the_budget_marks() -> None:
    """Epochs to 99% of none's best (within 1% of it), and the best-so-far at 25% and 50% of
    the epoch budget, for both directions."""
    from nas.bench import summarize_by_direction

    races = [_rec(0, "none", [[2, 0.5], [8, 1.0]]),
             _rec(0, "x", [[1, 0.2], [3, 0.991], [6, 0.995]]),
             _rec(0, "y", [[5, 0.98]])]
    none, x, y = summarize_by_direction(races, {"s": "maximize"}, {"epochs": 10})
    assert none["epochs_to_99"] == 8 and x["epochs_to_99"] == 3  # 0.991 >= 0.99
    assert (y["epochs_to_99"], y["epochs_to_99_reached"], y["epochs_to_99_of"]) == (None, 0, 1)
    assert x["best_at_25_mean"] == 0.2 and x["best_at_50_mean"] == 0.991  # epochs 2.5 and 5
    assert none["best_at_25_mean"] == 0.5 and y["best_at_25_mean"] is None  # nothing by 2.5
    assert x["first_mean"] == 0.25
    lows = [_rec(0, "none", [[2, 2.0], [8, 1.0]]), _rec(0, "x", [[4, 1.009]])]
    _, xm = summarize_by_direction(lows, {"s": "minimize"}, {"epochs": 8})
    assert xm["epochs_to_99"] == 4 and xm["reached"] == 0  # within 1% above, not at it
    assert xm["best_at_50_mean"] == 1.009 and xm["best_at_25_mean"] is None


def _render_module() -> object:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "race" / "render.py"
    spec = importlib.util.spec_from_file_location("race_render", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rendered_json_equals_the_table_function(tmp_path: Path) -> None:
    from nas.bench._race_report import race_markdown, race_tables, summarize_by_direction

    path = _study(tmp_path)
    cfgs = _race.check_race_options([str(path)], seeds=3, budget_epochs=10, budget_s=None,
                                    entrants=["none", "optuna-median"])
    races = [{**r, "study": "race-toy"} for r in _synthetic()]
    doc = {"races": races,
           "summary": summarize_by_direction(races, {c.name: _race.race_direction(c)
                                                     for c in cfgs})}
    out = tmp_path / "race.json"
    out.write_text(json.dumps({"races": races}))  # an old file: no spreads in it
    text = _render_module().render(out, [path])  # type: ignore[attr-defined]
    assert text == race_markdown(doc)
    lines = text.splitlines()
    for row in race_tables(doc)["race-toy"]:
        assert "| " + " | ".join(row.values()) + " |" in lines


def test_docs_and_readme_tables_come_from_the_json() -> None:
    """docs/race.md's tables and README's overview are what the docs script renders from the
    race file their tags name."""
    root = Path(__file__).resolve().parents[2]
    mod = _render_module()
    for doc_file, tag, overview in mod.BLOCKS:  # type: ignore[attr-defined]
        name, inner, _, _ = mod.block((root / doc_file).read_text(), tag)  # type: ignore[attr-defined]
        assert name.startswith("benchmarks/race/") and name.endswith(".json")
        assert inner == mod.render(root / name, overview=overview)  # type: ignore[attr-defined]


def test_a_study_without_objectives_races_in_its_tasks_direction(tmp_path: Path) -> None:
    """No [search].objectives: the task's direction is raced, summarised and rendered."""
    path = _study(tmp_path, "race-toy-task-min", extra={"task": {"options": {"objective":
                                                                             "val_loss"}}})
    cfg = _race.check_race_options([str(path)], seeds=1, budget_epochs=3, budget_s=None,
                                   entrants=["none"])[0]
    assert not cfg.search.objectives
    assert _race.race_direction(cfg) == "minimize"
    doc = _race.run_race([cfg], seeds=1, budget_epochs=3, entrants=["none"], test=False)
    assert doc["directions"] == {"race-toy-task-min": "minimize"}
    bests = [b for _, b in doc["races"][0]["trajectory"]]
    assert bests == sorted(bests, reverse=True)  # a loss's best-so-far only falls
