"""Faults through the real CLI: query commands open storage read-only (an empty
file or database is "not a nas database" and stays as it was), stored control characters never
reach the terminal, every user error exits 2 with one line (also `.py` study files that raise,
exit, loop or start threads), and the tests keep Tune's files under their tmp dirs."""

from __future__ import annotations

import ast
import gc
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _run_helpers import toy_sections, write_study
from _storage_helpers import PG_ENV
from sqlalchemy import create_engine, inspect, text

from nas.cli import main
from nas.config import config_from_dict
from nas.curvefile import CurveSet, save_curves
from nas.storage import Storage

CLI = [sys.executable, "-c", "from nas.cli import _console_main; _console_main()"]
ESC = "\x1b[31m"


def _cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd, check=False)


def _one_line(err: str, *needles: str) -> None:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import(tmp: Path, url: str, study: str, **extra: Any) -> None:
    src = tmp / f"{study}.npz"
    cs = CurveSet(curves=np.array([[0.1, 0.2, 0.3], [0.2, 0.25, np.nan]]),
                  lengths=np.array([3, 2]), **extra)
    save_curves(src, cs)
    assert main(["import", str(src), "--study", study, "--storage", url]) == 0


# ------------------------------------------------------------------ 7. read-only means read-only
QUERIES = [["studies"], ["trials", "x"], ["curve", "x", "0"], ["export", "x"],
           ["export", "x", "--format", "json"], ["delete", "x", "--yes"]]


def test_empty_sqlite_file_is_not_a_nas_database_and_stays_empty(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    url = f"sqlite:///{db}"
    for argv in QUERIES:
        proc = _cli(*argv, "--storage", url)
        assert proc.returncode == 2 and proc.stdout == "", (argv, proc.stderr)
        _one_line(proc.stderr, "not a nas database")
    proc = _cli("dashboard", "--storage", url, "--port", "0", timeout=60)
    assert proc.returncode == 2
    _one_line(proc.stderr, "not a nas database")
    assert db.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]  # no -wal, no -shm


def test_query_commands_leave_a_nas_database_unchanged(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "nas.db"
    url = f"sqlite:///{db}"
    _import(tmp_path, url, "s")
    gc.collect()  # the import's engine closes
    with sqlite3.connect(db) as conn:  # everything in the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _digest(db)
    for argv in (["studies"], ["trials", "s"], ["curve", "s", "0"], ["export", "s"],
                 ["db", "info"]):
        proc = _cli(*argv, "--storage", url)
        assert proc.returncode == 0, (argv, proc.stderr)
    assert _digest(db) == before
    st = Storage(url, read_only=True)
    with pytest.raises(Exception, match="readonly|read-only|read only"):
        st.create_study("w", space="a", task="b", objectives=[{"name": "v"}], config={})
    assert st.study_names() == ["s"]


def test_empty_postgres_database_gets_no_tables() -> None:
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(reason=f"{PG_ENV} is not set (run under .ci/in-netns.sh for PostgreSQL)")
    from nas.testing.storage import postgres_database

    with postgres_database(admin) as url:
        for argv in QUERIES[:4]:
            proc = _cli(*argv, "--storage", url)
            assert proc.returncode == 2, (argv, proc.stderr)
            _one_line(proc.stderr, "not a nas database")
        engine = create_engine(url)
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        engine.dispose()


# ------------------------------------------------------------------ 8. control characters
def test_stored_control_characters_never_reach_the_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    _import(tmp_path, url, "esc", configs=[{"note": f"{ESC}red\x07", "n": 1}, {"n": 2}],
            task=np.array([f"{ESC}group", "plain\x9bx"]))
    capsys.readouterr()
    for argv in (["trials", "esc"], ["trials", "esc", "--format", "csv"],
                 ["export", "esc"], ["export", "esc", "--curves"], ["curve", "esc", "0"],
                 ["studies", "--format", "csv"]):
        assert main([*argv, "--storage", url]) == 0, argv
        out = capsys.readouterr().out
        assert not any(ch in out for ch in "\x1b\x07\x9b"), (argv, out)
    assert main(["trials", "esc", "--format", "csv", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "\\x1b[31mgroup" in out and "plain\\x9bx" in out  # escaped, not dropped
    assert main(["trials", "esc", "--json", "--storage", url]) == 0  # JSON escapes them itself
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["group"] == f"{ESC}group"


# ------------------------------------------------------------------ 9. user errors: exit 2, one line
def _evaluable(tmp_path: Path) -> str:
    """A study as `nas run` stores it (a run configuration) with one COMPLETE trial."""
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    cfg = config_from_dict(toy_sections("ev", trials=1, policy="none"))
    st = Storage(url)
    sid = st.create_study("ev", space=cfg.search.space, task=cfg.task.name,
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                          config=cfg.to_dict())
    tid = st.create_trial(sid, 0, config={"width": 4}, distributions={})
    st.finish_trial(tid, state="COMPLETE", value=0.5)
    st.close()
    return url


def test_evaluate_bad_out_and_top(tmp_path: Path) -> None:
    url = _evaluable(tmp_path)
    existing = tmp_path / "weights"
    existing.write_text("keep me")
    cases = [(["--out", str(existing)], "is a file"),
             (["--out", "/proc/nope"], "/proc/nope"),
             (["--top", str(10**23)], "--top"),
             (["--top", "1e23"], "--top"),
             (["--seeds", str(10**9)], "--seeds"),
             (["--epochs", str(10**12)], "--epochs")]
    for extra, needle in cases:
        t0 = time.monotonic()
        proc = _cli("evaluate", "ev", "--storage", url, *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        _one_line(proc.stderr, needle)
        assert time.monotonic() - t0 < 60  # refused before any training
    assert existing.read_text() == "keep me"
    assert Storage(url).study_evaluation(Storage(url).get_study("ev").id) is None


def test_race_plot_is_checked_before_the_race(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections("r", trials=2, policy="none"))
    t0 = time.monotonic()
    proc = _cli("bench", "race", str(path), "--plot", "/proc/x/y.png", "--seeds", "1",
                "--no-test")
    assert proc.returncode == 2, proc.stderr
    _one_line(proc.stderr, "--plot", "/proc/x/y.png")
    assert time.monotonic() - t0 < 60  # no race ran
    proc = _cli("bench", "race", str(path), "--seeds", str(10**6))
    assert proc.returncode == 2
    _one_line(proc.stderr, "--seeds")


def test_unbounded_command_line_counts_are_capped(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections("caps", trials=2, policy="none"))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    for argv, needle in ((["run", str(path), "--trials", str(10**12), "--storage", url,
                           "--quiet"], "--trials"),
                         (["bench", "overhead", "--epochs", str(10**9)], "--epochs"),
                         (["bench", "overhead", "--trials", str(10**9)], "--trials")):
        capsys.readouterr()
        assert main(argv) == 2, argv
        _one_line(capsys.readouterr().err, needle)
    assert not (tmp_path / "nas.db").exists()


def test_import_of_a_deeply_nested_config(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "deep.npz"
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    np.savez(src, curves=np.array([[0.1, 0.2]]), configs=np.array([deep]))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    capsys.readouterr()
    assert main(["import", str(src), "--study", "deep", "--storage", url]) == 2
    _one_line(capsys.readouterr().err, str(src), "configs[0]", "deeper")


def test_export_json_of_a_config_that_is_not_an_object(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    _import(tmp_path, url, "lst")
    with create_engine(url).begin() as conn:  # another tool wrote it
        conn.execute(text("UPDATE trials SET config = '[1]' WHERE number = 0"))
    capsys.readouterr()
    for fmt in ("json", "csv"):
        assert main(["export", "lst", "--format", fmt, "--storage", url]) == 0, fmt
        out = capsys.readouterr().out
        assert out.strip()
    assert main(["trials", "lst", "--storage", url]) == 0


PY_STUDY = ('study = {"study": {"name": "py"}, "search": {"space": "nas.testing.toy:ToySpace"}, '
            '"task": {"name": "nas.testing.toy:ToyTask"}}\n')


@pytest.mark.parametrize(("body", "needle", "code"), [
    ("class Stop(BaseException):\n    pass\nraise Stop('no')\n", "Stop: no", 2),
    ("import os\nos._exit(0)\n", "without defining `study`", 2),
    ("while True:\n    pass\n", "longer than 3 s", 2),
    ("d = {}\nd['x'] = d\n" + PY_STUDY.replace('"study": {"name": "py"}',
                                               '"study": {"name": "py"}, "x": d'),
     "Circular reference", 2),
    ("import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n"
     + PY_STUDY, "", 0),
    ("import sys\nsys.exit(7)\n", "exit(7)", 2),
    ("print('chatty')\n" + PY_STUDY, "", 0),
], ids=["base-exception", "os-exit", "loop", "self-reference", "thread", "sys-exit", "prints"])
def test_py_study_files_are_loaded_bounded(tmp_path: Path, body: str, needle: str,
                                           code: int) -> None:
    path = tmp_path / "s.py"
    path.write_text(body)
    t0 = time.monotonic()
    proc = _cli("validate", str(path), "--json", env={"NAS_PY_STUDY_TIMEOUT_S": "3"},
                timeout=60)
    assert time.monotonic() - t0 < 40
    assert proc.returncode == code, proc.stderr
    if code == 2:
        assert proc.stdout == ""
        _one_line(proc.stderr, str(path), needle)
    else:
        assert json.loads(proc.stdout)["study"]["name"] == "py"  # prints went to stderr


# ------------------------------------------------------------------ 10. test hygiene
def test_tests_keep_tune_files_under_their_tmp_dirs() -> None:
    """Every run_study call in the tests names ray_storage (else Tune writes ~/ray_results)."""
    missing = []
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_study" \
                    and not any(k.arg == "ray_storage" for k in node.keywords):
                missing.append(f"{path.name}:{node.lineno}")
    assert missing == []
