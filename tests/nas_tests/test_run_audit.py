"""The stop audit in a real run: audited trials are stored (AUDIT decisions with a threshold),
run to the horizon, and the study's false-stop rate is shown by `nas studies` and `nas trials`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _run_helpers import toy_sections, write_study

from nas.cli import main
from nas.runner import run_study
from nas.storage import Storage

pytestmark = pytest.mark.usefixtures("ray_runtime")


def test_audited_trials_are_stored_and_shown(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    path = write_study(tmp_path / "s.toml", toy_sections(
        "audit", trials=16, policy="asha", max_epochs=6,
        extra={"stopping": {"audit": 0.5, "options": {"grace_period": 1,
                                                      "reduction_factor": 2}}}))
    run_study(path, storage=url, ray_storage=str(tmp_path / "ray"))
    st = Storage(url)
    rec = st.get_study("audit")
    recs = {r.number: r for r in st.trials(rec.id, with_curves=True)}
    audits = st.audits(rec.id)
    assert audits, "no stop was audited at rate 0.5"
    assert any(r.state == "STOPPED" for r in recs.values()), "every stop was audited"
    for number, (step, outcome) in audits.items():
        r = recs[number]
        ds = st.decisions(r.id)
        audit = [d for d in ds if d.action == "AUDIT"]
        assert len(audit) == 1 and audit[0].step == step and audit[0].threshold is not None
        assert "STOP" not in {d.action for d in ds}
        assert r.state == "COMPLETE" and r.epochs == 6  # ran on to the horizon
        assert outcome == ("false stop" if r.value > audit[0].threshold else "right stop")
    fs = st.false_stops(rec.id)
    assert fs["audited"] == len(audits) and fs["pending"] == 0
    assert fs["false_stops"] == sum(o == "false stop" for _, o in audits.values())
    lo, hi = fs["ci95"]
    assert 0.0 <= lo <= fs["rate"] <= hi <= 1.0

    capsys.readouterr()
    assert main(["studies", "--storage", url, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["false_stops"] == fs
    assert main(["trials", "audit", "--storage", url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["number"]: r["audit"] for r in rows if r["audit"]} == {
        n: o for n, (_, o) in audits.items()}
    assert main(["trials", "audit", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert f"false stops {fs['false_stops']}/{fs['audited']}" in out
    assert main(["studies", "--storage", url]) == 0
    assert f"{fs['false_stops']}/{fs['audited']}" in capsys.readouterr().out


def test_audit_zero_stores_no_audit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    path = write_study(tmp_path / "s.toml", toy_sections(
        "noaudit", trials=8, policy="asha", max_epochs=6, extra={"stopping": {"audit": 0.0}}))
    run_study(path, storage=url, ray_storage=str(tmp_path / "ray"))
    st = Storage(url)
    rec = st.get_study("noaudit")
    assert st.audits(rec.id) == {}
    assert st.false_stops(rec.id)["audited"] == 0
    assert any(r.state == "STOPPED" for r in st.trials(rec.id))
