"""What protects the data: no silent mixing on resume, no writing into foreign databases, no
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


# ------------------------------------------------------------------ resume with a changed file
RESUME_CHANGES = [
    ("direction", {"search": {"objectives": [{"name": "val_accuracy",
                                              "direction": "minimize"}]}},
     "search.objectives: val_accuracy (maximize) → val_accuracy (minimize)"),
    ("max_epochs", {"training": {"max_epochs": 2}}, "training.max_epochs: 3 → 2"),
    ("batch_size", {"training": {"batch_size": 8}}, "training.batch_size: 64 → 8"),
    ("trainer", {"training": {"trainer": "nas.training:train"}},
     "training.trainer: 'nas.testing.toy:toy_train' → 'nas.training:train'"),
    ("task_options", {"task": {"options": {"n": 32}}}, "task.options: {} → {'n': 32}"),
    ("space_options", {"search": {"space_options": {"modes": ["ok"], "epoch_s": 0.5}}},
     ("search.space_options: {'modes': ['ok'], 'epoch_s': 0.0} → {'modes': ['ok'], "
      "'epoch_s': 0.5}")),
    ("space", {"search": {"space": "other_space:OtherSpace"}},
     "search.space: 'nas.testing.toy:ToySpace' → 'other_space:OtherSpace'"),
]


def _merge(base: dict[str, dict[str, Any]], change: dict[str, dict[str, Any]]
           ) -> dict[str, dict[str, Any]]:
    out = {k: dict(v) for k, v in base.items()}
    for sec, body in change.items():
        out.setdefault(sec, {}).update(body)
    return out


@pytest.mark.usefixtures("ray_runtime")
def test_resume_refuses_every_change_of_meaning_and_leaves_the_study_untouched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "other_space.py").write_text(
        "from nas.testing.toy import ToySpace\n\n\nclass OtherSpace(ToySpace):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    base = toy_sections("rs", trials=2, policy="none", max_epochs=3)
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_study(write_study(tmp_path / "s.toml", base), storage=url,
              ray_storage=str(tmp_path / "ray"))
    before = _snapshot(url)
    assert before["counts"]["trials"] == 2 and before["counts"]["curve_points"] == 6
    for label, change, shown in RESUME_CHANGES:
        path = write_study(tmp_path / f"{label}.toml", _merge(base, change))
        capsys.readouterr()
        assert main(["run", str(path), "--resume", "--storage", url, "--quiet"]) == 2, label
        line = _one_line_error(capsys.readouterr().err, "--resume refused", "'rs'", shown)
        assert str(path) in line
        assert _snapshot(url) == before, label  # row counts and the study row: unchanged
    # two changes at once: both named
    path = write_study(tmp_path / "two.toml", _merge(base, {"training": {"max_epochs": 2,
                                                                         "batch_size": 8}}))
    assert main(["run", str(path), "--resume", "--storage", url, "--quiet"]) == 2
    _one_line_error(capsys.readouterr().err, "training.max_epochs: 3 → 2",
                    "training.batch_size: 64 → 8")
    assert _snapshot(url) == before

    # what docs/runner.md allows to change: budget, concurrency, sampler, seed, stopping
    allowed = _merge(base, {"search": {"trials": 3, "concurrency": 1, "sampler": "random"},
                            "study": {"seed": 9}, "stopping": {"policy": "median"}})
    s = run_study(write_study(tmp_path / "ok.toml", allowed), storage=url, resume=True,
                  ray_storage=str(tmp_path / "ray"))
    assert sum(s.trials.values()) == 3 and "FAILED" not in s.trials
    docs = (Path(__file__).parents[2] / "docs" / "runner.md").read_text()
    assert "Allowed to change on resume" in docs


# ------------------------------------------------------------------ secrets
@pytest.mark.usefixtures("ray_runtime")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_stored_config_never_holds_the_storage_url_or_its_password(
        backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "S3cr3tPW"
    for db_url in make_url(backend, tmp_path):
        if backend == "sqlite":
            # the file names a password-bearing URL; --storage wins, the file's URL is not kept
            forms = [(f"postgresql+psycopg://nas:{secret}@127.0.0.1:9/nas", db_url)]
        else:  # every URL form that carries a password (the test server trusts any)
            from sqlalchemy.engine import make_url as parse

            u = parse(db_url)  # keeps its query (the test's own schema on the search path)

            def show(x: Any) -> str:
                return str(x.render_as_string(hide_password=False))

            forms = [(show(u.set(password=secret)), None),
                     (show(u.set(drivername="postgresql", password=secret + "@x")), None),
                     (show(u.set(password=None).update_query_dict({"password": secret})), None)]
            assert "%40x@" in forms[1][0] and f"password={secret}" in forms[2][0]
        for i, (file_url, cli_url) in enumerate(forms):
            sec = toy_sections(f"pw{i}", trials=1, policy="none", max_epochs=1)
            sec["study"]["storage"] = file_url
            path = write_study(tmp_path / f"pw{i}.toml", sec)
            capsys.readouterr()
            assert main(["validate", str(path), "--json"]) == 0
            out = capsys.readouterr().out
            assert secret not in out and json.loads(out)["study"]["storage"].count("***") == 1
            s = run_study(path, storage=cli_url, ray_storage=str(tmp_path / "ray"))
            assert s.trials == {"COMPLETE": 1} and secret not in s.storage
        engine = create_engine(db_url)
        with engine.connect() as conn:
            rows = [r[0] for r in conn.execute(text("SELECT config FROM studies"))]
            every = "".join(str(r) for row in conn.execute(text("SELECT * FROM studies"))
                            for r in row)
        engine.dispose()
        assert len(rows) == len(forms)
        for raw in rows:
            doc = raw if isinstance(raw, dict) else json.loads(raw)
            assert "storage" not in doc["study"]
            assert secret not in json.dumps(doc)
        assert secret not in every
    docs = (Path(__file__).parents[2] / "docs" / "storage.md").read_text()
    assert "The storage URL is never stored" in docs


def test_mask_url_hides_query_string_and_at_sign_passwords() -> None:
    from nas.storage import mask_url

    assert mask_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert mask_url("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"
    assert mask_url("postgresql://u@h/db?password=PW&sslmode=require") == \
        "postgresql://u@h/db?password=***&sslmode=require"
    assert mask_url("postgresql://h/db?sslmode=x&PASSWORD=PW") == \
        "postgresql://h/db?sslmode=x&PASSWORD=***"


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
                 ["db", "upgrade", "--storage", url], ["delete", "x", "--yes", "--storage", url],
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
    # an empty file: a query leaves it empty; a creating command makes the schema
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["studies", "--storage", f"sqlite:///{empty}"]) == 2
    assert empty.stat().st_size == 0
    assert main(["db", "upgrade", "--storage", f"sqlite:///{empty}"]) == 0
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
            '[task]\nname = "nas.testing.toy:ToyTask"\n')


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
                           ("nas.testing.toy:nothing", "has no attribute 'nothing'"),
                           ("os:system", "not a training function"),
                           ("nas.testing.toy:ToySpace", "not a training function")):
        path = tmp_path / "t.toml"
        path.write_text(_study_text("nas.testing.toy:ToySpace",
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


# ------------------------------------------------------------------ nas delete
def test_delete_removes_one_study_with_everything_it_holds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from nas.curvefile import CurveSet, save_curves

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    curves = tmp_path / "c.npz"
    save_curves(curves, CurveSet(curves=np.array([[0.1, 0.2, 0.3], [0.2, 0.4, 0.5]]),
                                 lengths=np.array([3, 3]), configs=[{"a": 1}, {"a": 2}]))
    for name in ("keep", "gone"):
        assert main(["import", str(curves), "--study", name, "--storage", url]) == 0
    st = Storage(url)
    gone = st.get_study("gone").id
    tid = st.trial_id(gone, 0)
    st.add_forecast(tid, 3, predictor="p", horizon=3, mean=0.5, q05=0.1, q50=0.5, q95=0.9,
                    p_improve=0.2)
    st.add_decision(tid, 3, policy="asha", action="STOP", reason="test")
    snap = _snapshot(url)
    assert snap["counts"]["forecasts"] == 1 and snap["counts"]["decisions"] == 1
    keep_before = snap["studies"][0]
    capsys.readouterr()
    proc = subprocess.run([*CLI, "delete", "gone", "--storage", url], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert proc.returncode == 2
    _one_line_error(proc.stderr, "'gone'", "needs --yes")
    assert st.study_names() == ["gone", "keep"]
    assert main(["delete", "gone", "--yes", "--storage", url]) == 0
    assert "deleted study 'gone' (2 trials)" in capsys.readouterr().err
    assert st.study_names() == ["keep"]
    snap = _snapshot(url)
    assert snap["studies"] == [keep_before]
    assert snap["counts"]["trials"] == 2 and snap["counts"]["curve_points"] == 6
    assert snap["counts"]["forecasts"] == 0 and snap["counts"]["decisions"] == 0
    assert main(["delete", "gone", "--yes", "--storage", url]) == 2
    _one_line_error(capsys.readouterr().err, "no study 'gone'", "keep")
    # the name is free again
    assert main(["import", str(curves), "--study", "gone", "--storage", url]) == 0


# ------------------------------------------------------------------ failed runs leave nothing
def test_a_failed_address_leaves_no_study_behind(tmp_path: Path) -> None:
    short = tempfile.mkdtemp(prefix="nd-", dir="/tmp")
    try:
        path = write_study(tmp_path / "s.toml", toy_sections("addr", trials=1))
        url = f"sqlite:///{tmp_path / 'nas.db'}"
        proc = subprocess.run([*CLI, "run", str(path), "--storage", url, "--quiet",
                               "--address", "not-an-address"], env=_env(short),
                              capture_output=True, text=True, timeout=180, check=False)
        assert proc.returncode == 2, proc.stderr
        _one_line_error(proc.stderr, "--address", "not-an-address")
        assert Storage(url).study_names() == []
        snap = _snapshot(url)
        assert sum(v for k, v in snap["counts"].items() if k != "alembic_version") == 0
    finally:
        import shutil

        shutil.rmtree(short, ignore_errors=True)


def test_a_plugin_that_fails_at_run_leaves_no_study(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pi.toml"
    path.write_text(_study_text("math:pi"))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    Storage(url)  # an existing (empty) nas database
    before = _snapshot(url)
    for _ in range(2):  # the same answer again: no half-made study blocks the name
        assert main(["run", str(path), "--storage", url, "--quiet"]) == 2
        _one_line_error(capsys.readouterr().err, "math:pi")
        assert _snapshot(url) == before
    assert main(["run", str(path), "--storage", url, "--quiet", "--resume"]) == 2
    _one_line_error(capsys.readouterr().err, "math:pi")
    assert _snapshot(url) == before


# ------------------------------------------------------------------ --json: stdout is JSON only
NOISY = '''
import os
from nas.testing.toy import ToySpace


class NoisySpace(ToySpace):
    def __init__(self, **kw):
        print("noise from print")
        os.write(1, b"noise below python\\n")
        super().__init__(**kw)
'''


def test_run_json_stdout_is_one_json_document(tmp_path: Path) -> None:
    (tmp_path / "noisy_space.py").write_text(NOISY)
    sec = toy_sections("js", trials=2, policy="none", max_epochs=2)
    sec["search"]["space"] = "noisy_space:NoisySpace"
    path = write_study(tmp_path / "s.toml", sec)
    short = tempfile.mkdtemp(prefix="nj-", dir="/tmp")
    try:
        env = _env(short, PYTHONPATH=os.pathsep.join(
            [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]), HOME=str(tmp_path))
        proc = subprocess.run([*CLI, "run", str(path), "--json", "--cpus", "1", "--storage",
                               f"sqlite:///{tmp_path / 'nas.db'}"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=False)
    finally:
        import shutil

        shutil.rmtree(short, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # the whole of stdout is the one document
    assert doc["study"] == "js" and doc["trials"] == {"COMPLETE": 2}
    assert "noise from print" in proc.stderr and "noise below python" in proc.stderr


# ------------------------------------------------------------------ orphans of a killed driver
def test_next_run_stops_what_a_killed_driver_left_of_its_ray(tmp_path: Path) -> None:
    from nas.runner._cluster import short_tmp
    from nas.runner._orphans import instance_pids, reap_orphans, record_owner

    path = write_study(tmp_path / "s.toml", toy_sections(
        "orph", trials=4, policy="none", max_epochs=50, epoch_s=0.3))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    short = tempfile.mkdtemp(prefix="no-", dir="/tmp")
    proc = subprocess.Popen([*CLI, "run", str(path), "--storage", url, "--quiet", "--cpus", "1"],
                            env=_env(short, HOME=str(tmp_path)), cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ray_dirs: list[Path] = []
    leftovers: list[int] = []
    try:
        deadline = time.monotonic() + 180
        st = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            if (tmp_path / "nas.db").exists():
                st = st or Storage(url)
                if "orph" in st.study_names() and st.trials(st.get_study("orph").id):
                    break
            time.sleep(0.3)
        else:
            pytest.fail("the driver started no trial in time")
        ray_dirs = list(Path(short).glob("nas-ray-*"))
        assert len(ray_dirs) == 1 and (ray_dirs[0] / "nas-driver").exists()
        kill_pids([proc.pid])  # SIGKILL of the driver only
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # what outlives it (the agents, at least)
            leftovers = instance_pids(ray_dirs[0])
            time.sleep(1.0)
            if leftovers and leftovers == instance_pids(ray_dirs[0]):
                break
        assert leftovers, "no Ray process outlived the driver (nothing to test)"

        # a dir whose driver is alive (this process) is not touched
        alive = Path(tempfile.mkdtemp(prefix="nas-ray-", dir=short))
        record_owner(str(alive))
        os.environ["TMPDIR"] = short
        try:
            made = short_tmp()  # what the next `nas run` does before it starts Ray
        finally:
            os.environ.pop("TMPDIR")
        assert instance_pids(ray_dirs[0]) == []
        for p in leftovers:
            assert not Path(f"/proc/{p}").exists() or \
                Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        assert not ray_dirs[0].exists()
        assert alive.exists() and Path(made).exists()
        assert reap_orphans(short) == 0
    finally:
        rest = descendants(proc.pid) + leftovers + \
            [p for d in ray_dirs if d.exists() for p in instance_pids(d)]
        if proc.poll() is None:
            rest.append(proc.pid)
        kill_pids(sorted(set(rest)))
        import shutil

        shutil.rmtree(short, ignore_errors=True)


# ------------------------------------------------------------------ input edges
def _save(path: Path, **arrays: Any) -> Path:
    import numpy as np

    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("name", ["a\x1b[31mb", "tab\there", "new\nline", "trailing\n",
                                  "x" * 101, " ", "-lead", "has space"])
def test_one_study_name_rule_everywhere(name: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from nas.errors import ConfigError

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    curves = _save(tmp_path / "c.npz", curves=np.array([[0.1, 0.2]]))
    st = Storage(url)
    before = _snapshot(url)
    assert main(["import", str(curves), "--study", name, "--storage", url]) == 2
    err = capsys.readouterr().err
    line = _one_line_error(err, "--study = ")
    assert "\x1b" not in err and "\t" not in line  # shown escaped, never obeyed
    sec = toy_sections("ok", trials=1)
    sec["study"]["name"] = name
    path = write_study(tmp_path / "s.toml", sec)
    assert main(["validate", str(path)]) == 2
    _one_line_error(capsys.readouterr().err, "study.name = ")
    with pytest.raises(ConfigError, match="study name = "):
        st.create_study(name, space="s", task="t", objectives=[{"name": "v"}], config={})
    assert _snapshot(url) == before
    # the longest allowed name works on every path
    ok = "n" * 100
    assert main(["import", str(curves), "--study", ok, "--storage", url]) == 0
    assert Storage(url).study_names() == [ok]


def test_curve_file_edges_are_refused_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    Storage(url)
    before = _snapshot(url)
    cases = [
        (_save(tmp_path / "cx.npz", curves=np.array([[0.1 + 1j, 0.2]])), "must be real numbers"),
        (_save(tmp_path / "fl.npz", curves=np.array([[0.1, 0.2], [0.3, 0.4]]),
               lengths=np.array([2.0, 1.5])), "lengths[1] = 1.5: must be a whole number"),
        (_save(tmp_path / "cl.npz", curves=np.array([[0.1, 0.2]]),
               lengths=np.array([1 + 0j])), "'lengths' must be 1 integers"),
    ]
    for path, shown in cases:
        assert main(["import", str(path), "--study", "x", "--storage", url]) == 2
        _one_line_error(capsys.readouterr().err, str(path), shown)
        assert _snapshot(url) == before
    inf = _save(tmp_path / "inf.npz", curves=np.array([[0.1, 0.2], [0.3, np.inf]]))
    assert main(["bench", "predict", "--curves", str(inf), "--predictor", "baker"]) == 2
    _one_line_error(capsys.readouterr().err, str(inf), "row 1 of 'curves' is inf at step 2")


def test_export_writes_exactly_the_path_it_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    curves = _save(tmp_path / "c.npz", curves=np.array([[0.1, 0.2]]))
    assert main(["import", str(curves), "--study", "s", "--storage", url]) == 0
    capsys.readouterr()
    out = tmp_path / "back"  # no .npz: numpy alone would write back.npz
    assert main(["export", "s", "--format", "npz", "-o", str(out), "--storage", url]) == 0
    assert f"to {out}\n" in capsys.readouterr().err
    assert out.is_file() and not Path(f"{out}.npz").exists()
    assert main(["import", str(out), "--study", "again", "--storage", url]) == 0
    before = _snapshot(url)
    (tmp_path / "d").mkdir()
    for fmt in ("npz", "csv"):
        assert main(["export", "s", "--format", fmt, "-o", str(tmp_path / "d"),
                     "--storage", url]) == 2
        _one_line_error(capsys.readouterr().err, "is a directory")
    assert list((tmp_path / "d").iterdir()) == [] and not (tmp_path / "d.npz").exists()
    assert _snapshot(url) == before


@pytest.mark.parametrize("argv, shown", [
    (["trials", "x", "--top", "ten"], "'--top'"),
    (["studies", "--format", "xml"], "'xml'"),
    (["run", "--bogus"], "No such option: --bogus"),
    (["no-such-command"], "No such command"),
    (["validate"], "Missing argument"),
])
def test_usage_errors_are_one_line(argv: list[str], shown: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    _one_line_error(capsys.readouterr().err, shown, "--help")
