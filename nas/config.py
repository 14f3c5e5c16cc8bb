"""Study files: a TOML (or ``.py``) file read into a frozen :class:`StudyConfig`.

Who calls what: ``nas run`` / ``nas validate`` / :func:`nas.run` call :func:`load_config` on the
driver before anything else starts; the runner then only reads the frozen result.  Every key is
checked here; a bad file raises :class:`~nas.errors.ConfigError` with one line that names the
file, the key, the value and the rule, e.g.::

    bad.toml: search.trials = 0: must be an integer >= 1

The shape (see the README's "A study file" and docs/runner.md)::

    [study]    name, storage, seed
    [search]   space, space_options, sampler, sampler_options, trials, concurrency, objectives
    [task]     name, options
    [training] max_epochs, batch_size, device, time_limit_s, resources, max_failures, trainer
    [stopping] policy, predictor, delta, epsilon, min_epochs, audit, calibrate, options

Plug-in names (space, task, policy, predictor) must be installed entry points or
``"module:attr"``; the options tables are handed to the plug-in constructors, which validate them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nas._checks import Checker, plain
from nas._json import MAX_DEPTH, too_deep
from nas.errors import ConfigError
from nas.interfaces import DIRECTIONS
from nas.names import check_study_name
from nas.policies import DEFAULT_AUDIT, DEFAULT_DELTA, DEFAULT_EPSILON
from nas.training import DEVICES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DEVICES",
    "POLICIES",
    "SAMPLERS",
    "Objective",
    "SearchSection",
    "StoppingSection",
    "StudyConfig",
    "StudySection",
    "TaskSection",
    "TrainingSection",
    "config_from_dict",
    "load_config",
]

#: ``search.sampler`` names -> the Optuna sampler class (``optuna.samplers.<class>``)
SAMPLERS = {"random": "RandomSampler", "tpe": "TPESampler", "cmaes": "CmaEsSampler",
            "gp": "GPSampler", "nsga2": "NSGAIISampler"}
POLICIES = ("none", "median", "asha", "predictive", "regret")
_PLUGIN_RE = re.compile(r"^[A-Za-z_][\w.\-]*(:[A-Za-z_][\w.]*)?$")


@dataclass(frozen=True)
class Objective:
    """One objective: a metric the worker reports (or ``params``, the parameter count)."""

    name: str
    direction: str = "maximize"


@dataclass(frozen=True)
class StudySection:
    name: str
    storage: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class SearchSection:
    space: str
    space_options: Mapping[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    trials: int = 20
    concurrency: int = 2
    # Empty: the task's own objective and direction (from its TaskSpec).
    objectives: tuple[Objective, ...] = ()


@dataclass(frozen=True)
class TaskSection:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSection:
    max_epochs: int = 20
    batch_size: int = 64
    device: str = "auto"
    time_limit_s: float | None = None
    cpu: float = 1.0
    gpu: float = 0.0
    max_failures: int = 2
    # "module:function" of the nas.interfaces.Trainer run on the worker; None: nas.training.train.
    trainer: str | None = None


@dataclass(frozen=True)
class StoppingSection:
    policy: str = "none"
    predictor: str | None = None
    delta: float = DEFAULT_DELTA
    min_epochs: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    # predictive: stop when P(final > best + epsilon) < delta (epsilon: the regret tolerated)
    epsilon: float = DEFAULT_EPSILON
    # the stop audit: this share of would-be stops runs on to the horizon (0 = off)
    audit: float = DEFAULT_AUDIT
    # recalibrate the predictor's forecasts on the study's own trials before the stop rule
    # uses them (off by default: measured to cost regret, docs/predictors.md)
    calibrate: bool = False


@dataclass(frozen=True)
class StudyConfig:
    """A whole study file, validated.  ``source`` is the file it came from (for messages)."""

    study: StudySection
    search: SearchSection
    task: TaskSection
    training: TrainingSection = field(default_factory=TrainingSection)
    stopping: StoppingSection = field(default_factory=StoppingSection)
    source: str = "<dict>"

    @property
    def name(self) -> str:
        return self.study.name

    def to_dict(self) -> dict[str, Any]:
        """The study-file shape (round-trips through :func:`config_from_dict`); JSON-able."""
        d = asdict(self)
        d.pop("source")
        tr = d["training"]
        tr["resources"] = {"cpu": tr.pop("cpu"), "gpu": tr.pop("gpu")}
        d["search"]["objectives"] = [dict(o) for o in d["search"]["objectives"]]
        for sec in d.values():
            for k in [k for k, v in sec.items() if v is None]:
                del sec[k]
        return plain(d)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> StudyConfig:
        return config_from_dict(data, source=source)

    def with_overrides(self, *, trials: int | None = None, storage: str | None = None,
                       cpu: float | None = None) -> StudyConfig:
        """A copy with command-line overrides applied (validated like the file's keys)."""
        cfg = self
        if trials is not None:
            _Checker(self.source).int_(trials, "search.trials (--trials)", lo=1, hi=MAX_TRIALS)
            cfg = replace(cfg, search=replace(cfg.search, trials=trials))
        if storage is not None:
            cfg = replace(cfg, study=replace(cfg.study, storage=storage))
        if cpu is not None:
            _Checker(self.source).num(cpu, "training.resources.cpu", lo=0.0, lo_open=True)
            cfg = replace(cfg, training=replace(cfg.training, cpu=float(cpu)))
        return cfg


class _Checker(Checker):
    """The study file's checks (:class:`nas._checks.Checker`) plus plug-in names."""

    def plugin(self, v: Any, key: str, kind: str, builtin: tuple[str, ...] = ()) -> str:
        name = self.str_(v, key)
        if ":" in name:
            if not _PLUGIN_RE.match(name):
                raise self.fail(key, v, "must be an installed name or \"module:attr\"")
            return name
        from nas.registry import available

        known = tuple(sorted(set(builtin) | set(available(kind))))
        if name not in known:
            raise self.fail(key, v, f"unknown {kind}; installed: {', '.join(known) or 'none'}"
                            " (or give \"module:attr\")")
        return name


_TOP = ("study", "search", "task", "training", "stopping")
#: Caps shared by the study file and the command-line flags that override it.
MAX_TRIALS = 1_000_000
MAX_EPOCHS = 100_000
#: Seeds (repetitions) a command may be asked for: --seeds of evaluate, bench race/replay.
MAX_SEEDS = 1_000


def config_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> StudyConfig:
    """Validate a study-file dict (the TOML shape) into a :class:`StudyConfig`."""
    c = _Checker(source)
    top = c.table(data, "", _TOP)
    for sec in ("study", "search", "task"):
        if sec not in top:
            raise c.missing(sec)

    s = c.table(top["study"], "study", ("name", "storage", "seed"))
    if "name" not in s:
        raise c.missing("study.name")
    try:
        name = check_study_name(s["name"], "study.name")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    study = StudySection(
        name=name,
        storage=c.str_(s["storage"], "study.storage") if "storage" in s else None,
        seed=c.int_(s.get("seed", 0), "study.seed", lo=0, hi=2**32 - 1),
    )

    se = c.table(top["search"], "search", ("space", "space_options", "sampler", "sampler_options",
                                           "trials", "concurrency", "objectives"))
    if "space" not in se:
        raise c.missing("search.space")
    objectives: list[Objective] = []
    raw_obj = se.get("objectives", [])
    if not isinstance(raw_obj, list) or len(raw_obj) > 2:
        raise c.fail("search.objectives", raw_obj,
                     "must be a list of one or two {name, direction} tables")
    for i, o in enumerate(raw_obj):
        key = f"search.objectives[{i}]"
        o = c.table(o, key, ("name", "direction"))
        if "name" not in o:
            raise c.missing(f"{key}.name")
        objectives.append(Objective(
            name=c.str_(o["name"], f"{key}.name", pattern=re.compile(r"^[A-Za-z_]\w*$"),
                        rule="must be an identifier (letters, digits, '_')"),
            direction=c.choice(o.get("direction", "maximize"), f"{key}.direction",
                               DIRECTIONS),
        ))
    if len({o.name for o in objectives}) != len(objectives):
        raise c.fail("search.objectives", raw_obj, "objective names must be distinct")
    sampler = c.choice(se.get("sampler", "tpe"), "search.sampler", tuple(SAMPLERS))
    if sampler == "cmaes" and len(objectives) > 1:
        raise c.fail("search.sampler", sampler, "cmaes handles one objective only; use nsga2, "
                     "tpe, gp or random for two")
    search = SearchSection(
        space=c.plugin(se["space"], "search.space", "space"),
        space_options=c.mapping(se.get("space_options", {}), "search.space_options"),
        sampler=sampler,
        sampler_options=c.mapping(se.get("sampler_options", {}), "search.sampler_options"),
        trials=c.int_(se.get("trials", 20), "search.trials", lo=1, hi=MAX_TRIALS),
        concurrency=c.int_(se.get("concurrency", 2), "search.concurrency", lo=1, hi=10_000),
        objectives=tuple(objectives),
    )

    t = c.table(top["task"], "task", ("name", "options"))
    if "name" not in t:
        raise c.missing("task.name")
    task = TaskSection(name=c.plugin(t["name"], "task.name", "task"),
                       options=c.mapping(t.get("options", {}), "task.options"))

    tr = c.table(top.get("training", {}), "training",
                 ("max_epochs", "batch_size", "device", "time_limit_s", "resources",
                  "max_failures", "trainer"))
    res = c.table(tr.get("resources", {}), "training.resources", ("cpu", "gpu"))
    time_limit = tr.get("time_limit_s")
    trainer = tr.get("trainer")
    if trainer is not None:
        trainer = c.str_(trainer, "training.trainer", pattern=re.compile(r"^[\w.]+:[\w.]+$"),
                         rule="must be \"module:function\"")
    training = TrainingSection(
        max_epochs=c.int_(tr.get("max_epochs", 20), "training.max_epochs", lo=1, hi=MAX_EPOCHS),
        batch_size=c.int_(tr.get("batch_size", 64), "training.batch_size", lo=1, hi=1_000_000),
        device=c.choice(tr.get("device", "auto"), "training.device", DEVICES),
        time_limit_s=(None if time_limit is None else
                      c.num(time_limit, "training.time_limit_s", lo=0.0, lo_open=True)),
        cpu=c.num(res.get("cpu", 1), "training.resources.cpu", lo=0.0, lo_open=True),
        gpu=c.num(res.get("gpu", 0), "training.resources.gpu", lo=0.0),
        max_failures=c.int_(tr.get("max_failures", 2), "training.max_failures", lo=0, hi=100),
        trainer=trainer,
    )
    if training.device == "cuda" and training.gpu == 0:
        raise c.fail("training.device", "cuda", "needs training.resources.gpu > 0")

    st = c.table(top.get("stopping", {}), "stopping",
                 ("policy", "predictor", "delta", "min_epochs", "options", "epsilon", "audit",
                  "calibrate"))
    policy = c.plugin(st.get("policy", "none"), "stopping.policy", "policy", POLICIES)
    predictor = st.get("predictor")
    if predictor is not None:
        predictor = c.plugin(predictor, "stopping.predictor", "predictor")
    elif policy == "regret":  # the shipped default rule reads the shipped pfn
        predictor = "pfn"
    elif policy == "predictive":
        raise c.missing("stopping.predictor (policy \"predictive\" needs one)")
    stopping = StoppingSection(
        policy=policy,
        predictor=predictor,
        delta=c.num(st.get("delta", DEFAULT_DELTA), "stopping.delta", lo=0.0, hi=1.0, lo_open=True,
                    hi_open=True),
        min_epochs=c.int_(st.get("min_epochs", 1), "stopping.min_epochs", lo=1,
                          hi=training.max_epochs),
        options=c.mapping(st.get("options", {}), "stopping.options"),
        epsilon=c.num(st.get("epsilon", DEFAULT_EPSILON), "stopping.epsilon", lo=0.0, hi=1.0,
                      hi_open=True),
        audit=c.num(st.get("audit", DEFAULT_AUDIT), "stopping.audit", lo=0.0, hi=1.0,
                    hi_open=True),
        calibrate=c.bool_(st.get("calibrate", False), "stopping.calibrate"),
    )
    return StudyConfig(study=study, search=search, task=task, training=training,
                       stopping=stopping, source=source)


#: How long executing a ``.py`` study file may take (``NAS_PY_STUDY_TIMEOUT_S`` overrides).
PY_STUDY_TIMEOUT_S = 30.0

# Runs in a child process: executes the study file and writes ``{"study": <plain data>}`` or
# ``{"error": "..."}`` to the result file; then exits at once (threads it started don't count).
_PY_LOADER = """
import json, os, runpy, sys
path, result = sys.argv[1], sys.argv[2]
sys.path[:] = [p for p in os.environ.pop("NAS_STUDY_SYS_PATH", "").split(os.pathsep) if p] \\
    or sys.path
sys.stdout = sys.stderr  # the study file's prints never reach nas's stdout
def done(doc):
    with open(result, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    sys.stderr.flush()
    os._exit(0)
try:
    ns = runpy.run_path(path, run_name="nas_study_file")
except SystemExit as exc:
    done({"error": "the study file called exit(%r); a .py study file must define `study`, "
                   "not exit" % (exc.code,)})
except BaseException as exc:
    done({"error": "executing the study file failed: %s: %s"
                   % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")})
if "study" not in ns:
    done({"error": "study: a .py study file must define `study` (a StudyConfig or a dict "
                   "shaped like the TOML file)"})
obj = ns["study"]
try:
    from nas.config import StudyConfig
    if isinstance(obj, StudyConfig):
        obj = obj.to_dict()
    elif not isinstance(obj, dict):
        done({"error": "study = %s: must be a StudyConfig or a dict" % type(obj).__name__})
    text = json.dumps({"study": obj}, allow_nan=False)
except BaseException as exc:
    done({"error": "study: must be plain data like a TOML file (tables, lists, strings, "
                   "numbers, booleans): %s: %s" % (type(exc).__name__, exc)})
with open(result, "w", encoding="utf-8") as f:
    f.write(text)
os._exit(0)
"""


def _run_py_study(path: Path) -> dict[str, Any]:
    """Execute the ``.py`` study file ``path`` in a child process, bounded: a timeout, any
    ``BaseException``, an exit without a result, or a ``study`` that is not plain data (a
    self-referencing dict, say) is a :class:`ConfigError` naming the file.  Returns its
    ``study`` as the TOML-shaped dict."""
    import json
    import os
    import subprocess
    import tempfile

    source = str(path)
    timeout = float(os.environ.get("NAS_PY_STUDY_TIMEOUT_S") or PY_STUDY_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="nas-study-") as tmp:
        result = Path(tmp) / "study.json"
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _PY_LOADER, str(path.resolve()), str(result)],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                env={**os.environ, "NAS_STUDY_SYS_PATH": os.pathsep.join(sys.path)},
                check=False)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"{source}: executing the study file took longer than "
                              f"{timeout:g} s; a .py study file must define `study` and "
                              "return") from None
        if proc.stderr:  # what the study file printed
            sys.stderr.write(proc.stderr)
        try:
            text = result.read_text(encoding="utf-8")
        except OSError:
            text = ""
    if not text:
        raise ConfigError(f"{source}: the study file exited (code {proc.returncode}) without "
                          "defining `study`; a .py study file must define it")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{source}: study nests deeper than {MAX_DEPTH} levels") from None
    if "error" in doc:
        raise ConfigError(f"{source}: {doc['error']}")
    study = doc["study"]
    if too_deep(study):
        raise ConfigError(f"{source}: study nests deeper than {MAX_DEPTH} levels")
    return dict(study)


def load_config(path_or_config: str | Path | StudyConfig | Mapping[str, Any]) -> StudyConfig:
    """Read and validate a study file (``.toml``, or ``.py`` defining ``study``).

    A ``.py`` file is executed (the explicit escape hatch for users who need code); its
    ``study`` may be a :class:`StudyConfig` or a dict of the TOML shape.  Already-built configs
    and dicts are accepted too (the Python API passes them through).
    """
    if isinstance(path_or_config, StudyConfig):
        return path_or_config
    if isinstance(path_or_config, Mapping):
        return config_from_dict(path_or_config)
    path = Path(path_or_config)
    source = str(path)
    if not path.is_file():
        raise ConfigError(f"{source}: no such study file")
    from nas.registry import add_import_path

    add_import_path(path.parent)  # "module:attr" plug-ins next to the study file import
    if path.suffix == ".py":
        return config_from_dict(_run_py_study(path), source=source)
    if path.suffix not in (".toml", ".json"):  # .json: the TOML shape (`nas best -o x.json`)
        raise ConfigError(f"{source}: unsupported study file type {path.suffix!r}; "
                          "use .toml, .json or .py")
    import json

    kind = path.suffix[1:].upper()
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{source}: not valid {kind}: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{source}: nests deeper than Python can read") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a JSON study file holds one object (the tables)")
    if too_deep(data):
        raise ConfigError(f"{source}: nests deeper than {MAX_DEPTH} levels")
    return config_from_dict(data, source=source)
