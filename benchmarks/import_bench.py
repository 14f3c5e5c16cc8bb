"""Import and query timings of the study database (a benchmark, not a test).

    python benchmarks/import_bench.py ../shared/data/taskset_dev.npz            # SQLite
    unshare -n bash .ci/in-netns.sh .venv/bin/python benchmarks/import_bench.py \
        ../shared/data/taskset_dev.npz --postgres                              # both back ends

For each back end: first the latency of the runner's per-epoch writes; then import FILE (one transaction), then time the queries that users run, each as
a fresh ``nas`` process (cold start included, as a user sees it): ``nas studies``, ``nas trials
STUDY`` (json and table), ``nas trials STUDY --top 10``, plus ``open_study(...).trials`` (every
curve) and ``nas export --format npz``.  Then a synthetic 10,000-trial study for the "nas
trials on 10,000 trials in under a second" target.  Without FILE only the synthetic part runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path


def _cli(url: str, *args: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one `nas ...` process, output discarded.  The CPU time (user +
    system of the child) is the fairer figure on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from nas.cli import _console_main; _console_main()",
                    *args, "--storage", url], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _best_of(n: int, fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    runs = [fn() for _ in range(n)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _hook_writes(st, label: str, n: int = 300) -> None:  # type: ignore[no-untyped-def]
    """Latency of the runner's per-epoch writes (docs/runner.md: the hook has 20 ms in all)."""
    import statistics

    sid = st.create_study(f"hook-{label}", space="s", task="t", objectives=[{"name": "v"}],
                          config={})
    tid = st.create_trial(sid, 0, config={}, distributions={})
    fc = {"predictor": "pfn", "horizon": 50, "mean": 0.5, "q05": 0.1, "q50": 0.5, "q95": 0.9,
          "p_improve": 0.2}
    dec = {"policy": "predictive", "action": "CONTINUE", "reason": "p=0.2 >= 0.05"}
    for what, call in (
        ("add_points (1 point)", lambda s: st.add_points(tid, [(s, 0.5, 1.0)])),
        ("record_step + forecast + decision", lambda s: st.record_step(
            tid, n + s, 0.5, 1.0, forecast=fc, decision=dec)),
    ):
        times = []
        for s in range(1, n + 1):
            t = time.perf_counter()
            call(s)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"{label:10s} hook    {what:34s} p50 {statistics.median(times):5.2f} ms, "
              f"p99 {times[int(0.99 * len(times)) - 1]:5.2f} ms ({n} calls)")


def bench(url: str, label: str, file: Path | None, tmp: Path, repeat: int) -> None:
    from nas.curvefile import save_curves
    from nas.storage import Storage, export_curves, import_curves, open_study
    from nas.testing.storage import synthetic_study_curves

    st = Storage(url)
    _hook_writes(st, label)
    jobs: list[tuple[str, Path]] = []
    if file is not None:
        jobs.append(("real", file))
    syn = tmp / "synthetic_10k.npz"
    if not syn.exists():
        save_curves(syn, synthetic_study_curves(n=10_000, horizon=51, seed=0, ragged=False))
    jobs.append(("syn10k", syn))
    for name, path in jobs:
        study = f"bench-{name}"
        t, c = time.perf_counter(), time.process_time()
        res = import_curves(st, path, study)
        t_import, c_import = time.perf_counter() - t, time.process_time() - c
        print(f"{label:10s} {name:7s} import {res.trials} curves / {res.points} points: "
              f"{t_import:6.2f} s wall, {c_import:6.2f} s CPU (this process; the server's not counted)")
        rows = [
            ("nas studies", ["studies"]),
            ("nas trials --json", ["trials", study, "--json"]),
            ("nas trials (table)", ["trials", study]),
            ("nas trials --top 10", ["trials", study, "--top", "10"]),
        ]
        for what, cli_args in rows:
            wall, cpu = _best_of(repeat, lambda a=cli_args: _cli(url, *a))
            print(f"{label:10s} {name:7s} {what:28s} {wall:6.3f} s wall, {cpu:6.3f} s CPU "
                  f"(best of {repeat}, process start included)")
        t = time.perf_counter()
        n = len(open_study(study, url).trials)
        print(f"{label:10s} {name:7s} {'open_study().trials (curves)':28s} "
              f"{time.perf_counter() - t:6.3f} s ({n} trials)")
        t = time.perf_counter()
        export_curves(st, study, tmp / f"{study}.npz")
        print(f"{label:10s} {name:7s} {'export npz':28s} {time.perf_counter() - t:6.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", type=Path, help="curve file to import (e.g. taskset_dev.npz)")
    ap.add_argument("--postgres", action="store_true",
                    help="also PostgreSQL at $NAS_TEST_POSTGRES_URL (a fresh schema)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, ExitStack() as stack:
        tmp = Path(d)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        print(f"bare python start: {time.perf_counter() - t:.3f} s")
        bench(f"sqlite:///{tmp / 'bench.db'}", "sqlite", args.file, tmp, args.repeat)
        if args.postgres:
            admin = os.environ.get("NAS_TEST_POSTGRES_URL")
            if not admin:
                sys.exit("--postgres needs NAS_TEST_POSTGRES_URL (run under .ci/in-netns.sh)")
            from nas.testing.storage import postgres_database

            url = stack.enter_context(postgres_database(admin, prefix="nas_bench"))
            bench(url, "postgresql", args.file, tmp, args.repeat)


if __name__ == "__main__":
    main()
