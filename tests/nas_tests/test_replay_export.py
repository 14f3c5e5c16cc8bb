"""``nas bench replay`` of a study's export: the export carries the study's
``[stopping]`` settings, the replay uses them when ``--policy`` is not given (flags override,
the output says which came from the file), and the curves it drops (a stopped trial's, one
with a missing value) are counted in the table and the JSON.  Off a terminal, the replay logs
progress on stderr and keeps stdout one JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _run_helpers import run_cli as _run

from nas.config import config_from_dict
from nas.curvefile import CurveSet, load_curves, save_curves
from nas.runner._resume import stored_config
from nas.storage import Storage
from nas.storage._records import TrialImport

ROOT = Path(__file__).resolve().parents[2]
T = 6


def _study(url: str, stopping: dict[str, object], *, n: int = 12) -> None:
    """Study 'q' as ``nas run`` stores it (its validated config): every third trial COMPLETE
    (T epochs), the others STOPPED after 2..T-1 epochs with a STOP decision."""
    cfg = config_from_dict({
        "study": {"name": "q", "seed": 0},
        "search": {"space": "seq_cells", "trials": n,
                   "objectives": [{"name": "val_accuracy", "direction": "maximize"}]},
        "task": {"name": "digits"},
        "training": {"max_epochs": T},
        "stopping": stopping})
    rng = np.random.default_rng(0)
    trials = []
    for i in range(n):
        c = rng.uniform(0.3, 0.95) * (1 - np.exp(-np.arange(1, T + 1) / rng.uniform(1, 3)))
        stopped = i % 3 != 0
        L = 2 + i % (T - 2) if stopped else T
        trials.append(TrialImport(
            number=i, state="STOPPED" if stopped else "COMPLETE", config={"x": i},
            value=float(c[L - 1]), epochs=L, curve=c[:L],
            decisions=({"step": L, "policy": cfg.stopping.policy, "action": "STOP",
                        "reason": "test"},) if stopped else ()))
    Storage(url).import_study("q", space="seq_cells", task="digits",
                              objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                              config=stored_config(cfg), trials=trials, status="COMPLETE",
                              action="test")


@pytest.fixture
def export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An asha study's export (``nas export --format npz``): 4 complete curves of 12."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    _study(url, {"policy": "asha", "audit": 0.2,
                 "options": {"grace_period": 2, "reduction_factor": 3}})
    path = tmp_path / "q.npz"
    assert _run(capsys, "export", "q", "--format", "npz", "-o", str(path),
                "--storage", url)[0] == 0
    return path


def test_the_export_carries_the_studys_stopping_settings(export: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    cs = load_curves(export)
    assert cs.stopping is not None
    assert cs.stopping["policy"] == "asha" and cs.stopping["audit"] == 0.2
    assert cs.stopping["options"] == {"grace_period": 2, "reduction_factor": 3}
    # an import keeps them for the next export
    url = f"sqlite:///{tmp_path / 'b.db'}"
    assert _run(capsys, "import", str(export), "--study", "back", "--storage", url)[0] == 0
    again = tmp_path / "again.npz"
    assert _run(capsys, "export", "back", "--format", "npz", "-o", str(again),
                "--storage", url)[0] == 0
    assert load_curves(again).stopping == cs.stopping


def test_replay_uses_the_files_settings_and_counts_the_dropped_curves(
        export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(export), "--seeds", "2",
                          "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["policy"] == "asha" and doc["audit"] == 0.2
    assert doc["options"]["grace_period"] == 2 and doc["options"]["reduction_factor"] == 3
    assert doc["from_file"] == ["policy", "grace_period", "reduction_factor", "audit",
                                "calibrate"]
    assert (doc["curves_used"], doc["curves_dropped"]) == (4, 8)
    assert doc["dropped_why"] == {"shorter_than_horizon": 8, "not_finite": 0}
    assert doc["groups"]["all"]["curves_used"] == 4 and doc["groups"]["all"]["curves_dropped"] == 8
    # a flag overrides the file's setting, the others still come from the file
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(export), "--seeds", "2",
                          "--eta", "2", "--audit", "0", "--json")
    doc = json.loads(out)
    assert doc["options"]["reduction_factor"] == 2 and doc["options"]["grace_period"] == 2
    assert doc["audit"] == 0 and doc["from_file"] == ["policy", "grace_period", "calibrate"]
    # the table says it too
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(export), "--seeds", "2",
                          "--eta", "2")
    assert code == 0, err
    assert "used 4 of 12 curves; dropped 8 (a replay needs full curves): 8 shorter than " \
           f"the horizon {T} (stopped or unfinished)" in out
    assert f"settings from {export} (the study's): policy asha, grace_period 2, audit 0.2" \
           in out and "from flags: reduction_factor 2" in out
    # with --policy the file's settings are not used, and the output says so
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(export), "--seeds", "1",
                          "--policy", "median")
    assert code == 0, err
    assert "not the study's" in out and "--policy was given" in out
    # a flag that does not apply to the file's policy names it
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(export), "--delta", "0.1")
    assert code == 2 and "--delta do(es) not apply to policy 'asha' (the policy of" in err


def test_dropped_curves_per_group_and_why(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    c = np.sort(rng.uniform(0, 1, (9, 5)), axis=1)
    lengths = np.array([5, 5, 5, 3, 5, 5, 2, 4, 5])
    for i, n in enumerate(lengths):
        c[i, n:] = np.nan
    c[4, 2] = np.nan  # a missing value inside a full-length curve
    task = np.asarray(["a"] * 6 + ["b"] * 3)
    c[8, 4] = np.nan  # group b: nothing left to replay
    lengths[8] = 4
    path = tmp_path / "d.npz"
    save_curves(path, CurveSet(c, lengths, task=task))
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(path), "--policy", "none",
                          "--seeds", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["curves_used"], doc["curves_dropped"]) == (4, 5)
    assert doc["dropped_why"] == {"shorter_than_horizon": 4, "not_finite": 1}
    assert doc["groups"]["a"]["curves_used"] == 4
    assert doc["groups"]["a"]["dropped_why"] == {"shorter_than_horizon": 1, "not_finite": 1}
    assert list(doc["groups"]) == ["a"] and doc["groups_dropped"]["b"]["curves_dropped"] == 3
    assert doc["from_file"] == [] and doc["file_stopping"] is None
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(path), "--policy", "none",
                          "--seeds", "1")
    assert "1 not finite (a missing value); groups with none to replay: b" in out
    # no --policy and no settings in the file: one line naming the flag
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(path))
    assert code == 2 and err.count("\n") == 1 and "pass --policy" in err
    # nothing to replay at all: said, exit 2
    only = tmp_path / "short.npz"
    save_curves(only, CurveSet(c[6:], lengths[6:], task=task[6:]))
    code, out, err = _run(capsys, "bench", "replay", "--curves", str(only), "--policy", "none")
    assert code == 2 and "no curve to replay: used 0 of 3 curves; dropped 3" in err


def test_a_bad_stopping_entry_is_one_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, curves=np.full((2, 3), 0.5), stopping=np.asarray("[1, 2]"))
    code, _, err = _run(capsys, "bench", "replay", "--curves", str(path))
    assert code == 2 and "'stopping' is not a JSON object" in err and err.count("\n") == 1
    np.savez(path, curves=np.full((2, 3), 0.5), stopping=np.asarray('{"policy": 3}'))
    code, _, err = _run(capsys, "bench", "replay", "--curves", str(path))
    assert code == 2 and "stopping.policy is 3, not a str" in err


SLOW_POLICY = '''
import time
from nas.interfaces import Decision

class Slow:
    def decide(self, trial, study):
        time.sleep(0.01)
        return Decision("CONTINUE")
'''


def test_a_slow_replay_logs_progress_off_a_terminal(export: Path, tmp_path: Path) -> None:
    """Through a pipe (no terminal): progress lines on stderr while it runs, stdout exactly one
    JSON document."""
    (tmp_path / "slowpol.py").write_text(SLOW_POLICY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
           "NAS_PROGRESS_EVERY_S": "0.3", "COLUMNS": "80"}
    res = subprocess.run([sys.executable, "-m", "nas", "bench", "replay", "--curves",
                          str(export), "--policy", "slowpol:Slow", "--seeds", "8", "--json"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # one document, nothing else on stdout
    assert doc["curves_used"] == 4 and doc["speedup"] == pytest.approx(1.0)
    lines = [x for x in res.stderr.splitlines() if x.startswith("nas bench replay: ")]
    assert lines[0].startswith("nas bench replay: ")  # at the first update
    assert lines[-1].startswith("nas bench replay: 8/8 (done)")
    between = [x for x in lines[1:-1] if "seed" in x and "ETA" in x]
    assert len(between) >= 2, res.stderr  # 8 x 4 x 5 decisions of 10 ms: about 1.6 s
