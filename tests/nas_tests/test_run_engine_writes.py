"""The engine's database writes, driven directly (no Ray): trial rows are created by the writer
thread, writes are batched into one transaction per window, a bad write in a batch loses only
itself, and a trial row that cannot be created stops the run."""

from __future__ import annotations

import time

import pytest
from _run_helpers import drive_trial, toy_sections
from _storage_helpers import storage_url_fixture

from nas.config import load_config
from nas.errors import StorageError
from nas.plugins import build_plugins
from nas.runner._engine import Engine
from nas.runner._resume import prepare_study
from nas.runner._writer import FinishTrial, TrialRef
from nas.storage import Storage

EPOCHS = 5
storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL


def _engine(url: str, trials: int = 6) -> tuple[Engine, Storage, int]:
    cfg = load_config(toy_sections("writes", trials=trials, policy="median",
                                   max_epochs=EPOCHS, sampler="random"))
    plugins = build_plugins(cfg)
    st = Storage(url)
    sid, _ = prepare_study(cfg, st, False, plugins.spec)
    return Engine(cfg, st, sid, plugins), st, sid


def test_rows_points_and_decisions_arrive_batched(storage_url: str) -> None:
    eng, st, sid = _engine(storage_url)
    eng.writer.flush_s = 10.0  # everything below lands in one window
    curves = {f"k{i}": [0.1 * i + 0.01 * e for e in range(1, EPOCHS + 1)] for i in range(6)}
    for key, values in curves.items():
        drive_trial(eng, key, values)
    assert st.trials(sid) == []  # nothing written yet: the window is still open
    eng.close()
    assert eng.writer.batches == 1 and not eng.writer.errors
    recs = st.trials(sid, with_curves=True)
    assert [r.number for r in recs] == list(range(6))
    for r, values in zip(recs, curves.values()):
        assert r.state == "COMPLETE" and r.node == "host:abc"
        assert (r.device, r.threads) == ("cpu", 2)  # where it ran, from the first result
        assert r.curve == pytest.approx(values) and r.epochs == EPOCHS
        # a decision row per epoch (the last one's is the engine's own)
        ds = st.decisions(r.id)
        assert [d.step for d in ds] == list(range(1, EPOCHS + 1))
        assert {d.policy for d in ds} == {"median"} and ds[-1].reason == "last epoch"


def test_a_bad_write_in_a_batch_loses_only_itself(storage_url: str) -> None:
    """On PostgreSQL an error aborts the whole transaction: the batch is retried write by
    write."""
    eng, st, sid = _engine(storage_url)
    eng.writer.flush_s = 10.0
    drive_trial(eng, "a", [0.2] * EPOCHS)
    eng.writer.put(FinishTrial(TrialRef(10**9), state="COMPLETE", epochs=1))  # no such trial
    drive_trial(eng, "b", [0.3] * EPOCHS)
    eng.close()
    assert len(eng.writer.errors) == 1 and "finish_trial" in eng.writer.errors[0]
    recs = st.trials(sid, with_curves=True)
    assert [(r.number, r.state, len(r.curve or [])) for r in recs] == [
        (0, "COMPLETE", EPOCHS), (1, "COMPLETE", EPOCHS)]


def test_a_trial_row_that_cannot_be_created_stops_the_run(storage_url: str) -> None:
    eng, st, sid = _engine(storage_url)
    eng.writer.flush_s = 0.0
    # another writer takes trial number 0 first: the engine's insert of it violates the
    # unique (study, number) constraint in the database
    Storage(st.url).create_trial(sid, 0, config={}, distributions={})
    drive_trial(eng, "a", [0.2] * EPOCHS)
    for _ in range(500):  # the writer thread gets to it within flush_s
        if eng.writer.create_failures:
            break
        time.sleep(0.01)
    with pytest.raises(StorageError, match="creating a trial failed"):
        eng.next_trial("b")
    eng.close()
    assert any("record_step" in e for e in eng.writer.errors)  # its points had nowhere to go
