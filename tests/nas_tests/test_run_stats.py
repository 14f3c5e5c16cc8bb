"""The engine's run statistics, driven directly (no Ray): :meth:`Engine.stats` is a frozen
snapshot of the counters (later trials do not change it), and the progress view renders from it;
a resumed engine's snapshot starts from the stored trials."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from _run_helpers import drive_trial, toy_sections
from rich.console import Console

from nas.cli._progress import ProgressView
from nas.config import load_config
from nas.plugins import build_plugins
from nas.runner import RunStats
from nas.runner._engine import Engine
from nas.runner._resume import prepare_study
from nas.storage import Storage

EPOCHS = 4


def _engine(url: str, resume: bool = False) -> Engine:
    cfg = load_config(toy_sections("stats", trials=3, policy="none", max_epochs=EPOCHS,
                                   sampler="random"))
    plugins = build_plugins(cfg)
    st = Storage(url)
    sid, _ = prepare_study(cfg, st, resume, plugins.spec)
    return Engine(cfg, st, sid, plugins)


def test_stats_is_a_snapshot_of_the_run(tmp_path: Path) -> None:
    eng = _engine(f"sqlite:///{tmp_path / 's.db'}")
    drive_trial(eng, "a", [0.1, 0.2, 0.3, 0.4])
    first = eng.stats()
    assert eng.next_trial("b") is not None
    live = eng.stats()
    for e, v in enumerate([0.5, 0.6, 0.7, 0.9], 1):
        eng.on_result("b", {"val_accuracy": v, "epoch": e})
    eng.on_complete("b")
    eng.close()
    end = eng.stats()
    assert isinstance(first, RunStats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.epochs_run = 0  # type: ignore[misc]
    # taken before trial b: unchanged by it
    assert (first.counts["COMPLETE"], first.running, first.done) == (1, 0, 1)
    assert first.epochs_run == EPOCHS
    assert (first.best_number, first.best_value) == (0, pytest.approx(0.4))
    assert live.running == 1 and live.launched == 2 and live.budget == 3
    assert end.counts == {"COMPLETE": 2} and end.done == 2 and end.running == 0
    assert (end.best_number, end.best_value) == (1, pytest.approx(0.9))
    assert end.epochs_run == 2 * EPOCHS and end.nodes == {"host:abc": 1}
    assert len(end.hook_ms) == 2 * EPOCHS and end.hook_ms_p99 is not None
    assert end.forecasts == 0 and end.writes_failed == 0 and end.write_batches >= 1

    # the view renders from the snapshot
    out = io.StringIO()
    view = ProgressView(Console(file=out, width=200, force_terminal=False))
    view.attach(eng)
    view.stop()
    Console(file=out, width=200).print(view.render())
    text = out.getvalue()
    assert "study stats" in text and "complete 2" in text and "best 0.9 (#1)" in text
    assert f"epochs {2 * EPOCHS}" in text


def test_a_resumed_engine_counts_the_stored_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    eng = _engine(url)
    drive_trial(eng, "a", [0.1, 0.2, 0.3, 0.8])
    eng.close()
    again = _engine(url, resume=True).stats()
    assert again.counts == {"COMPLETE": 1} and again.budget == 2 and again.launched == 0
    assert again.epochs_run == EPOCHS
    assert (again.best_number, again.best_value) == (0, pytest.approx(0.8))
