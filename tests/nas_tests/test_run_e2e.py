"""End to end: tiny studies through Ray Tune on SQLite and PostgreSQL (shared Ray runtime)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _run_helpers import toy_sections, write_study

from nas.runner import run_study
from nas.storage import Storage

pytestmark = pytest.mark.usefixtures("ray_runtime")


def _check_study(url: str, name: str, trials: int, max_epochs: int) -> None:
    st = Storage(url)
    rec = st.get_study(name)
    assert rec.status == "COMPLETE"
    recs = st.trials(rec.id, with_curves=True)
    assert len(recs) == trials
    assert sorted(r.number for r in recs) == list(range(trials))
    by_state: dict[str, list] = {}
    for r in recs:
        by_state.setdefault(r.state, []).append(r)
        steps = [s for s, _ in st.curve(r.id)]
        assert steps == list(range(1, len(steps) + 1))  # contiguous, never duplicated
        assert r.epochs == len(steps) <= max_epochs
        # Optuna's distributions are stored so that the sampler history can be rebuilt.
        assert set(r.distributions["distributions"]) == {"ceiling", "rate", "mode"}
    assert set(by_state) <= {"COMPLETE", "STOPPED", "FAILED"}
    for r in by_state.get("COMPLETE", []):
        assert r.epochs == max_epochs and r.value == pytest.approx(r.curve[-1])
    assert by_state.get("STOPPED"), "asha stopped nothing"
    for r in by_state["STOPPED"]:
        ds = st.decisions(r.id)
        assert ds and ds[-1].action == "STOP" and ds[-1].step == r.epochs
        assert ds[-1].policy == "asha" and ds[-1].reason
        assert all(d.action == "CONTINUE" for d in ds[:-1])
    for r in by_state.get("FAILED", []):
        if r.config["mode"] == "raise":
            assert r.error == "RuntimeError: toy trial raised on purpose at epoch 2"
        else:
            assert r.config["mode"] == "nan"
            assert r.error == "objective val_accuracy is nan at epoch 2"
        assert r.epochs == 1
    # every trial whose mode makes it fail did fail, whatever the policy decided at epoch 1
    for r in recs:
        if r.config["mode"] != "ok" and r.state != "STOPPED":
            assert r.state == "FAILED"


def test_tiny_study_sqlite_with_raising_and_nan_trials(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections(
        "e2e-sqlite", trials=12, modes=["ok", "ok", "raise", "nan"], sampler="random",
        extra={"stopping": {"options": {"grace_period": 2}}}))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    s = run_study(path, storage=url, ray_storage=str(tmp_path / "ray"))
    assert sum(s.trials.values()) == 12
    assert s.trials.get("FAILED", 0) >= 1
    assert s.best is not None and s.best["params"]["mode"] == "ok"
    assert s.epochs_budget == 12 * 6 and s.epochs_run < s.epochs_budget
    assert s.hook_ms_p99 is not None
    _check_study(url, "e2e-sqlite", 12, 6)
    # the raising and NaN trials were drawn (random sampler, seed 3)
    st = Storage(url)
    errors = {r.error for r in st.trials(st.get_study("e2e-sqlite").id) if r.error}
    assert "RuntimeError: toy trial raised on purpose at epoch 2" in errors
    assert "objective val_accuracy is nan at epoch 2" in errors


def test_tiny_study_postgresql_via_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    admin = os.environ.get("NAS_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip(reason="NAS_TEST_POSTGRES_URL is not set (run under .ci/in-netns.sh as root)")
    from nas.cli import main
    from nas.testing.storage import postgres_database

    path = write_study(tmp_path / "s.toml", toy_sections("e2e-pg", trials=8))
    with postgres_database(admin) as url:
        os.environ["NAS_STORAGE"] = url
        try:
            code = main(["run", str(path), "--json", "--quiet",
                         "--ray-results", str(tmp_path / "rr")])
        finally:
            del os.environ["NAS_STORAGE"]
        out = capsys.readouterr().out
        doc = json.loads(out)
        assert code == 0
        assert set(doc) == {"study", "storage", "wall_s", "trials", "epochs_run",
                            "epochs_budget", "best", "false_stops"}
        fs = doc["false_stops"]  # the stop audit's measured rate (asha stops, audit 0.05)
        assert set(fs) == {"audited", "false_stops", "pending", "rate", "ci95"}
        assert fs["pending"] == 0 and 0 <= fs["false_stops"] <= fs["audited"]
        assert doc["study"] == "e2e-pg" and sum(doc["trials"].values()) == 8
        assert doc["storage"].startswith("postgresql")
        assert doc["best"]["number"] in range(8)
        # Tune's own files went where --ray-results said
        assert [p.name.startswith("nas-e2e-pg-") for p in (tmp_path / "rr").iterdir()] == [True]
        _check_study(url, "e2e-pg", 8, 6)
        # the same name again is a user error unless --resume
        assert main(["run", str(path), "--json", "--storage", url]) == 2
        assert "already exists" in capsys.readouterr().err


def test_existing_study_is_an_error_and_resume_with_budget_done(tmp_path: Path) -> None:
    from nas.errors import ConfigError

    path = write_study(tmp_path / "s.toml", toy_sections("e2e-again", trials=3,
                                                         policy="none"))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_study(path, storage=url, ray_storage=str(tmp_path / "ray"))
    with pytest.raises(ConfigError, match="already exists"):
        run_study(path, storage=url, ray_storage=str(tmp_path / "ray"))
    # resume with the budget already spent: nothing runs, the counts cover the whole study
    s = run_study(path, storage=url, resume=True, ray_storage=str(tmp_path / "ray"))
    assert s.trials == {"COMPLETE": 3}
    # a larger budget on resume runs only the difference
    s = run_study(path, storage=url, resume=True, trials=5, ray_storage=str(tmp_path / "ray"))
    assert s.trials == {"COMPLETE": 5}


def test_time_limits_worker_side_and_hung_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    slow = write_study(tmp_path / "slow.toml", toy_sections(
        "slow", trials=2, policy="none", max_epochs=4, epoch_s=0.6,
        extra={"training": {"time_limit_s": 1.0}}))
    s = run_study(slow, storage=url, ray_storage=str(tmp_path / "ray"))
    assert s.trials == {"FAILED": 2}
    hang = write_study(tmp_path / "hang.toml", toy_sections(
        "hang", trials=1, modes=["hang"], policy="none", max_epochs=4,
        extra={"training": {"time_limit_s": 1.0}}))
    s = run_study(hang, storage=url, ray_storage=str(tmp_path / "ray"))
    assert s.trials == {"FAILED": 1}
    st = Storage(url)
    errors = [r.error for name in ("slow", "hang") for r in st.trials(st.get_study(name).id)]
    assert all(e.startswith("TimeoutError: time limit of 1 s exceeded at epoch ")
               for e in errors[:2]), errors
    assert errors[2].startswith("time limit of 1 s exceeded (no result for ")


def test_python_api_run_and_study(tmp_path: Path) -> None:
    import nas

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study = nas.run(toy_sections("api", trials=3, policy="none", max_epochs=3), storage=url,
                    ray_storage=str(tmp_path / "ray"))
    assert isinstance(study, nas.Study)
    assert study.summary.trials == {"COMPLETE": 3}
    assert len(study.trials) == 3 and study.best_trial is not None
    again = nas.Study("api", storage=url)
    assert again.best_trial.number == study.best_trial.number
    assert len(again.to_pandas()) == 3


def test_worker_death_is_retried_up_to_max_failures(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    sections = toy_sections("die", trials=1, modes=["die"], policy="none", max_epochs=4,
                            extra={"training": {"max_failures": 1}})
    sections["search"]["space_options"]["marker_dir"] = str(tmp_path)
    s = run_study(write_study(tmp_path / "die.toml", sections), storage=url,
                  ray_storage=str(tmp_path / "ray"))
    assert s.trials == {"COMPLETE": 1}  # died once at epoch 2, the retry ran to the end
    st = Storage(url)
    (t,) = st.trials(st.get_study("die").id)
    assert [p[0] for p in st.curve_points(t.id)] == [1, 2, 3, 4]  # epoch 1 not stored twice
    assert t.epochs == 4

    sections = toy_sections("die0", trials=1, modes=["die"], policy="none", max_epochs=4,
                            extra={"training": {"max_failures": 0}})
    sections["search"]["space_options"]["marker_dir"] = str(tmp_path / "fresh")
    (tmp_path / "fresh").mkdir()
    s = run_study(write_study(tmp_path / "die0.toml", sections), storage=url,
                  ray_storage=str(tmp_path / "ray"))
    assert s.trials == {"FAILED": 1}
    (t,) = st.trials(st.get_study("die0").id)
    assert t.error.startswith("worker died 1 time(s); last error: ")


def test_two_objectives_are_stored_per_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    sections = toy_sections("mo", trials=5, policy="asha", sampler="nsga2",
                            extra={"stopping": {"options": {"grace_period": 2}}})
    sections["search"]["objectives"] = [{"name": "val_accuracy", "direction": "maximize"},
                                        {"name": "params", "direction": "minimize"}]
    s = run_study(write_study(tmp_path / "mo.toml", sections), storage=url,
                  ray_storage=str(tmp_path / "ray"))
    assert sum(s.trials.values()) == 5 and s.trials.get("COMPLETE", 0) >= 1
    st = Storage(url)
    rec = st.get_study("mo")
    assert [o["direction"] for o in rec.objectives] == ["maximize", "minimize"]
    for t in st.trials(rec.id):
        if t.state == "COMPLETE":
            acc, params = t.values
            assert acc == t.value
            assert params == pytest.approx(10.0 + 100.0 * t.config["ceiling"])
