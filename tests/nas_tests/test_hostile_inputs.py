"""Hostile input: every case exits 2 with ONE line on stderr naming the problem, no traceback,
and the database row-identical afterwards.  Also: passwords never appear in any message (with
or without ``--debug``), and read-only commands create no database.  No Ray (every case fails
before Ray would start)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _run_helpers import toy_sections, write_study

from nas.cli import main
from nas.curvefile import save_curves
from nas.testing.storage import synthetic_study_curves

SHIPPED = Path(__file__).resolve().parents[2] / "predictors" / "pfn" / "weights"
SECRET = "ngPassXYZ"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a database (study 'syn'), good and bad curve files and checkpoints."""
    d = tmp_path_factory.mktemp("hostile")
    good = d / "good.npz"
    save_curves(good, synthetic_study_curves(n=12, horizon=8, seed=1))
    assert main(["import", str(good), "--study", "syn", "--storage", f"sqlite:///{d}/h.db"]) == 0
    half = np.full((2, 3), 0.5)
    files: dict[str, dict[str, np.ndarray]] = {
        "zero": {"curves": np.zeros((0, 5))},
        "flat1d": {"curves": np.zeros(5)},
        "strfeat": {"curves": half, "config_features": np.array([["a", "b"], ["c", "d"]])},
        "featshape": {"curves": half, "config_features": np.ones((3, 2))},
        "featnames": {"curves": half, "config_features": np.ones((2, 2)),
                      "config_feature_names": np.array(["a"])},
        "dir0": {"curves": half, "direction": np.array([], dtype=str)},
        "dirbad": {"curves": half, "direction": np.array("up")},
        "complex": {"curves": half * (1 + 1j)},
        "strcurves": {"curves": np.array([["a", "b"], ["c", "d"]])},
        "nocurves": {"values": half},
        "lenrange": {"curves": half, "lengths": np.array([9, 1])},
        "lenshape": {"curves": half, "lengths": np.array([1, 1, 1])},
        "cfgjson": {"curves": half, "configs": np.array(["{nope", "{}"])},
        "cfglist": {"curves": half, "configs": np.array(["[1]", "{}"])},
        "allnan": {"curves": np.array([[np.nan] * 3, [0.5] * 3])},
        "taskshape": {"curves": half, "task": np.array(["a"])},
    }
    for name, arrays in files.items():
        np.savez(d / f"{name}.npz", **arrays)  # type: ignore[arg-type]
    np.savez(d / "pickled.npz", curves=np.array([{"a": 1}, None], dtype=object))
    (d / "text.npz").write_text("hello, not a zip\n")
    (d / "adir.npz").mkdir()
    # checkpoints: each a copy of the shipped one with one thing broken
    cfg = json.loads((SHIPPED / "config.json").read_text())

    def ckpt(name: str, *, weights: Callable[[bytes], bytes] | None = None,
             config: str | None = None) -> None:
        out = d / "w" / name
        out.mkdir(parents=True)
        raw = (SHIPPED / "model.safetensors").read_bytes()
        (out / "model.safetensors").write_bytes(weights(raw) if weights else raw)
        (out / "config.json").write_text(config if config is not None else json.dumps(cfg))

    def with_model(**changes: object) -> str:
        doc = json.loads(json.dumps(cfg))
        doc["model"].update(changes)
        return json.dumps(doc)

    ckpt("truncated", weights=lambda b: b[: len(b) // 3])
    ckpt("garbage", weights=lambda b: b"\xff" * 64 + b[64:])
    ckpt("emptyfile", weights=lambda b: b"")
    ckpt("notjson", config="{model: 1")
    ckpt("jsonlist", config="[1, 2]")
    ckpt("nomodel", config=json.dumps({k: v for k, v in cfg.items() if k != "model"}))
    ckpt("modelstr", config=json.dumps({**cfg, "model": "big"}))
    ckpt("wrongtype", config=with_model(d_model="wide"))
    ckpt("floatlayers", config=with_model(n_layers=2.5))
    ckpt("unknownkey", config=with_model(colour="red"))
    ckpt("morelayers", config=with_model(n_layers=cfg["model"]["n_layers"] + 1))
    ckpt("widermodel", config=with_model(d_model=cfg["model"]["d_model"] * 2))
    ckpt("buckets", config=with_model(n_buckets=cfg["model"]["n_buckets"] // 2))
    (d / "w" / "hollow").mkdir()
    # study files: each fails before Ray would start
    bad_plugins = {
        "task_pi": toy_sections("h1", extra={"task": {"name": "math:pi"}}),
        "policy_pi": toy_sections("h2", policy="math:pi"),
        "predictor_pi": toy_sections("h3", policy="predictive",
                                     extra={"stopping": {"predictor": "math:pi"}}),
        "space_pi": toy_sections("h4", extra={"search": {"space": "math:pi"}}),
        "predictor_sqrt": toy_sections("h5", policy="predictive",
                                       extra={"stopping": {"predictor": "math:sqrt"}}),
        "policy_nomod": toy_sections("h6", policy="no_such_module_xyz:Policy"),
        "predictor_weights": toy_sections(
            "h7", policy="predictive",
            extra={"stopping": {"predictor": "pfn"}}),  # fine: the control case, not listed
    }
    for name, sections in bad_plugins.items():
        write_study(d / f"{name}.toml", sections)
    (d / "broken.toml").write_text("[study\nname = 'x'\n")
    (d / "unknown_key.toml").write_text(
        (d / "task_pi.toml").read_text().replace('name = "math:pi"',
                                                 'name = "nas.testing.toy:ToyTask"\ncolour = 1'))
    (d / "huge_trials.toml").write_text(
        (d / "space_pi.toml").read_text().replace('space = "math:pi"',
                                                  'space = "nas.testing.toy:ToySpace"')
        .replace("trials = 10", "trials = 100000000000000000000000000000"))
    return d


def _dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("nas: error: "), err
    assert "Traceback" not in err and "internal error" not in err
    assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------- the cases
CURVE_FILES = [
    ("zero", "non-empty"), ("flat1d", "N x T"), ("strfeat", "config_features"),
    ("featshape", "config_features"), ("featnames", "config_feature_names"),
    ("dir0", "direction"), ("dirbad", "direction"), ("complex", "real numbers"),
    ("strcurves", "real numbers"), ("nocurves", "no 'curves'"), ("lenrange", "lengths"),
    ("lenshape", "lengths"), ("cfgjson", "configs[0]"), ("cfglist", "configs[0]"),
    ("allnan", "curve 0 has no values"), ("taskshape", "task"), ("pickled", "pickle"),
    ("text", "not a curve file"), ("adir", "directory"), ("missing", "no such file"),
]

CHECKPOINTS = [
    ("truncated", "safetensors"), ("garbage", "safetensors"), ("emptyfile", "safetensors"),
    ("notjson", "not JSON"), ("jsonlist", "JSON object"), ("nomodel", "'model'"),
    ("modelstr", "'model'"), ("wrongtype", "d_model"), ("floatlayers", "n_layers"),
    ("unknownkey", "colour"), ("morelayers", "do not fit"), ("widermodel", "do not fit"),
    ("buckets", "borders"), ("hollow", "config.json"),
]

STUDY_FILES = [
    ("task_pi", "not a task"), ("policy_pi", "not a policy"),
    ("predictor_pi", "not a predictor"), ("space_pi", "not a space"),
    ("predictor_sqrt", "math:sqrt"), ("policy_nomod", "no_such_module_xyz"),
    ("broken", "broken.toml"), ("unknown_key", "colour"), ("huge_trials", "trials"),
]


@pytest.mark.parametrize(("name", "needle"), CURVE_FILES, ids=[c[0] for c in CURVE_FILES])
def test_bad_curve_file(arena: Path, capsys: pytest.CaptureFixture[str], name: str,
                        needle: str) -> None:
    db = arena / "h.db"
    before = _dump(db)
    line = _one_line_error(capsys, ["import", str(arena / f"{name}.npz"), "--study", f"x{name}",
                                    "--storage", f"sqlite:///{db}"], needle)
    assert f"{name}.npz" in line
    assert _dump(db) == before


@pytest.mark.parametrize(("name", "needle"), CHECKPOINTS, ids=[c[0] for c in CHECKPOINTS])
def test_bad_pfn_checkpoint_in_pfn_info(arena: Path, capsys: pytest.CaptureFixture[str],
                                        name: str, needle: str) -> None:
    line = _one_line_error(capsys, ["pfn", "info", "--weights", str(arena / "w" / name)], needle)
    assert name in line


@pytest.mark.parametrize("name", ["truncated", "notjson", "morelayers", "wrongtype", "hollow"])
def test_bad_pfn_checkpoint_as_predictor_option(arena: Path, capsys: pytest.CaptureFixture[str],
                                                name: str) -> None:
    for extra in ([], ["--policy", "predictive", "--seeds", "1"]):
        line = _one_line_error(capsys, ["bench", "replay" if extra else "predict", *extra,
                                        "--curves", str(arena / "good.npz"),
                                        "--predictor", "pfn", "--predictor-option",
                                        f"weights={arena / 'w' / name}"], name)
        assert "w/" + name in line


@pytest.mark.parametrize(("name", "needle"), STUDY_FILES, ids=[c[0] for c in STUDY_FILES])
def test_bad_study_file(arena: Path, capsys: pytest.CaptureFixture[str], name: str,
                        needle: str) -> None:
    db = arena / "h.db"
    before = _dump(db)
    _one_line_error(capsys, ["run", str(arena / f"{name}.toml"), "--storage",
                             f"sqlite:///{db}", "-q"], needle)
    _one_line_error(capsys, ["validate", str(arena / f"{name}.toml")], needle)
    assert _dump(db) == before


def _options(arena: Path) -> list[tuple[list[str], str]]:
    s = ["--storage", f"sqlite:///{arena / 'h.db'}"]
    good = str(arena / "good.npz")
    return [
        (["trials", "syn", "--top", "-1", *s], "--top"),
        (["trials", "syn", "--state", "BOGUS", *s], "--state"),
        (["trials", "syn", "--sort", "sideways", *s], "--sort"),
        (["trials", "nosuchstudy", *s], "nosuchstudy"),
        (["curve", "syn", str(10**30), *s], "no trial"),
        (["curve", "syn", str(2**63), *s], "no trial"),
        (["curve", *s, "syn", "--", "-5"], "no trial"),
        (["curve", "syn", "0", "--plot", str(arena / "x.txt"), *s], "png"),
        (["export", "syn", "--format", "xml", *s], "--format"),
        (["export", "syn", "--format", "npz", *s], "-o"),
        (["import", good, "--study", "syn", *s], "already exists"),
        (["import", good, "--study", "y", "--direction", "sideways", *s], "--direction"),
        (["bench", "predict", "--curves", good, "--predictor", "pfn", "--threads", "0"],
         "--threads"),
        (["bench", "predict", "--curves", good, "--predictor", "pfn", "--predictor-option",
          "novalue"], "KEY=VALUE"),
        (["bench", "predict", "--curves", good, "--predictor", "math:pi"], "not a predictor"),
        (["bench", "predict", "--curves", good, "--predictor", "nosuch"], "nosuch"),
        (["spaces", "check", "seq_cells", "--task", "parity", "--threads", "0"], "--threads"),
        (["evaluate", "syn", "--top", "0", *s], "top"),
    ]


def test_bad_cli_options(arena: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = arena / "h.db"
    before = _dump(db)
    cases = _options(arena)
    for argv, needle in cases:
        _one_line_error(capsys, argv, needle)
    assert _dump(db) == before


def test_at_least_forty_hostile_cases(arena: Path) -> None:
    n = len(CURVE_FILES) + len(CHECKPOINTS) + 5 + len(STUDY_FILES) + len(_options(arena)) \
        + len(URLS)
    assert n >= 40, n


def test_huge_top_lists_everything(arena: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["trials", "syn", "--top", str(10**30), "--json",
                 "--storage", f"sqlite:///{arena / 'h.db'}"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 12


# ---------------------------------------------------------------------------- secrets
URLS = [
    (f"postgresql+psycopg://nas:p@{SECRET}@nohost.invalid:5432/db", "unescaped '@'"),
    (f"postgresql+psycopg://nas@127.0.0.1:1/db?password={SECRET}", "127.0.0.1"),
    (f"postgresql+psycopg://nas@127.0.0.1:1/db?sslmode=disable&password={SECRET}",
     "127.0.0.1"),
    (f"postgresql+psycopg://nas:{SECRET}@127.0.0.1:1/db", "127.0.0.1"),
    (f"postgresql+psycopg://nas:{SECRET}@nohost.invalid/db", "nohost.invalid"),
    (f"postgresql+psycopg://nas:{SECRET}@[bad/db", "[bad"),
    ("nonsense-url", "malformed"),
]


@pytest.mark.parametrize(("url", "needle"), URLS, ids=[str(i) for i in range(len(URLS))])
def test_password_never_shown(capsys: pytest.CaptureFixture[str], url: str, needle: str) -> None:
    for argv in (["studies", "--storage", url], ["db", "info", "--storage", url],
                 ["trials", "x", "--storage", url]):
        line = _one_line_error(capsys, argv, needle)
        assert SECRET not in line
        capsys.readouterr()
        with pytest.raises(Exception) as info:  # --debug: the whole chained traceback
            main(["--debug", *argv])
        text = "".join(traceback.format_exception(info.value)) + "".join(capsys.readouterr())
        assert SECRET not in text


def test_stored_study_config_never_holds_the_storage_url(tmp_path: Path) -> None:
    from nas.config import load_config
    from nas.plugins import build_plugins
    from nas.runner._resume import prepare_study
    from nas.runner._study import open_run_storage

    url = f"sqlite:///{tmp_path / 's.db'}?timeout=5"
    f = write_study(tmp_path / "s.toml", toy_sections("stored"))
    f.write_text(f.read_text().replace("[study]\n", f"[study]\nstorage = {json.dumps(url)}\n"))
    cfg = load_config(f)
    assert cfg.study.storage == url
    st = open_run_storage(cfg, None)
    prepare_study(cfg, st, False, build_plugins(cfg).spec)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        (stored,) = conn.execute("select config from studies").fetchone()
    assert "storage" not in json.loads(stored)["study"]
    assert "s.db" not in stored


# ---------------------------------------------------------------------------- read-only
def test_read_only_commands_create_no_database(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    for argv in (["studies"], ["trials", "x"], ["curve", "x", "0"], ["export", "x"],
                 ["db", "info"], ["studies", "--storage", "sqlite:///elsewhere.db"]):
        _one_line_error(capsys, argv, "no database here")
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_exit_2_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["trials", "x", "--top", "abc"], ["curve", "x", "one"], ["no-such-command"]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.strip()


def test_copying_the_shipped_checkpoint_loads(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The control case: an intact copy is accepted (so the failures above are the damage)."""
    shutil.copytree(SHIPPED, tmp_path / "w")
    assert main(["pfn", "info", "--weights", str(tmp_path / "w"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_layers"] >= 1
    assert sys.modules.get("predictors.pfn.train") is not None
