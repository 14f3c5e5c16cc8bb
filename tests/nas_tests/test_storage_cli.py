"""The query CLI: every command in every format, and every error case (exit 2, DB unchanged)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _run_helpers import run_cli as _run
from _storage_helpers import storage_url_fixture

from nas.cli import main
from nas.curvefile import load_curves, save_curves
from nas.storage import Storage
from nas.testing.storage import synthetic_study_curves

storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL


@pytest.fixture
def db(storage_url: str, tmp_path: Path) -> str:
    """A database holding study 'syn' (30 imported curves) with one trial that has forecasts."""
    src = tmp_path / "syn.npz"
    save_curves(src, synthetic_study_curves(n=30, horizon=10, seed=4))
    assert main(["import", str(src), "--study", "syn", "--storage", storage_url]) == 0
    st = Storage(storage_url)
    sid = st.create_study("live", space="seq_cells", task="parity",
                          objectives=[{"name": "val_loss", "direction": "minimize"}], config={})
    tid = st.create_trial(sid, 0, config={"cell": "gru"}, distributions={})
    st.add_points(tid, [(1, 0.9, 1.0), (2, 0.7, 2.0), (3, 0.6, 3.0)])
    st.add_forecast(tid, 2, predictor="pfn", horizon=10, mean=0.5, q05=0.3, q50=0.5, q95=0.7,
                    p_improve=0.2)
    st.add_forecast(tid, 3, predictor="pfn", horizon=10, mean=0.45, q05=0.35, q50=0.45,
                    q95=0.55, p_improve=0.01)
    st.add_decision(tid, 3, policy="predictive", action="STOP", reason="P(improve)=0.01 < 0.05")
    st.finish_trial(tid, state="STOPPED", value=0.6)
    t1 = st.create_trial(sid, 1, config={"cell": "lstm"}, distributions={})
    st.add_points(t1, [(1, 0.8, 1.0), (2, 0.4, 2.0)])
    st.finish_trial(t1, state="COMPLETE", value=0.4)
    return storage_url


def _snapshot(url: str) -> tuple[list[str], int, int]:
    from sqlalchemy import text

    st = Storage(url)
    with st.engine.connect() as conn:
        n_t = conn.execute(text("select count(*) from trials")).scalar_one()
        n_p = conn.execute(text("select count(*) from curve_points")).scalar_one()
    return st.study_names(), n_t, n_p


def test_studies_all_formats(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "studies", "--storage", db, "--json")
    assert code == 0
    doc = json.loads(out)
    by_name = {d["name"]: d for d in doc}
    assert by_name["syn"]["trials"] == 30 and by_name["syn"]["complete"] == 30
    assert by_name["live"]["direction"] == "minimize" and by_name["live"]["best_value"] == 0.4
    assert by_name["live"]["stopped"] == 1 and by_name["live"]["space"] == "seq_cells"
    code, out, _ = _run(capsys, "studies", "--storage", db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["name"] for r in rows} == {"syn", "live"}
    code, out, _ = _run(capsys, "studies", "--storage", db)
    assert code == 0 and "syn" in out and "live" in out


def test_trials_all_formats_and_options(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "trials", "syn", "--storage", db, "--json")
    doc = json.loads(out)
    assert code == 0 and [d["number"] for d in doc] == list(range(30))
    assert set(doc[0]) == {"number", "state", "value", "epochs", "stop_step", "stop_reason",
                           "group", "node", "device", "threads", "params"}
    assert set(doc[0]["params"]) == {"lr", "layers"}
    code, out, _ = _run(capsys, "trials", "syn", "--storage", db, "--top", "5", "--json")
    top = json.loads(out)
    values = sorted((d["value"] for d in doc if d["value"] is not None), reverse=True)[:5]
    assert [d["value"] for d in top] == values
    # direction respected: the minimize study's best is the lowest value
    code, out, _ = _run(capsys, "trials", "live", "--storage", db, "--sort", "value", "--json")
    assert [d["number"] for d in json.loads(out)] == [1, 0]
    code, out, _ = _run(capsys, "trials", "live", "--storage", db, "--state", "stopped", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["number"] for r in rows] == ["0"] and rows[0]["state"] == "STOPPED"
    assert json.loads(rows[0]["params"]) == {"cell": "gru"}
    code, out, _ = _run(capsys, "trials", "syn", "--storage", db, "--top", "3")
    assert code == 0 and "number" in out and "lr=" in out
    code, out, _ = _run(capsys, "trials", "syn", "--storage", db, "--top", "0", "--json")
    assert code == 0 and json.loads(out) == []


def test_trials_multi_objective_lists_values(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    st = Storage(db)
    sid = st.create_study("mo", space="s", task="t", config={},
                          objectives=[{"name": "acc", "direction": "maximize"},
                                      {"name": "params", "direction": "minimize"}])
    for k, (acc, size) in enumerate([(0.5, 100.0), (0.9, 300.0)]):
        tid = st.create_trial(sid, k, config={}, distributions={})
        st.finish_trial(tid, state="COMPLETE", values=[acc, size])
    code, out, _ = _run(capsys, "trials", "mo", "--storage", db, "--top", "1", "--json")
    assert code == 0 and json.loads(out) == [
        {"number": 1, "state": "COMPLETE", "value": 0.9, "values": [0.9, 300.0], "epochs": None,
         "stop_step": None, "stop_reason": None, "group": None, "node": None, "device": None,
         "threads": None, "params": {}}]


def test_curve_with_forecasts_and_plot(db: str, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    code, out, _ = _run(capsys, "curve", "live", "0", "--storage", db, "--json", "--plot", str(png))
    assert code == 0
    rows = json.loads(out)
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[2]["value"] == 0.6
    assert rows[1]["q05"] == 0.3 and rows[2]["p_improve"] == 0.01 and rows[0]["mean"] is None
    assert rows[2]["action"] == "STOP"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    code, out, _ = _run(capsys, "curve", "syn", "2", "--storage", db, "-f", "csv")
    header = out.splitlines()[0].split(",")
    assert code == 0 and header == ["step", "value", "wall_time"]  # no forecasts stored
    code, out, _ = _run(capsys, "curve", "syn", "2", "--storage", db)
    assert code == 0 and "step" in out


def test_export_formats_and_npz_round_trip(db: str, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "export", "syn", "--storage", db, "--format", "json", "--curves")
    doc = json.loads(out)
    assert code == 0 and len(doc) == 30 and len(doc[0]["curve"]) == doc[0]["epochs"]
    code, out, _ = _run(capsys, "export", "syn", "--storage", db)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 30 and "curve" not in rows[0]
    dest = tmp_path / "exported.csv"
    code, out, _ = _run(capsys, "export", "live", "--storage", db, "--curves", "-o", str(dest))
    assert code == 0 and out == "" and "curve" in dest.read_text().splitlines()[0]
    npz = tmp_path / "syn_out.npz"
    code, _, _ = _run(capsys, "export", "syn", "--storage", db, "--format", "npz", "-o", str(npz))
    assert code == 0
    a, b = load_curves(tmp_path / "syn.npz"), load_curves(npz)
    assert np.array_equal(a.curves, b.curves, equal_nan=True) and a.configs == b.configs
    # and it imports back
    code, out, _ = _run(capsys, "import", str(npz), "--study", "again", "--storage", db, "--json")
    assert code == 0 and json.loads(out)["trials"] == 30


def test_db_info_and_upgrade(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "db", "info", "--storage", db, "--json")
    info = json.loads(out)
    assert code == 0 and info["status"] == "ok" and info["trials"] == 32 and info["studies"] == 2
    code, out, _ = _run(capsys, "db", "upgrade", "--storage", db)
    assert code == 0 and "already at revision" in out
    code, out, _ = _run(capsys, "db", "info", "--storage", db, "-f", "csv")
    assert code == 0 and out.startswith("key,value")


@pytest.mark.parametrize("args, message", [
    (["trials", "nope"], "known studies: live, syn"),
    (["trials", "syn", "--top", "-1"], "--top = -1"),
    (["trials", "syn", "--state", "weird"], "--state 'WEIRD'"),
    (["trials", "syn", "--sort", "speed"], "--sort"),
    (["curve", "syn", "999"], "no trial 999"),
    (["curve", "nope", "1"], "known studies"),
    (["export", "nope"], "known studies"),
    (["export", "syn", "--format", "npz"], "needs -o"),
    (["export", "syn", "--format", "xml"], "csv, json or npz"),
    (["import", "/nonexistent/file.npz", "--study", "x"], "no such file"),
    (["import", "{junk}", "--study", "x"], "not a curve file"),
    (["import", "{syn}", "--study", "syn"], "already exists"),
    (["import", "{syn}", "--study", "x", "--direction", "up"], "--direction"),
])
def test_errors_exit_2_one_line_db_unchanged(db: str, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, args: list[str], message: str) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"definitely not a zip file")
    args = [a.replace("{junk}", str(junk)).replace("{syn}", str(tmp_path / "syn.npz")) for a in args]
    before = _snapshot(db)
    code, out, err = _run(capsys, *args, "--storage", db)
    assert code == 2
    assert out == ""
    assert err.startswith("nas: error:") and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert _snapshot(db) == before


def test_malformed_and_unreachable_urls(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "studies", "--storage", "nonsense")
    assert code == 2 and "malformed storage URL" in err
    code, _, err = _run(capsys, "trials", "x", "--storage", "postgresql+psycopg://u:hunter2@127.0.0.1:1/db")
    assert code == 2 and "u:***@127.0.0.1:1" in err and "hunter2" not in err


def test_subprocess_exit_codes_and_no_heavy_imports(tmp_path: Path) -> None:
    """The real console script: exit code 2 on a user error, and queries never load torch/ray."""
    db = f"sqlite:///{tmp_path}/sub.db"
    src = tmp_path / "syn.npz"
    save_curves(src, synthetic_study_curves(n=30, horizon=10, seed=4))
    assert main(["import", str(src), "--study", "syn", "--storage", db]) == 0
    env = {**os.environ, "NAS_STORAGE": db}
    bad = subprocess.run([sys.executable, "-c", "from nas.cli import _console_main; _console_main()",
                          "trials", "nope"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("nas: error: no study 'nope'")
    probe = ("import sys; from nas.cli import main; code = main(['trials', 'syn', '--json']); "
             "heavy = [m for m in ('torch', 'ray', 'alembic') if m in sys.modules]; "
             "print(heavy, file=sys.stderr); sys.exit(code)")
    ok = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                        timeout=120, check=False)
    assert ok.returncode == 0 and len(json.loads(ok.stdout)) == 30
    assert ok.stderr.strip().endswith("[]"), ok.stderr


def test_trials_table_shows_nested_configs_literally(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A config's summary reaches the table literally (brackets were once eaten as rich
    markup); the table shows the live view's one-line summary (cells first), --json the
    whole config."""
    monkeypatch.setenv("COLUMNS", "200")
    url = f"sqlite:///{tmp_path / 'n.db'}"
    st = Storage(url)
    sid = st.create_study("nested", space="seq_cells", task="parity",
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                          config={})
    tid = st.create_trial(sid, 0, config={"layers": [{"cell": "gru", "k": 2}, {"cell": "tcn"}],
                                          "tag": "[bold]x[/bold]"}, distributions={})
    st.finish_trial(tid, state="COMPLETE", value=0.5)
    code, out, _ = _run(capsys, "trials", "nested", "--storage", url)
    flat = " ".join(out.split())  # the cell wraps over lines
    for part in ("cells=gru+tcn", "tag=[bold]x[/bold]"):
        assert part.replace(" ", "") in flat.replace(" ", "").replace("│", ""), (part, out)
    assert code == 0
