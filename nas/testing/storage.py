"""Storage conformance checks and test helpers.

Third parties (a new back end, a fork of the schema) and our own tests call
:func:`check_storage` with a database URL: it exercises the write API that the runner uses
and the read API that users see, and raises :class:`~nas.testing.ConformanceError` naming the
first broken promise.  :func:`check_concurrent_writers` starts processes that write points for different
trials of one study at once.  :func:`postgres_database` gives a test its own throwaway
PostgreSQL database; :func:`synthetic_study_curves` makes small, seeded curve files (tests and
``make demo`` must not depend on downloaded data).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nas.errors import ConfigError, StorageError, StudyNotFoundError
from nas.interfaces import Action, Direction, StudyStatus, TrialState
from nas.testing._conformance import ConformanceError, require

__all__ = [
    "check_concurrent_writers",
    "check_storage",
    "postgres_database",
    "synthetic_study_curves",
    "write_points_worker",
]


def _expect(cond: bool, message: str, check: str = "check_storage") -> None:
    require(check, cond, message)


def synthetic_study_curves(
    n: int = 40,
    horizon: int = 20,
    *,
    seed: int = 0,
    tasks: tuple[str, ...] = ("task_a", "task_b"),
    ragged: bool = True,
    nan_fraction: float = 0.0,
) -> Any:
    """A seeded :class:`nas.curvefile.CurveSet` of saturating learning curves in [0, 1].

    Each curve is ``a - b * (t + 1) ** -c`` plus noise (a pow3 law, the family of Domhan et
    al. 2015), clipped to [0, 1]; configs hold ``lr`` and ``layers``; features mirror them;
    with ``ragged`` a third of the curves end early (NaN after the end); ``nan_fraction`` of
    the observed values are replaced by NaN (diverged evaluations).
    """
    import json

    import numpy as np

    from nas.curvefile import CurveSet

    rng = np.random.default_rng(seed)
    t = np.arange(1, horizon + 1, dtype=np.float64)
    a = rng.uniform(0.3, 0.95, n)
    b = rng.uniform(0.2, 0.6, n)
    c = rng.uniform(0.3, 1.5, n)
    curves = a[:, None] - b[:, None] * t[None, :] ** -c[:, None]
    curves += rng.normal(0.0, 0.01, curves.shape)
    curves = np.clip(curves, 0.0, 1.0)
    lengths = np.full(n, horizon, dtype=np.int64)
    if ragged:
        short = rng.random(n) < 1 / 3
        lengths[short] = rng.integers(1, horizon, short.sum())
    for i in range(n):
        curves[i, lengths[i]:] = np.nan
    if nan_fraction > 0:
        holes = (rng.random(curves.shape) < nan_fraction) & np.isfinite(curves)
        curves[holes] = np.nan
    lr = 10 ** rng.uniform(-4, -1, n)
    layers = rng.integers(1, 4, n)
    configs = [{"lr": float(lr[i]), "layers": int(layers[i])} for i in range(n)]
    # round-trip through JSON so that configs compare equal after an import/export
    configs = [json.loads(json.dumps(cfg)) for cfg in configs]
    feats = np.stack([np.log10(lr), layers.astype(np.float64)], axis=1)
    task = np.asarray([tasks[i % len(tasks)] for i in range(n)], dtype=object)
    return CurveSet(curves, lengths, configs, task, feats, ["log10_lr", "layers"],
                    Direction.MAXIMIZE.value,
                    "synthetic")


@contextmanager
def postgres_database(admin_url: str, prefix: str = "nas_test") -> Iterator[str]:
    """Give a test an empty PostgreSQL namespace on the server of ``admin_url``: a fresh schema
    (instant, unlike CREATE DATABASE) that the yielded URL puts first on the ``search_path``;
    the schema and everything in it is dropped afterwards.  Tests use it so that none collide.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        base = make_url(admin_url)
        url = base.update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        finally:
            admin.dispose()


def check_storage(url: str) -> None:
    """Exercise the :class:`~nas.storage.Storage` contract on ``url`` (an empty database or one
    without the study names used here).  Raises :class:`~nas.testing.ConformanceError` on the
    first failure."""
    from nas.storage import StepRecord, Storage, open_study

    st = Storage.open(url, create=True)
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    sid = st.create_study(name, space="s", task="t",
                          objectives=[{"name": "acc", "direction": Direction.MAXIMIZE},
                                      {"name": "params", "direction": Direction.MINIMIZE}],
                          config={"seed": 0, "nested": {"a": [1, 2]}})
    _expect(name in st.study_names(), "a created study is listed by study_names()")
    rec = st.get_study(name)
    _expect(rec.id == sid and rec.direction == Direction.MAXIMIZE,
            "get_study returns the created study")
    _expect(rec.config == {"seed": 0, "nested": {"a": [1, 2]}}, "study config round-trips")
    try:
        st.create_study(name, space="s", task="t", objectives=[{"name": "acc"}], config={})
    except ConfigError:
        pass
    else:
        raise ConformanceError("check_storage", "creating a study whose name exists must raise ConfigError")
    _expect(st.create_study(name, space="s", task="t", objectives=[{"name": "acc"}], config={},
                            exist_ok=True) == sid, "exist_ok returns the existing id")
    try:
        st.get_study(name + "-missing")
    except StudyNotFoundError as exc:
        _expect(name in str(exc), "StudyNotFoundError lists the known studies")
    else:
        raise ConformanceError("check_storage", "an unknown study must raise StudyNotFoundError")

    _expect(st.next_number(sid) == 0, "next_number of an empty study is 0")
    t0 = st.create_trial(sid, 0, config={"lr": 0.1, "cell": "gru"},
                         distributions={"lr": {"name": "FloatDistribution", "low": 1e-4, "high": 1.0}},
                         features={"lr": 0.1}, group="g", node="node-1")
    t1 = st.create_trial(sid, 1, config={"lr": 0.01}, distributions={})
    st.add_points(t0, [(1, 0.1, 0.5), (2, float("nan"), 1.0), (3, 0.3, 1.5)])
    st.add_points(t0, [(3, 0.9, 9.0), (4, float("inf"), 2.0), (4, 0.4, 2.0)])  # 3 exists
    _expect(st.curve(t0) == [(1, 0.1), (2, None), (3, 0.3), (4, None)],
            f"points: duplicates ignored, NaN/inf missing; got {st.curve(t0)}")
    st.add_points(t1, [(1, 0.2, None)])
    st.add_forecast(t0, 4, predictor="p", horizon=10, mean=0.5, q05=0.2, q50=0.5, q95=0.8,
                    p_improve=float("nan"))
    st.add_decision(t0, 4, policy="predictive", action=Action.STOP, reason="P(improve) < delta")
    fc = st.forecasts(t0)
    _expect(len(fc) == 1 and fc[0].summary.horizon == 10 and fc[0].summary.p_improve is None,
            "forecast stored, NaN as missing")
    _expect([d.action for d in st.decisions(t0)] == [Action.STOP], "decision stored")
    st.finish_trial(t0, state=TrialState.STOPPED, values=[0.3, 1000.0])
    running = st.trials(sid, states=[TrialState.RUNNING])
    _expect([t.number for t in running] == [1], "trial 1 is still RUNNING")
    _expect(st.mark_interrupted(sid) == 1, "mark_interrupted marks the one RUNNING trial")
    trials = st.trials(sid, with_curves=True)
    _expect([t.state for t in trials] == [TrialState.STOPPED, TrialState.INTERRUPTED],
            "states after finishing")
    a = trials[0]
    _expect(a.value == 0.3 and a.values == [0.3, 1000.0] and a.epochs == 4,
            f"value, values and epochs (highest step) stored; got {a.value}, {a.values}, {a.epochs}")
    _expect(a.group == "g" and a.node == "node-1" and a.features == {"lr": 0.1},
            "group, node and features stored")
    _expect(a.config == {"lr": 0.1, "cell": "gru"} and a.distributions["lr"]["low"] == 1e-4,
            "config and distributions round-trip")
    _expect(a.curve == [0.1, None, 0.3, None], "trials(with_curves=True) carries the curve")
    _expect(a.started is not None and a.finished is not None, "start and end times set")
    _expect(st.next_number(sid) == 2, "next_number is one more than the highest number")
    t9 = st.create_trial(sid, 9, config={}, distributions={})
    st.record_step(t9, 1, 0.5, 0.1, forecast={"predictor": "p", "horizon": 5, "mean": 0.6,
                                              "q05": 0.4, "q50": 0.6, "q95": 0.8,
                                              "p_improve": 0.3},
                   decision={"policy": "predictive", "action": "continue", "reason": "ok"})
    st.record_step(t9, 1, 0.9)  # the stored step wins
    _expect(st.curve_points(t9) == [(1, 0.5, 0.1)], "record_step stores the point once")
    _expect([(f.step, f.summary.q95) for f in st.forecasts(t9)] == [(1, 0.8)],
            "record_step forecast")
    _expect([d.action for d in st.decisions(t9)] == [Action.CONTINUE], "record_step decision")
    t10 = st.create_trial(sid, 10, config={}, distributions={})
    st.record_steps([StepRecord(t9, 2, 0.6),
                     StepRecord(t10, 1, 0.1, 0.5, decision={"policy": "asha", "action": Action.STOP,
                                                            "reason": "r"}),
                     StepRecord(t10, 1, 0.7, 0.5)])
    _expect(st.curve(t9) == [(1, 0.5), (2, 0.6)] and st.curve(t10) == [(1, 0.1)],
            "record_steps: points of several trials, each once")
    _expect([d.action for d in st.decisions(t10)] == [Action.STOP], "record_steps decision")
    st.finish_trial(t10, state=TrialState.STOPPED)
    st.finish_trial(t9, state=TrialState.FAILED, error="boom")
    _expect(st.trials(sid, states=[TrialState.FAILED])[0].error == "boom", "error text stored")
    t2 = st.create_trial(sid, 2, config={"lr": 0.5}, distributions={})
    st.add_points(t2, [(1, 0.6, None), (2, 0.7, None)])
    st.finish_trial(t2, state=TrialState.COMPLETE, value=0.7)
    h = open_study(name, url)
    _expect(h.best_trial is not None and h.best_trial.number == 2, "best trial: best COMPLETE one")
    _expect(sorted(h.curves) == [0, 1, 2, 9, 10] and len(h.curves[0]) == 4, "curves by trial number")
    try:
        st.create_trial(sid, 2, config={}, distributions={})
    except StorageError:
        pass
    else:
        raise ConformanceError("check_storage", "a duplicate (study, number) must be refused")
    st.set_study_status(sid, StudyStatus.COMPLETE)
    _expect(st.get_study(name).status == StudyStatus.COMPLETE, "study status updated")
    st.set_study_evaluation(sid, metric="test_acc", seeds=2, top=1, wall_s=1.0,
                            results=[{"rank": 1, "number": 2, "mean": 0.7, "runs": []}])
    ev = st.study_evaluation(sid)
    _expect(ev is not None and ev.metric == "test_acc" and ev.seeds == 2
            and ev.results[0]["mean"] == 0.7, "evaluation stored and read back")
    st.delete_study(name)
    _expect(name not in st.study_names(), "delete_study removes the study")
    st.close()


def write_points_worker(url: str, study: str, number: int, steps: int, batch: int) -> int:
    """Process body of :func:`check_concurrent_writers`: create trial ``number`` and write its
    ``steps`` points in batches of ``batch`` (each batch twice, to hit the conflict path)."""
    from nas.storage import Storage

    st = Storage.open(url, create=True)
    sid = st.get_study(study).id
    tid = st.create_trial(sid, number, config={"worker": number}, distributions={})
    for lo in range(1, steps + 1, batch):
        pts = [(s, number + s / 1000.0, float(s)) for s in range(lo, min(steps + 1, lo + batch))]
        st.add_points(tid, pts)
        st.add_points(tid, pts[: max(1, len(pts) // 2)])
    st.finish_trial(tid, state=TrialState.COMPLETE)
    st.close()
    return tid


_WRITERS = "check_concurrent_writers"


def check_concurrent_writers(url: str, *, processes: int = 4, steps: int = 200, batch: int = 7) -> None:
    """``processes`` processes write points for different trials of one study at once;
    afterwards every point must be there exactly once with the value written."""
    from nas.storage import Storage

    st = Storage.open(url, create=True)
    name = f"concurrent-{uuid.uuid4().hex[:8]}"
    st.create_study(name, space="s", task="t", objectives=[{"name": "v"}], config={})
    ctx = mp.get_context("spawn")  # no inherited connections
    with ctx.Pool(processes) as pool:
        pool.starmap(write_points_worker, [(url, name, k, steps, batch) for k in range(processes)])
    trials = st.trials(st.get_study(name).id, with_curves=True)
    _expect(len(trials) == processes, f"{processes} trials written, found {len(trials)}", _WRITERS)
    for t in trials:
        pts = st.curve(t.id)
        _expect([s for s, _ in pts] == list(range(1, steps + 1)),
                f"trial {t.number}: every step exactly once", _WRITERS)
        _expect(all(v is not None and math.isclose(v, t.number + s / 1000.0) for s, v in pts),
                f"trial {t.number}: values as written", _WRITERS)
        _expect(t.state == TrialState.COMPLETE and t.epochs == steps,
                f"trial {t.number} finished", _WRITERS)
    st.close()
