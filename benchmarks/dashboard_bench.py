"""Timed benchmark (not a test): the dashboard's study page of a 10,000-trial SQLite study.

Builds (once, cached in --db) a study of N trials as the runner writes them: configs, Optuna
distributions, a curve of up to E epochs per trial, some STOPPED with forecasts and decisions,
some FAILED; then times each page and JSON endpoint through the ASGI app (Starlette's test
client: no network, so the numbers are the server's work) and prints a table.

    python benchmarks/dashboard_bench.py [--trials 10000] [--epochs 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import warnings
from pathlib import Path


def build(url: str, n: int, epochs: int) -> int:
    import datetime as dt

    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
        distribution_to_json,
    )

    from nas.storage import StepRecord, Storage

    st = Storage(url)
    sid = st.create_study("bench-10k", space="seq_cells", task="parity",
                          objectives=[{"name": "val_acc", "direction": "maximize"}],
                          config={"training": {"max_epochs": epochs}})
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "hidden": IntDistribution(16, 256),
             "cell": CategoricalDistribution(["gru", "lstm", "rnn", "mingru"])}
    djson = {k: distribution_to_json(d) for k, d in dists.items()}
    rng = random.Random(0)
    t0 = time.perf_counter()
    with st.batch("building the benchmark study"):
        for i in range(n):
            params = {"lr": 10 ** rng.uniform(-4, -1), "hidden": rng.randint(16, 256),
                      "cell": rng.choice(["gru", "lstm", "rnn", "mingru"])}
            cfg = {**params, "layers": [{"cell": params["cell"]}], "optimizer": "adam"}
            tid = st.create_trial(sid, i, config=cfg,
                                  distributions={"params": params, "distributions": djson})
            ceiling = rng.uniform(0.3, 0.95)
            rate = rng.uniform(0.1, 1.0)
            kind = rng.random()
            length = epochs if kind < 0.4 else (1 if kind > 0.97 else rng.randint(2, epochs - 1))
            pts = [(s, ceiling * (1 - math.exp(-rate * s)), float(s)) for s in range(1, length + 1)]
            steps = [StepRecord(tid, s, v, w, decision={
                         "policy": "predictive", "action": "CONTINUE",
                         "reason": "P(improve) high", "threshold": 0.8}) for s, v, w in pts]
            st.record_steps(steps)
            if kind > 0.97:
                st.finish_trial(tid, state="FAILED", error="RuntimeError: diverged")
            elif length < epochs:
                st.add_forecast(tid, length, predictor="pfn", horizon=epochs, mean=ceiling,
                                q05=ceiling - 0.1, q50=ceiling, q95=ceiling + 0.05,
                                p_improve=0.01)
                st.add_decision(tid, length, policy="predictive", action="STOP",
                                reason="P(improve)=0.010 < 0.05", threshold=0.8)
                st.finish_trial(tid, state="STOPPED", value=pts[-1][1])
            else:
                st.finish_trial(tid, state="COMPLETE", value=pts[-1][1])
    with st.transaction("stamping") as conn:  # spread finish times over a day of wall time
        from sqlalchemy import text

        conn.execute(text("update trials set finished = datetime(:t0, '+' || (number * 8) || "
                          "' seconds') where study_id = :sid"),
                     {"t0": str(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)), "sid": sid})
    print(f"built {n} trials in {time.perf_counter() - t0:.1f} s")
    return sid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", type=Path, default=Path("/tmp/nas-dashboard-bench.db"))
    args = ap.parse_args()
    url = f"sqlite:///{args.db}"

    from nas.storage import Storage

    st = Storage(url)
    names = st.study_names()
    if "bench-10k" in names and len(st.trials(st.get_study("bench-10k").id)) == args.trials:
        sid = st.get_study("bench-10k").id
    else:
        st.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        sid = build(url, args.trials, args.epochs)
        st = Storage(url)
    from sqlalchemy import text

    with st.engine.connect() as conn:
        counts = {t: conn.execute(text(f"select count(*) from {t}")).scalar_one()
                  for t in ("trials", "curve_points", "forecasts", "decisions")}
    print("rows:", ", ".join(f"{k} {v}" for k, v in counts.items()))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from nas.dashboard import create_app

    client = TestClient(create_app(st))
    paths = [
        ("studies page", "/"),
        ("study page (leaderboard, best first)", f"/study/{sid}"),
        ("study page, sorted by epochs, page 100", f"/study/{sid}?sort=epochs&page=100"),
        ("study page, filter state+text", f"/study/{sid}?state=COMPLETE&q=lstm"),
        ("progress JSON (both best-so-far plots)", f"/api/study/{sid}/progress"),
        ("importances JSON (first call: fANOVA)", f"/api/study/{sid}/importances"),
        ("importances JSON (cached)", f"/api/study/{sid}/importances"),
        ("trial page", f"/study/{sid}/trial/5000"),
        ("trial JSON", f"/api/study/{sid}/trial/5000"),
        ("compare JSON (10 curves)", f"/api/study/{sid}/curves?t=" +
         ",".join(str(i) for i in range(0, 10000, 1000))),
    ]
    print(f"{'request':45s} {'median ms':>10s} {'max ms':>8s} {'KiB':>7s}")
    for label, path in paths:
        times = []
        size = 0
        reps = 1 if "first call" in label else args.repeat
        for _ in range(reps):
            t = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (path, r.status_code)
            size = len(r.content)
        print(f"{label:45s} {statistics.median(times):10.1f} {max(times):8.1f} "
              f"{size / 1024:7.1f}")


if __name__ == "__main__":
    main()
