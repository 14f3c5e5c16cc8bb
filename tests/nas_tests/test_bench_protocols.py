"""``nas bench predict`` and ``nas bench replay`` on small synthetic curve files: the documented
JSON, the protocol's arithmetic (cutoffs, means, regret), and user errors on stderr with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.bench import cutoff_length, run_predict, run_replay
from nas.cli import main
from nas.curvefile import CurveSet, save_curves
from nas.errors import CurveFileError
from nas.testing.predictors import (
    check_predict_document,
    check_replay_document,
    synthetic_curve_set,
)


@pytest.fixture(scope="module")
def curve_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("curves") / "synthetic.npz"
    save_curves(path, synthetic_curve_set(n=72, horizon=12, groups=2, seed=0))
    return path


def test_cutoff_length_rule() -> None:
    assert cutoff_length(0.1, 25) == 2  # round(2.5) = 2: half to even
    assert cutoff_length(0.1, 35) == 4  # round(3.5) = 4
    assert cutoff_length(0.1, 51) == 5 and cutoff_length(0.4, 51) == 20
    assert cutoff_length(0.01, 10) == 1 and cutoff_length(0.95, 5) == 4


def test_predict_document(curve_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "predict", "--curves", str(curve_file), "--predictor", "baker",
               "--cutoffs", "0.2,0.5", "--folds", "3", "--predictor-option", "min_curves=5",
               "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    check_predict_document(doc, ["0.2", "0.5"])
    assert doc["predictor"] == "baker" and doc["n"] == 72 and doc["threads"] == 1
    # the last-value baseline is the same arithmetic whoever predicts
    cs = synthetic_curve_set(n=72, horizon=12, groups=2, seed=0)
    c = cutoff_length(0.2, 12)
    expect = float(np.mean((cs.curves[:, c - 1] - cs.curves[:, -1]) ** 2))
    assert doc["cutoffs"]["0.2"]["mse_last_value"] == pytest.approx(expect)


def test_replay_none_median_asha(curve_file: Path) -> None:
    from nas.curvefile import load_curves

    cs = load_curves(curve_file)
    none = run_replay(cs, "none", seeds=2)
    check_replay_document(none, ["g0", "g1"])
    assert none["speedup"] == 1.0 and none["regret"] == 0.0 and none["predictor"] is None
    for policy, opts in (("median", {"n_startup_trials": 5}), ("asha", {})):
        doc = run_replay(cs, policy, policy_options=opts, seeds=2)
        check_replay_document(doc, ["g0", "g1"])
        assert doc["speedup"] > 1.0


def test_replay_predictive_with_baker(curve_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "replay", "--curves", str(curve_file), "--policy", "predictive",
               "--predictor", "baker", "--delta", "0.1", "--seeds", "2",
               "--predictor-option", "min_curves=5", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    check_replay_document(doc, ["g0", "g1"])
    assert doc["policy"] == "predictive" and doc["predictor"] == "baker" and doc["delta"] == 0.1
    assert doc["speedup"] > 1.0


def test_user_errors_exit_2(curve_file: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "raw.npz"
    save_curves(bad, CurveSet(np.array([[0.5, 2.0, 3.0]]), np.array([3])))
    assert main(["bench", "replay", "--curves", str(bad), "--policy", "none", "--json"]) == 2
    err = capsys.readouterr()
    assert err.out == "" and "[0, 1]" in err.err
    assert main(["bench", "replay", "--curves", str(curve_file), "--policy", "predictive"]) == 2
    assert "--predictor" in capsys.readouterr().err
    assert main(["bench", "replay", "--curves", str(curve_file), "--policy", "asha",
                 "--delta", "0.1"]) == 2
    assert main(["bench", "predict", "--curves", str(curve_file), "--predictor", "nope"]) == 2
    with pytest.raises(CurveFileError):
        run_predict(CurveSet(np.array([[0.5, -1.0]]), np.array([2])), "baker")
