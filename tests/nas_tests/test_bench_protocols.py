"""``nas bench predict`` and ``nas bench replay`` on small synthetic curve files: the documented
JSON, the protocol's arithmetic (cutoffs, means, regret), and user errors on stderr with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.bench import (
    check_predict_document,
    check_replay_document,
    cutoff_length,
    run_predict,
    run_replay,
)
from nas.cli import main
from nas.curvefile import CurveSet, save_curves
from nas.errors import CurveFileError
from nas.testing.predictors import synthetic_curve_set


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
    tail = doc["tail_calibration"]["0.2"]
    assert tail["n"] == 72 and sum(b["n"] for b in tail["bins"]) == 72
    assert 0 <= tail["lost_at_0.01"] <= tail["lost_at_0.05"] <= 1


def test_tail_calibration_bins() -> None:
    from nas.bench._predict import tail_calibration

    p = np.array([0.0005, 0.0005, 0.2, 0.2, 0.2, 0.5])
    hit = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    doc = tail_calibration(p, hit)
    first, sixth = doc["bins"][0], doc["bins"][5]
    assert first["n"] == 2 and first["freq"] == 0.0
    assert sixth["n"] == 3 and sixth["freq"] == pytest.approx(1 / 3)
    assert doc["stopped_at_0.05"] == pytest.approx(1 / 3) and doc["lost_at_0.05"] == 0.0


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
    # overhead: options are checked before Ray starts
    for opt in ("--trials", "--concurrency", "--reps"):
        assert main(["bench", "overhead", opt, "0", "--json"]) == 2
        out = capsys.readouterr()
        assert out.out == "" and f"{opt} = 0" in out.err and "Traceback" not in out.err


def test_overhead_phases_split_the_wall_time() -> None:
    from types import SimpleNamespace

    from nas.bench.overhead import _phases

    ph = _phases(10.0, 15.0, SimpleNamespace(first_start=11.5, last_end=14.0))
    assert ph == {"startup": 1.5, "trials": 2.5, "finish": 1.0}
    # no trial ever started: all of it is start-up
    assert _phases(0.0, 2.0, SimpleNamespace(first_start=None, last_end=None)) == {
        "startup": 2.0, "trials": 0.0, "finish": 0.0}


class _Gauss:
    """A forecast without ``take``: exercises the replay's generic row view."""

    def __init__(self, mean: np.ndarray, sd: float) -> None:
        self._m, self._s = mean, sd

    @property
    def mean(self) -> np.ndarray:
        return self._m

    def quantile(self, q: float) -> np.ndarray:
        from scipy.stats import norm

        return np.clip(self._m + self._s * norm.ppf(q), 0, 1)

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        return norm.cdf((np.asarray(y) - self._m) / self._s)

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        return norm.logpdf((np.asarray(y) - self._m) / self._s) - np.log(self._s)


class _Trend:
    """Extrapolates the last slope; learns nothing (``learns_from_curves = False``)."""

    learns_from_curves = False

    def fit(self, curves: object) -> _Trend:
        return self

    def predict(self, curves: list[object], horizon: int) -> _Gauss:
        m = []
        for c in curves:
            v = c.values  # type: ignore[attr-defined]
            slope = v[-1] - v[-2] if len(v) > 1 else 0.0
            m.append(np.clip(v[-1] + slope * (horizon - len(v)) * 0.3, 0, 1))
        return _Gauss(np.array(m), 0.1)


def _reference_replay(curves: np.ndarray, feats: np.ndarray, policy: object,
                      order: np.ndarray, predictor: object) -> tuple[int, float]:
    """The replay protocol written plainly: no batching, no cache, the real predictor."""
    from nas.bench import add_trial
    from nas.interfaces import Curve, TrialView
    from nas.policies import StudyCurves, should_refit

    T = curves.shape[1]
    study = StudyCurves()
    study.set_predictor(predictor)  # type: ignore[arg-type]
    consumed, done = 0, []
    for pos, i in enumerate(order):
        stop = T
        for t in range(1, T):
            view = TrialView(pos, curves[i, :t], T, feats[i], "g")
            if policy.decide(view, study).stop:  # type: ignore[attr-defined]
                stop = t
                break
        consumed += stop
        add_trial(study, curves[i, :stop], complete=stop == T)
        if stop == T:
            done.append(i)
            if getattr(predictor, "learns_from_curves", True) and should_refit(len(done)):
                predictor.fit([Curve(curves[j], feats[j], "g") for j in done])  # type: ignore
    return consumed, float(study.best_value or 0.0)


@pytest.mark.parametrize("which", ["baker", "trend"])
def test_replay_cache_gives_the_plain_protocol_result(which: str) -> None:
    from nas.bench import replay_group
    from nas.policies import PredictivePolicy
    from predictors.regression import BakerPredictor

    cs = synthetic_curve_set(n=70, horizon=10, groups=1, seed=4)
    assert cs.config_features is not None
    order = np.random.default_rng(0).permutation(70)

    def make() -> object:
        return BakerPredictor(min_curves=5) if which == "baker" else _Trend()

    pol = PredictivePolicy(delta=0.2)
    expect = _reference_replay(cs.curves, cs.config_features, pol, order, make())
    run = replay_group(cs.curves, cs.config_features, "g", pol, order, make())  # type: ignore[arg-type]
    got = (run.consumed, run.best)
    assert got == expect
    assert got[0] < 70 * 10  # something was stopped
