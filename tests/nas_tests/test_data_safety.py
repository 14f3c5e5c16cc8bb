"""Data safety (issue 17): no silent mixing on resume, no writing into foreign databases, no
secrets stored, plug-ins checked before they run, no leftovers of a failed or killed run.

Every refusal is checked the same way: exit code 2, one line on stderr that names the problem,
no traceback, and the database unchanged (row counts of every table and the studies rows).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from _run_helpers import descendants, kill_pids, toy_sections, write_study
from _storage_helpers import make_url
from sqlalchemy import create_engine, inspect, text

from nas.cli import main
from nas.runner import run_study
from nas.storage import Storage

CLI = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())"]


def _one_line_error(err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("nas: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _snapshot(url: str) -> dict[str, Any]:
    """Row counts of every table, and the studies rows (config included)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            counts = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                      for t in tables}
            studies = [tuple(r) for r in conn.execute(text(
                "SELECT id, name, space, task, objectives, config, status FROM studies "
                "ORDER BY id"))] if "studies" in tables else []
    finally:
        engine.dispose()
    return {"counts": counts, "studies": [tuple(map(str, r)) for r in studies]}


def _env(tmp: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, TMPDIR=tmp, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
                **extra)


# ------------------------------------------------------------------ foreign databases
def _customers_file(path: Path) -> Path:
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    c.execute("INSERT INTO customers (name) VALUES ('ada')")
    c.commit()
    c.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sqlite_file_of_other_tables_is_refused_and_left_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _customers_file(tmp_path / "shop.db")
    url = f"sqlite:///{db}"
    digest = _digest(db)
    curves = tmp_path / "c.npz"
    import numpy as np

    from nas.curvefile import CurveSet, save_curves

    save_curves(curves, CurveSet(curves=np.array([[0.1, 0.2]]), lengths=np.array([2]),
                                 configs=[{"a": 1}]))
    study = write_study(tmp_path / "s.toml", toy_sections("x", trials=1))
    for argv in (["studies", "--storage", url], ["trials", "x", "--storage", url],
                 ["import", str(curves), "--study", "c", "--storage", url],
                 ["db", "upgrade", "--storage", url],
                 ["run", str(study), "--storage", url, "--quiet"]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        _one_line_error(capsys.readouterr().err, "not a nas study database", "customers")
        assert _digest(db) == digest, argv
        assert not Path(f"{db}-wal").exists()
    c = sqlite3.connect(db)
    assert [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] \
        == ["customers"]
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    c.close()
    # an empty file is a new database: the schema is created there
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["studies", "--storage", f"sqlite:///{empty}"]) == 0
    assert "studies" in inspect(create_engine(f"sqlite:///{empty}")).get_table_names()


def test_a_postgresql_database_of_other_tables_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for url in make_url("postgresql", tmp_path):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE customers (id integer)"))
        engine.dispose()
        before = _snapshot(url)
        assert main(["studies", "--storage", url]) == 2
        _one_line_error(capsys.readouterr().err, "not a nas study database", "customers")
        assert _snapshot(url) == before


# ------------------------------------------------------------------ plug-ins before they run
def _study_text(space: str, extra: str = "") -> str:
    return (f'[study]\nname = "p"\n[search]\nspace = "{space}"\n{extra}'
            '[task]\nname = "nas.runner_toy:ToyTask"\n')


def test_validate_and_run_never_call_what_is_not_a_plugin(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "PWNED"
    cases = [
        ("os:system", f'space_options = {{ command = "touch {marker}" }}\n',
         "'os:system' is a builtin_function_or_method, not a space plug-in"),
        ("math:pi", "", "'math:pi' is a float, not a space plug-in"),
        ("nas.interfaces:TaskSpec", "", "lacks the method(s) sample, build, features"),
        ("subprocess:Popen", 'space_options = { args = ["touch", "' + str(marker) + '"] }\n',
         "lacks the method(s) sample, build, features"),
    ]
    db = tmp_path / "nas.db"
    for space, extra, shown in cases:
        path = tmp_path / "bad.toml"
        path.write_text(_study_text(space, extra))
        for argv in (["validate", str(path)],
                     ["run", str(path), "--storage", f"sqlite:///{db}", "--quiet"]):
            capsys.readouterr()
            assert main(argv) == 2, (space, argv)
            _one_line_error(capsys.readouterr().err, str(path), "search.space", shown)
            assert not marker.exists(), space
            assert not db.exists()  # resolved before the database is even opened


def test_a_trainer_that_is_not_a_function_is_caught_by_validate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for trainer, shown in (("no_such_mod:train", "cannot import module 'no_such_mod'"),
                           ("nas.runner_toy:nothing", "has no attribute 'nothing'"),
                           ("os:system", "not a training function"),
                           ("nas.runner_toy:ToySpace", "not a training function")):
        path = tmp_path / "t.toml"
        path.write_text(_study_text("nas.runner_toy:ToySpace",
                                    f'[training]\ntrainer = "{trainer}"\n'))
        capsys.readouterr()
        assert main(["validate", str(path)]) == 2
        line = _one_line_error(capsys.readouterr().err, "training.trainer", f"trainer '{trainer}'",
                               shown)
        assert "space" not in line.split("training.trainer", 1)[1]


def test_a_py_study_file_that_exits_is_a_study_file_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bye.py"
    path.write_text("import sys\nsys.exit(7)\n")
    for argv in (["validate", str(path)], ["run", str(path), "--quiet"]):
        assert main(argv) == 2
        _one_line_error(capsys.readouterr().err, str(path), "exit(7)")
    proc = subprocess.run([*CLI, "validate", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    _one_line_error(proc.stderr, str(path))


