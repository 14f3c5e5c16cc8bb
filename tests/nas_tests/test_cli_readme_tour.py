"""A newcomer's first hour, without Ray: the README tour's commands exist as written, listings
fit 80 columns, the curve view says why a trial stopped, a curve file keeps STOPPED trials
stopped through export and import, ``python -m nas`` works, no file points at a missing
DESIGN.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _run_helpers import run_cli as _run

from nas.curvefile import CurveSet, load_curves, save_curves
from nas.storage import Storage

ROOT = Path(__file__).resolve().parents[2]


def _tour_module():  # benchmarks/ is not a package: load the tour script by path
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_tour", ROOT / "benchmarks" /
                                                  "readme_tour.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Study 'live': trial 0 stopped after step 2 with a forecast; trials 1, 2 complete, the
    best (0.9) finished before the decision; a long study name for the listing."""
    url = f"sqlite:///{tmp_path / 'f.db'}"
    st = Storage(url)
    sid = st.create_study("live", space="seq_cells", task="parity",
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                          config={})
    layers = [{"cell": "lstm", "hypernet": "none", "mip": False, "activation": "tanh"},
              {"cell": "attention", "hypernet": "static", "heads": 4, "pos": "rotary"}]
    cfg = {"hidden": 64, "norm": "pre", "residual": True, "loops": 1, "layers": layers,
           "optimizer": "adamw", "lr": 0.0021, "weight_decay": 1.3e-05, "dropout": 0.12,
           "grad_clip": 1.0, "curriculum": "none", "prune_sparsity": 0.25}
    for n, (vals, state) in enumerate([([0.5, 0.9], "COMPLETE"), ([0.4, 0.6], "COMPLETE")],
                                      start=1):
        tid = st.create_trial(sid, n, config=cfg, distributions={})
        st.add_points(tid, [(i + 1, v, float(i)) for i, v in enumerate(vals)])
        st.finish_trial(tid, state=state, value=vals[-1])
    tid = st.create_trial(sid, 0, config=cfg, distributions={})
    st.add_points(tid, [(1, 0.1, 1.0), (2, 0.12, 2.0)])
    st.add_forecast(tid, 2, predictor="pfn", horizon=9, mean=0.2, q05=0.05, q50=0.2,
                    q95=0.4, p_improve=0.002)
    st.add_decision(tid, 1, policy="predictive", action="CONTINUE", reason="min_epochs")
    st.add_decision(tid, 2, policy="predictive", action="STOP",
                    reason="P(y_T > best 0.9) = 0.002 < delta 0.01")
    st.finish_trial(tid, state="STOPPED", value=0.12)
    st.create_study("a-rather-long-study-name-2026", space="seq_cells", task="parity",
                    objectives=[{"name": "val_accuracy", "direction": "maximize"}], config={})
    return url


def test_curve_shows_best_and_reason(db: str, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "curve", "live", "0", "--storage", db, "--plot",
                        str(tmp_path / "c.png"))
    assert code == 0
    assert "best" in out and "0.9" in out
    assert "stopped after step 2 by predictive: P(y_T > best 0.9) = 0.002 < delta 0.01" in out
    assert (tmp_path / "c.png").stat().st_size > 1000
    code, out, _ = _run(capsys, "curve", "live", "0", "--storage", db, "--json")
    rows = json.loads(out)
    assert [r["best"] for r in rows] == [0.9, 0.9] and rows[1]["reason"].startswith("P(y_T")


def test_plot_has_whole_epochs_and_the_best_line(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.cli._plot import plot_curve
    from nas.interfaces import ForecastSummary
    from nas.storage import DecisionRecord, ForecastRecord

    seen = {}
    monkeypatch.setattr(plt, "close", lambda fig: seen.setdefault("fig", fig))
    fc = ForecastRecord(1, 2, ForecastSummary("pfn", 9, 0.2, 0.05, 0.2, 0.4, 0.002))
    dec = DecisionRecord(1, 2, "predictive", "STOP", "P < delta", None)
    plot_curve(tmp_path / "c.png", [(1, 0.1, None), (2, 0.12, None)], [fc], [dec],
               best=[(2, 0.9)])
    ax = seen["fig"].axes[0]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    labels = ax.get_legend_handles_labels()[1]
    assert any("study best" in x for x in labels)
    assert any("STOP after step 2 (predictive): P < delta" in x for x in labels)
    assert any("5-95%" in x for x in labels)  # one forecast still shows its interval


def test_listings_fit_80_columns(db: str, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = _run(capsys, "trials", "live", "--top", "10", "--storage", db)
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert max(len(x) for x in lines) <= 80
    assert len(lines) == 4 + 3 + 1  # title, header (3 lines), one line per trial, bottom rule
    assert "cells=lstm+atten..." in out and "P .002 < δ" in out  # summary cut to fit
    code, out, _ = _run(capsys, "trials", "live", "--json", "--storage", db)
    assert json.loads(out)[0]["params"]["layers"][1]["pos"] == "rotary"  # the full config
    code, out, _ = _run(capsys, "studies", "--storage", db)
    assert code == 0 and "a-rather-long-study-name-2026" in out


def test_stopped_state_and_stop_step_survive_export_and_import(
        db: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    npz = tmp_path / "x.npz"
    assert _run(capsys, "export", "live", "--format", "npz", "--curves", "-o", str(npz),
                "--storage", db)[0] == 0
    cs = load_curves(npz)
    assert list(cs.states) == ["STOPPED", "COMPLETE", "COMPLETE"]
    assert list(cs.stop_steps) == [2, 0, 0]
    assert _run(capsys, "import", str(npz), "--study", "back", "--storage", db)[0] == 0
    st = Storage(db)
    rec = st.get_study("back")
    assert [t.state for t in st.trials(rec.id)] == ["STOPPED", "COMPLETE", "COMPLETE"]
    stop = [d for d in st.decisions(st.trial_id(rec.id, 0)) if d.action == "STOP"]
    assert [d.step for d in stop] == [2]
    again = tmp_path / "y.npz"
    assert _run(capsys, "export", "back", "--format", "npz", "-o", str(again),
                "--storage", db)[0] == 0
    cs2 = load_curves(again)
    assert list(cs2.states) == list(cs.states) and list(cs2.stop_steps) == [2, 0, 0]


def test_curve_file_state_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = np.full((2, 3), 0.5)
    save_curves(tmp_path / "ok.npz", CurveSet(c, np.array([3, 2]),
                                              states=np.array(["COMPLETE", "STOPPED"]),
                                              stop_steps=np.array([0, 2])))
    assert list(load_curves(tmp_path / "ok.npz").states) == ["COMPLETE", "STOPPED"]
    np.savez(tmp_path / "bad.npz", curves=c, state=np.array(["DONE", "COMPLETE"]))
    np.savez(tmp_path / "bad2.npz", curves=c, stop_step=np.array([9, 0]))
    for name, needle in (("bad", "'DONE'"), ("bad2", "stop_step")):
        code, _, err = _run(capsys, "import", str(tmp_path / f"{name}.npz"), "--study", name,
                            "--storage", f"sqlite:///{tmp_path / 'v.db'}")
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_readme_tour_commands_exist_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Every `nas ...` line of the README tour names a command and only options it has (the
    full run after `make demo` is benchmarks/readme_tour.py)."""
    lines, py = _tour_module().blocks((ROOT / "README.md").read_text())
    assert lines[0].startswith("source .venv/bin/activate")
    assert any(x.startswith("export NAS_STORAGE=sqlite:///demo.db") for x in lines)
    assert "sqlite:///demo.db" in py and "resume=True" in py
    for line in lines:
        if not line.startswith("nas "):
            continue
        words = line.split()[1:]
        cmd = [w for w in words[:2] if re.fullmatch(r"[a-z]+", w)]
        code, out, _ = _run(capsys, *cmd[:2], "--help")
        if code != 0 or "Usage" not in out:  # a one-word command with an argument
            code, out, _ = _run(capsys, cmd[0], "--help")
        assert code == 0, line
        for opt in (w for w in words if w.startswith("--")):
            assert opt in out, (line, opt)
    makefile = (ROOT / "Makefile").read_text()
    assert "DEMO_DB ?= demo.db" in makefile  # what the tour's NAS_STORAGE points at


def test_python_dash_m_nas() -> None:
    res = subprocess.run([sys.executable, "-m", "nas", "studies", "--help"], capture_output=True,
                         text=True, check=False, cwd=ROOT)
    assert res.returncode == 0 and "Usage: nas studies" in res.stdout


def test_no_reference_to_a_missing_design_md() -> None:
    assert not (ROOT / "DESIGN.md").exists()
    hits = []
    for p in ROOT.rglob("*"):
        if p.is_file() and p.suffix in (".py", ".md", ".toml", ".ini", ".cfg") \
                and ".venv" not in p.parts and ".git" not in p.parts \
                and p.name != Path(__file__).name \
                and "DESIGN.md" in p.read_text(errors="replace"):
            hits.append(str(p.relative_to(ROOT)))
    assert hits == []


def test_spaces_check_threads_default_one(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        code, out, _ = _run(capsys, "spaces", "check", "seq_cells", "--task", "parity",
                            "--samples", "1", "--json")
        assert code == 0, out
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
