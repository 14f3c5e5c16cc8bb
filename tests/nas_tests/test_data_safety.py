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


