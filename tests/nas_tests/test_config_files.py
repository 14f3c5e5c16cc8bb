"""Study files: a table of bad files with their exact one-line messages; good files round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.cli import main
from nas.config import StudyConfig, config_from_dict, load_config
from nas.errors import ConfigError

GOOD = """\
[study]
name = "parity-quick"
seed = 0
[search]
space = "seq_cells"
sampler = "tpe"
trials = 40
concurrency = 2
objectives = [{ name = "val_accuracy", direction = "maximize" },
              { name = "params", direction = "minimize" }]
[search.space_options]
cells = ["lstm", "gru"]
[task]
name = "parity"
[task.options]
bits = 8
[training]
max_epochs = 20
batch_size = 64
device = "auto"
time_limit_s = 300
resources = { cpu = 1, gpu = 0 }
[stopping]
policy = "predictive"
predictor = "pfn"
delta = 0.05
min_epochs = 2
"""


def _edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


# (file text, exact message after "<path>: ")
BAD = [
    (_edit('trials = 40', 'trials = 0'), "search.trials = 0: must be an integer in [1, 1000000]"),
    (_edit('trials = 40', 'trials = "40"'),
     "search.trials = '40': must be an integer in [1, 1000000]"),
    (_edit('trials = 40', 'trails = 40'),
     ("search.trails: unknown key (known: space, space_options, sampler, sampler_options, "
      "trials, concurrency, objectives)")),
    (_edit('sampler = "tpe"', 'sampler = "bayes"'),
     "search.sampler = 'bayes': must be one of random, tpe, cmaes, gp, nsga2"),
    (_edit('space = "seq_cells"', 'space = "no_such_space"'),
     ("search.space = 'no_such_space': unknown space; installed: seq_cells (or give "
      "\"module:attr\")")),
    (_edit('name = "parity"\n', 'name = "parity_x"\n'), None),  # message lists the tasks
    (_edit('name = "parity-quick"', 'name = "has space"'),
     ("study.name = 'has space': must be 1-100 letters, digits, '_', '.' or '-', starting "
      "with a letter or digit")),
    (_edit('[study]\nname = "parity-quick"\n', '[study]\n'), "study.name: required key is missing"),
    (_edit('delta = 0.05', 'delta = 1.5'), "stopping.delta = 1.5: must be a number > 0 and < 1"),
    (_edit('min_epochs = 2', 'min_epochs = 30'),
     "stopping.min_epochs = 30: must be an integer in [1, 20]"),
    (_edit('policy = "predictive"\npredictor = "pfn"\n', 'policy = "predictive"\n'),
     "stopping.predictor (policy \"predictive\" needs one): required key is missing"),
    (_edit('policy = "predictive"', 'policy = "hyperband"'),
     None),  # lists installed policies
    (_edit('device = "auto"', 'device = "tpu"'),
     "training.device = 'tpu': must be one of auto, cpu, cuda"),
    (_edit('device = "auto"', 'device = "cuda"'),
     "training.device = 'cuda': needs training.resources.gpu > 0"),
    (_edit('time_limit_s = 300', 'time_limit_s = -1'),
     "training.time_limit_s = -1: must be a number > 0"),
    (_edit('resources = { cpu = 1, gpu = 0 }', 'resources = { cpu = 0, gpu = 0 }'),
     "training.resources.cpu = 0: must be a number > 0"),
    (_edit('resources = { cpu = 1, gpu = 0 }', 'resources = { cpus = 1 }'),
     "training.resources.cpus: unknown key (known: cpu, gpu)"),
    (_edit('direction = "minimize"', 'direction = "smaller"'),
     "search.objectives[1].direction = 'smaller': must be one of maximize, minimize"),
    (_edit('{ name = "params", direction = "minimize" }',
           '{ name = "val_accuracy", direction = "minimize" }'), None),
    (_edit('max_epochs = 20', 'max_epochs = 20.5'),
     "training.max_epochs = 20.5: must be an integer in [1, 100000]"),
    (GOOD + "[extra]\nx = 1\n",
     "extra: unknown key (known: study, search, task, training, stopping)"),
    ("[study\nname = 1\n", None),  # TOML syntax error
]


@pytest.mark.parametrize("text,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_study_files_have_one_line_messages(tmp_path: Path, text: str, message: str | None
                                               ) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: ")
    if message is not None:
        assert msg == f"{path}: {message}"


def test_messages_that_list_choices(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_edit('name = "parity"\n', 'name = "parity_x"\n'))
    with pytest.raises(ConfigError, match=r"task\.name = 'parity_x': unknown task; installed: .*"
                                          r"parity"):
        load_config(path)
    path.write_text(_edit('policy = "predictive"', 'policy = "hyperband"'))
    with pytest.raises(ConfigError, match=r"stopping\.policy = 'hyperband': unknown policy; "
                                          r"installed: asha, median, none, predictive"):
        load_config(path)
    path.write_text("[study\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: "):
        load_config(path)


def test_good_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert cfg.name == "parity-quick" and cfg.search.trials == 40
    assert [o.name for o in cfg.search.objectives] == ["val_accuracy", "params"]
    assert cfg.training.cpu == 1.0 and cfg.training.time_limit_s == 300
    again = config_from_dict(cfg.to_dict(), source=str(path))
    assert again == cfg
    assert cfg.with_overrides(trials=5).search.trials == 5
    with pytest.raises(ConfigError, match=r"search\.trials \(--trials\) = 0"):
        cfg.with_overrides(trials=0)


def test_py_study_file(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD)
    py = tmp_path / "study.py"
    py.write_text("from nas.config import load_config\n"
                  f"base = load_config({str(tmp_path / 'good.toml')!r}).to_dict()\n"
                  "base['search']['trials'] = 7\n"
                  "study = base\n")
    cfg = load_config(py)
    assert isinstance(cfg, StudyConfig) and cfg.search.trials == 7 and cfg.source == str(py)
    py.write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"study\.py: study: a \.py study file must define"):
        load_config(py)
    with pytest.raises(ConfigError, match="no such study file"):
        load_config(tmp_path / "missing.toml")


def test_py_study_file_builds_its_config_with_nas_studyconfig(tmp_path: Path) -> None:
    """``from nas import StudyConfig`` is the documented way for a ``.py`` study file to build
    its study in code; the loaded config is that object, with the file as its source."""
    import nas

    assert nas.StudyConfig is StudyConfig and "StudyConfig" in nas.__all__
    py = tmp_path / "coded.py"
    py.write_text("from nas import StudyConfig\n"
                  "trials = [n for n in range(3, 12) if n % 4 == 0][-1]\n"
                  "study = StudyConfig.from_dict({\n"
                  "    'study': {'name': 'coded', 'seed': 3},\n"
                  "    'search': {'space': 'seq_cells', 'trials': trials},\n"
                  "    'task': {'name': 'parity', 'options': {'bits': 4}},\n"
                  "    'training': {'max_epochs': 5, 'device': 'cpu'},\n"
                  "})\n")
    cfg = load_config(py)
    assert isinstance(cfg, StudyConfig) and cfg.source == str(py)
    assert (cfg.name, cfg.study.seed, cfg.search.trials) == ("coded", 3, 8)
    assert dict(cfg.task.options) == {"bits": 4} and cfg.training.max_epochs == 5
    # a bad value in the coded study is still the file's one-line error
    py.write_text("from nas import StudyConfig\n"
                  "study = StudyConfig.from_dict({'study': {'name': 'x'}, 'search': {'space': "
                  "'seq_cells'}, 'task': {'name': 'parity'}, 'training': {'device': 'tpu'}})\n")
    with pytest.raises(ConfigError, match=r"coded\.py: executing the study file failed: "
                                          r"ConfigError: .*training\.device = 'tpu'"):
        load_config(py)


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert main(["validate", str(good)]) == 0
    assert "ok (study 'parity-quick'" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(_edit('trials = 40', 'trials = 0'))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"nas: error: {bad}: search.trials = 0: must be an integer in [1, 1000000]\n"


def test_shipped_study_files_validate() -> None:
    from nas.plugins import build_plugins

    studies = sorted(Path(__file__).resolve().parents[2].joinpath("studies").glob("*.toml"))
    assert len(studies) >= 8, studies  # quickstart + one per built-in task
    tasks = set()
    for path in studies:
        cfg = load_config(path)
        objs = build_plugins(cfg)  # the space's, task's and policy's own option checks
        tasks.add(cfg.task.name)
        assert objs.spec.objective == (cfg.search.objectives[0].name
                                       if cfg.search.objectives else objs.spec.objective)
    from nas.registry import available

    assert set(available("task")) <= tasks


# ------------------------------------------------------------------ one schema
def test_docs_table_of_keys_is_generated_from_the_schema() -> None:
    """docs/runner.md's table of study-file keys is what the section dataclasses declare;
    ``python -m nas.config --docs`` rewrites it after a change."""
    from nas.config import DOCS_BEGIN, DOCS_END, keys_table

    docs = (Path(__file__).parents[2] / "docs" / "runner.md").read_text(encoding="utf-8")
    table = docs.split(DOCS_BEGIN + "\n", 1)[1].split(DOCS_END, 1)[0]
    assert table == keys_table(), "docs/runner.md is stale: run python -m nas.config --docs"


def test_every_key_is_parsed_written_and_documented_from_its_declaration() -> None:
    from dataclasses import fields

    from nas.config import SECTIONS, default_of, keys_table, section_keys
    from nas.runner._resume import RESUME_KEYS, _defaults
    from nas.training import TrainingKeys

    cfg = config_from_dict({"study": {"name": "s"}, "search": {"space": "seq_cells"},
                            "task": {"name": "parity"}})
    table = keys_table()
    for sec, cls in SECTIONS.items():
        for f, r in section_keys(cls):
            dotted = ".".join((sec, *(r.path or (f.name,))))
            assert f"| `{dotted}` |" in table
            if f.name not in ("name", "space", "predictor"):  # required, or policy-dependent
                assert getattr(getattr(cfg, sec), f.name) == default_of(f), dotted
            assert ((sec, f.name) in RESUME_KEYS) == (r.resume and f.name != "objectives")
    # the worker's training options and the --resume defaults come from the same fields
    assert set(cfg.training.trainer_keys()) == {f.name for f in fields(TrainingKeys)}
    assert _defaults()["training"]["max_epochs"] == TrainingKeys().max_epochs
    d = cfg.to_dict()
    assert d["training"]["resources"] == {"cpu": 1.0, "gpu": 0.0}
    assert config_from_dict(d) == cfg


def test_training_options_check_like_the_study_file() -> None:
    from nas.training import TrainingOptions

    with pytest.raises(ConfigError) as info:
        TrainingOptions(max_epochs=0)
    assert str(info.value) == "training.max_epochs = 0: must be an integer in [1, 100000]"
    with pytest.raises(ConfigError, match=r"^training\.threads = 0: must be an integer >= 1"):
        TrainingOptions(threads=0)


@pytest.mark.parametrize("key,value", [("delta", 0.05), ("epsilon", 0.02), ("min_epochs", 2)])
def test_a_stopping_key_has_one_home(tmp_path: Path, key: str, value: float) -> None:
    """``stopping.options.delta`` (and epsilon, min_epochs) of the predictive policy: the old
    spelling still loads, with a deprecation warning; given in both places with different
    values it is an error naming the file and the key, never a silent winner."""
    base = GOOD.replace("delta = 0.05\nmin_epochs = 2\n", "")
    path = tmp_path / "old.toml"
    path.write_text(base + f"options = {{ {key} = {value} }}\n")
    with pytest.warns(FutureWarning, match=rf"stopping\.options\.{key} is deprecated.*"
                                           rf"stopping\.{key}"):
        cfg = load_config(path)
    assert getattr(cfg.stopping, key) == value and key not in cfg.stopping.options
    from nas.plugins import policy_options

    assert policy_options(cfg)[key] == value
    path.write_text(base + f"{key} = {value}\noptions = {{ {key} = {value} }}\n")
    with pytest.warns(FutureWarning):
        assert getattr(load_config(path).stopping, key) == value  # the same value: fine
    path.write_text(base + f"{key} = {value}\noptions = {{ {key} = {value * 2} }}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: stopping.options.{key} = ")
    assert f"conflicts with stopping.{key} = {value!r}" in str(info.value)
    assert main(["validate", str(path)]) == 2
