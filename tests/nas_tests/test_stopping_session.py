"""The one stopping session: the engine (``nas run``'s driver state, driven without Ray), the
plain-Optuna pruner and ``nas bench replay`` all drive :class:`nas.policies.StoppingSession`,
so on the same recorded curves, in the same order, they stop the same trials at the same
epochs.  Also: the session's own bookkeeping (restarts, failures, audit, listeners) and
``--explain``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from _run_helpers import toy_sections

from nas.bench import replay_group
from nas.config import load_config
from nas.integrations import PolicyPruner
from nas.plugins import build_plugins
from nas.policies import (
    ASHAPolicy,
    InlineRefits,
    MedianPolicy,
    StopAudit,
    StoppingSession,
    make_policy,
)
from nas.runner._engine import Engine
from nas.runner._resume import prepare_study
from nas.storage import Storage

T = 8


def recorded_curves(n: int = 24, seed: int = 5) -> np.ndarray:
    """A fixed set of learning curves: saturating learners of varied speed and ceiling, some
    flat at chance, one late bloomer."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, T + 1)
    rows = []
    for i in range(n):
        if i % 5 == 3:
            rows.append(0.5 + 0.01 * rng.standard_normal(T))
        else:
            top, speed = rng.uniform(0.55, 0.95), rng.uniform(0.2, 1.5)
            rows.append(0.5 + (top - 0.5) * (1 - np.exp(-speed * t)) + 0.01 * rng.standard_normal(T))
    rows[17] = np.where(t < 6, 0.5, 0.97)  # flat, then the best of all
    return np.clip(np.asarray(rows), 0.0, 1.0)


def engine_stops(curves: np.ndarray, policy: str, options: dict, tmp_path: Path,
                 predictor: str | None) -> list[int]:
    top = ("delta", "epsilon", "min_epochs")  # [stopping] keys, not policy options
    stopping: dict = {"policy": policy, "audit": 0,
                      "options": {k: v for k, v in options.items() if k not in top},
                      **{k: v for k, v in options.items() if k in top}}
    if predictor:
        stopping["predictor"] = predictor
    cfg = load_config(toy_sections("same", trials=len(curves), max_epochs=T, sampler="random",
                                   extra={"stopping": stopping}))
    plugins = build_plugins(cfg)
    st = Storage(f"sqlite:///{tmp_path / 'e.db'}")
    sid, _ = prepare_study(cfg, st, False, plugins.spec)
    eng = Engine(cfg, st, sid, plugins)
    eng.wait_refit()
    out = []
    try:
        for i, row in enumerate(curves):
            key = f"k{i}"
            assert eng.next_trial(key) is not None
            stop = T
            for e, v in enumerate(row, 1):
                if eng.on_result(key, {"val_accuracy": float(v), "epoch": e}):
                    stop = e
                    break
            eng.on_complete(key)
            eng.wait_refit()
            out.append(stop)
    finally:
        eng.close()
    return out


def pruner_stops(curves: np.ndarray, policy: str, options: dict,
                 predictor: str | None) -> list[int]:
    out: list[int] = []
    study = optuna.create_study(direction="maximize", pruner=PolicyPruner(
        policy, horizon=T, policy_options=options, predictor=predictor))

    def objective(trial: optuna.Trial) -> float:
        row = curves[trial.number]
        for e, v in enumerate(row, 1):
            trial.report(float(v), e)
            if trial.should_prune():
                out.append(e)
                raise optuna.TrialPruned()
        out.append(T)
        return float(row[-1])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=len(curves))
    return out


def replay_stops(curves: np.ndarray, policy: str, options: dict,
                 predictor: str | None) -> list[int]:
    from nas.registry import create

    records: list[dict] = []
    replay_group(curves, None, "g", make_policy(policy, options), np.arange(len(curves)),
                 None if predictor is None else create("predictor", predictor),
                 explain=records)
    return [r["stop_step"] or T for r in records]


@pytest.mark.parametrize("policy,options,predictor", [
    ("asha", {"grace_period": 1, "reduction_factor": 3}, None),
    ("median", {"n_startup_trials": 3}, None),
    ("predictive", {"delta": 0.05, "epsilon": 0.0}, "pfn"),
])
def test_engine_pruner_and_replay_stop_the_same_trials(policy: str, options: dict,
                                                       predictor: str | None,
                                                       tmp_path: Path) -> None:
    curves = recorded_curves()
    eng = engine_stops(curves, policy, options, tmp_path, predictor)
    pru = pruner_stops(curves, policy, options, predictor)
    rep = replay_stops(curves, policy, options, predictor)
    assert eng == pru == rep
    assert any(s < T for s in eng), "the policy stopped nothing: the comparison proves little"


def test_session_bookkeeping_restart_fail_audit_and_listeners() -> None:
    seen: list[tuple[int, int, str]] = []
    seed = next(k for k in range(100) if StopAudit(0.5, seed=k).u(1) < 0.3)
    s = StoppingSession(MedianPolicy(n_startup_trials=1), horizon=4,
                        audit=StopAudit(0.5, seed=seed))
    s.listen(lambda n, e, x, d: seen.append((n, e, d.action)))
    for e, v in enumerate([0.5, 0.6, 0.7, 0.8], 1):
        s.report(0, e, v)
    s.complete(0)
    assert s.mirror.best_value == pytest.approx(0.8)
    # a trial far below the median: the policy stops it, the audit lets it run on
    d = s.report(1, 1, 0.1)
    assert d.action == "AUDIT" and d.threshold == pytest.approx(0.8) and s.running_on(1)
    assert s.report(1, 2, 0.1).reason.startswith("stop audit")
    assert s.mirror.audited == {1: 1}
    # a restarted trial (epoch 1 again) is cut back first
    s.report(1, 1, 0.2)
    assert s.mirror.curves[1] == [0.2]
    s.fail(1)
    assert 1 not in s.mirror.curves and not s.running_on(1)
    assert seen[:4] == [(0, 1, "CONTINUE"), (0, 2, "CONTINUE"), (0, 3, "CONTINUE"),
                        (0, 4, "CONTINUE")]
    assert (1, 1, "AUDIT") in seen


def test_a_learning_predictor_is_refit_on_the_schedule_inline() -> None:
    fits: list[int] = []

    class Counting:
        name = "counting"
        learns_from_curves = True

        def fit(self, curves):
            fits.append(len(curves))
            return self

        def predict(self, curves, horizon):
            from nas.interfaces import Curve  # noqa: F401

            class F:
                mean = np.full(len(curves), 0.5)

                def quantile(self, q):
                    return np.full(len(curves), q)

                def cdf(self, y):
                    return np.clip(np.broadcast_to(y, (len(curves),)), 0, 1)

                def logpdf(self, y):
                    return np.zeros(len(curves))
            return F()

    s = StoppingSession(make_policy("predictive", {"delta": 1e-9}), horizon=3,
                        new_predictor=Counting, refits=InlineRefits())
    for n in range(11):
        for e in (1, 2, 3):
            s.report(n, e, 0.5)
        s.complete(n)
    assert fits == [0, 5, 10]  # the first fit, then 5 and 10 completions
    assert s.refit_count == 3


def test_a_policy_without_a_predictor_never_builds_one() -> None:
    built: list[int] = []
    s = StoppingSession(ASHAPolicy(), horizon=3, new_predictor=lambda: built.append(1))
    s.report(0, 1, 0.5)
    assert built == [] and s.predictor is None


def test_replay_explain_names_the_lost_late_bloomer(tmp_path: Path) -> None:
    """Under a rule that sees only the prefix, the planted late bloomer (flat until epoch 6,
    then the best) is stopped; --explain names it."""
    curves = recorded_curves()
    path = tmp_path / "c.npz"
    np.savez(path, curves=curves.astype(np.float32))
    out = subprocess.run([sys.executable, "-m", "nas", "bench", "replay", "--curves", str(path),
                          "--policy", "median", "--startup", "3", "--seeds", "2", "--explain",
                          "--json"], check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["audit"] == 0.0  # the peers run without the stop audit
    assert doc["explain"], "median should lose the late bloomer"
    for e in doc["explain"]:
        assert e["row"] == 17 and e["final"] == pytest.approx(0.97)
        assert e["stop_step"] is not None and e["stop_step"] < 6


def _audit_run(seed: int, horizon: int = 30, n: int = 400, rate: float = 0.05):
    """``n`` would-be stops at random steps; early stops are wrong far more often (so the
    inclusion probability, which is low for early, costly stops, is tied to the outcome)."""
    rng = np.random.default_rng(1000 + seed)
    audit = StopAudit(rate, seed=seed, horizon=horizon)
    from nas.interfaces import Decision

    wrong_all, audited = [], []
    for i in range(n):
        t = int(rng.integers(1, horizon))
        audit.consumed += t
        audit.trials += 1
        wrong = bool(rng.random() < (0.4 if t <= 5 else 0.02))
        wrong_all.append(wrong)
        d = audit.review(Decision("STOP", "x"), i, t)
        if d.action == "AUDIT":
            from nas.policies._audit import inclusion_from_reason

            p = inclusion_from_reason(d.reason)
            assert p is not None and 0 < p <= 0.5
            audited.append((wrong, 1.0 / p))
            audit.consumed += horizon - t  # the audited trial runs on
    return audit, np.mean(wrong_all), audited


def test_the_audit_spends_at_most_its_share_of_the_epochs() -> None:
    for seed in range(20):
        audit, _, audited = _audit_run(seed)
        assert audited, "the audit audited nothing"
        assert audit.spent <= audit.rate * audit.consumed + 3 * audit.horizon


def test_the_weighted_false_stop_estimate_is_unbiased() -> None:
    from nas.policies import false_stop_estimate

    est, plain, truth = [], [], []
    for seed in range(300):
        _, true_rate, audited = _audit_run(seed)
        fs = false_stop_estimate(audited)
        est.append(fs["rate"])
        plain.append(np.mean([w for w, _ in audited]))
        truth.append(true_rate)
        lo, hi = fs["ci95"]
        assert lo <= fs["rate"] <= hi
    bias = abs(np.mean(est) - np.mean(truth))
    assert bias < 0.01
    # the unweighted share would be biased: early (often wrong) stops are audited less
    assert abs(np.mean(plain) - np.mean(truth)) > 3 * bias


@pytest.mark.parametrize("policy", ["predictive", "regret"])
def test_a_study_reading_predictor_gets_the_study_as_context(policy: str) -> None:
    from predictors import HistogramForecast

    seen: list = []

    class Reader:
        name = "reader"
        learns_from_curves = False
        reads_study = True

        def fit(self, curves):
            return self

        def predict(self, curves, horizon, context=None):
            seen.append(context)
            n = len(curves)
            return HistogramForecast(np.linspace(0, 1, 3), np.full((n, 2), 0.5))

    s = StoppingSession(make_policy(policy), horizon=4, new_predictor=Reader)
    for e, v in enumerate([0.5, 0.6, 0.7, 0.8], 1):
        s.report(0, e, v, features=np.array([1.0]))
    s.complete(0)
    seen.clear()  # the warm-up forecast
    s.report(1, 1, 0.3)
    ctx = seen[-1]
    assert ctx is not None and len(ctx) == 1  # trial 0, not the trial asked about
    assert list(ctx.curves[0].values) == [0.5, 0.6, 0.7, 0.8] and ctx.complete == (True,)
    assert list(ctx.curves[0].features) == [1.0] and ctx.horizon == 4
