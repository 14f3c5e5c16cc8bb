"""``nas bench overhead`` end to end on a tiny setting (the shared Ray runtime): both sides run
every trial and epoch, the document adds up, progress is reported between runs.  Its timings
are not asserted (they belong to the benchmark, not to tests)."""

from __future__ import annotations

import pytest

from nas.bench.overhead import run_overhead

pytestmark = pytest.mark.usefixtures("ray_runtime")


def test_overhead_document_on_a_tiny_setting() -> None:
    calls: list[tuple[str, int, int]] = []
    doc = run_overhead(trials=3, epochs=4, reps=2, settle_s=0.0,
                       progress=lambda d, i, n: calls.append((d, i, n)))
    assert doc["plain_tune_epochs"] == doc["engine_epochs"] == 3 * 4
    assert len(doc["plain_tune_runs_s"]) == len(doc["engine_runs_s"]) == 2
    assert doc["plain_tune_median_s"] == pytest.approx(
        sum(doc["plain_tune_runs_s"]) / 2, abs=1e-3)  # the median of two is their mean
    assert doc["overhead_ratio"] == pytest.approx(
        doc["engine_median_s"] / doc["plain_tune_median_s"], abs=2e-3)
    for side in ("plain", "engine"):
        ph = doc["phases_median_s"][side]
        assert ph["startup"] > 0 and ph["trials"] > 0 and ph["finish"] >= 0
    assert doc["engine_driver_ms_per_trial"] > 0 and doc["engine_writer_cpu_ms_per_trial"] > 0
    assert "baker" in doc["predictive"]
    for name, pred in doc["predictive"].items():
        # at least 30 trials, every epoch through the hook (the last epoch's too)
        assert pred["trials"] == {"COMPLETE": 30} and pred["epochs"] == 30 * 4, name
        assert pred["hook_ms"]["n"] == 30 * 4 and pred["predictor_loaded"], name
        assert pred["hook_ms"]["p50"] <= pred["hook_ms"]["p99"] <= pred["hook_ms"]["max"]
    total = 2 + 2 * 2 + len(doc["predictive"])
    assert [(i, n) for _, i, n in calls] == [(i, total) for i in range(1, total + 1)]
    assert calls[0][0].startswith("overhead: warm-up")
