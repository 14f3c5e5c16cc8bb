"""Study files: a TOML (or ``.py``) file read into a frozen :class:`StudyConfig`.

Who calls what: ``nas run`` / ``nas validate`` / :func:`nas.run` call :func:`load_config` on the
driver before anything else starts; the runner then only reads the frozen result.  Every key is
checked here; a bad file raises :class:`~nas.errors.ConfigError` with one line that names the
file, the key, the value and the rule, e.g.::

    bad.toml: search.trials = 0: must be an integer in [1, 1000000]

The shape is declared once, by the section dataclasses below: each field is a study-file key
whose default, rule and doc are its :func:`nas._checks.key` metadata.  Parsing
(:func:`config_from_dict`), :meth:`StudyConfig.to_dict`, the command-line overrides
(:meth:`StudyConfig.override`), ``--resume``'s comparison (``nas.runner._resume``), the worker's
training options (:class:`nas.training.TrainingKeys`, which :class:`TrainingSection` extends)
and the table of keys in docs/runner.md (:func:`keys_table`; ``python -m nas.config --docs``
rewrites it) all read them::

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
import warnings
from collections.abc import Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from dataclasses import replace as replace_rule
from pathlib import Path
from typing import Any

from nas._checks import Checker, Rule, key, plain, rule_of
from nas._json import MAX_DEPTH, too_deep
from nas.errors import ConfigError
from nas.interfaces import DIRECTIONS
from nas.names import check_study_name
from nas.policies import DEFAULT_AUDIT, DEFAULT_DELTA, DEFAULT_EPSILON
from nas.training import DEFAULT_TRAINER, DEVICES, MAX_EPOCHS, TrainingKeys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DEVICES",
    "POLICIES",
    "SAMPLERS",
    "SECTIONS",
    "STOPPING_KEYS",
    "Objective",
    "SearchSection",
    "StoppingSection",
    "StudyConfig",
    "StudySection",
    "TaskSection",
    "TrainingSection",
    "config_from_dict",
    "keys_table",
    "load_config",
]

#: ``search.sampler`` names -> the Optuna sampler class (``optuna.samplers.<class>``)
SAMPLERS = {"random": "RandomSampler", "tpe": "TPESampler", "cmaes": "CmaEsSampler",
            "gp": "GPSampler", "nsga2": "NSGAIISampler"}
POLICIES = ("none", "median", "asha", "predictive", "regret")
#: The ``[stopping]`` keys a built-in policy is given (:func:`nas.plugins.stopping_options`):
#: their one home is the ``[stopping]`` table, not ``stopping.options``.
STOPPING_KEYS: dict[str, tuple[str, ...]] = {"predictive": ("delta", "epsilon", "min_epochs"),
                                             "regret": ("min_epochs",)}
#: Caps shared by the study file and the command-line flags that override it.
MAX_TRIALS = 1_000_000
#: Seeds (repetitions) a command may be asked for: --seeds of evaluate, bench race/replay.
MAX_SEEDS = 1_000
_PLUGIN_PATTERN = r"^[A-Za-z_][\w.\-]*(:[A-Za-z_][\w.]*)?$"
_IDENT = r"^[A-Za-z_]\w*$"


@dataclass(frozen=True)
class Objective:
    """One objective: a metric the worker reports (or ``params``, the parameter count)."""

    name: str = key(kind="str", pattern=_IDENT,
                    rule="must be an identifier (letters, digits, '_')")
    direction: str = key("maximize", kind="choice", choices=DIRECTIONS)


@dataclass(frozen=True)
class StudySection:
    name: str = key(kind="custom", doc="unique in the storage; letters, digits, `_ . -`")
    storage: str | None = key(None, kind="str", optional=True, shown="–",
                              doc="database URL; `--storage` and `NAS_STORAGE` win; else "
                                  "`sqlite:///nas.db`")
    seed: int = key(0, kind="int", lo=0, hi=2**32 - 1,
                    doc="seeds the sampler; trial *n* trains with seed `seed + n`")


@dataclass(frozen=True)
class SearchSection:
    space: str = key(kind="plugin", plugin="space", resume=True,
                     doc="entry-point name (`seq_cells`) or `\"module:attr\"`")
    space_options: Mapping[str, Any] = key(
        factory=dict, kind="table", resume=True,
        doc="handed to the space's constructor (which validates them)")
    sampler: str = key("tpe", kind="choice", choices=tuple(SAMPLERS),
                       doc="`random`, `tpe`, `cmaes`, `gp`, `nsga2` (Optuna samplers)")
    sampler_options: Mapping[str, Any] = key(
        factory=dict, kind="table",
        doc="keyword arguments of the sampler (e.g. `n_startup_trials`)")
    trials: int = key(20, kind="int", lo=1, hi=MAX_TRIALS,
                      doc="trial budget: COMPLETE + STOPPED + FAILED trials of the study")
    concurrency: int = key(2, kind="int", lo=1, hi=10_000, doc="trials running at once")
    # Empty: the task's own objective and direction (from its TaskSpec).
    objectives: tuple[Objective, ...] = key(
        (), kind="custom", shown="task's", resume=True,
        doc="one or two `{name, direction}`; the first must be the task's objective, the "
            "second any metric the trainer reports (e.g. `params`, the parameter count). Every "
            "objective is stored per trial; two objectives make a multi-objective (Pareto) "
            "search")


@dataclass(frozen=True)
class TaskSection:
    name: str = key(kind="plugin", plugin="task", resume=True,
                    doc="a built-in task (see `docs/tasks.md`) or `\"module:attr\"`")
    options: Mapping[str, Any] = key(factory=dict, kind="table", resume=True,
                                     doc="handed to the task's constructor")


@dataclass(frozen=True)
class TrainingSection(TrainingKeys):
    """``[training]``: the keys every trainer gets (:class:`nas.training.TrainingKeys`) and the
    driver's own."""

    cpu: float = key(1.0, kind="num", lo=0.0, lo_open=True, path=("resources", "cpu"),
                     doc="Ray CPUs of one trial (fractions allowed)")
    gpu: float = key(0.0, kind="num", lo=0.0, path=("resources", "gpu"),
                     doc="Ray GPUs of one trial (fractions allowed)")
    max_failures: int = key(2, kind="int", lo=0, hi=100,
                            doc="retries of a trial whose *worker died* (not of a trial that "
                                "raised)")
    # "module:function" of the nas.interfaces.Trainer run on the worker; None: nas.training.train.
    trainer: str | None = key(
        None, kind="str", optional=True, resume=True, pattern=r"^[\w.]+:[\w.]+$",
        rule="must be \"module:function\"", shown=f"`{DEFAULT_TRAINER}`",
        doc="`\"module:function\"` keeping the `nas.interfaces.Trainer` protocol, for custom "
            "training loops: called as `trainer(space, config, task, options, report)` with "
            "`options` a `nas.training.TrainingOptions` (the `training` keys above but "
            "`resources` and `max_failures`, and `seed`, `threads`), it calls "
            "`report(epoch, metrics)` after every epoch (see [the trainer contract]"
            "(tasks.md#the-trainer-contract)); `nas validate` imports it and checks that it is "
            "a function taking those five arguments")


@dataclass(frozen=True)
class StoppingSection:
    policy: str = key("none", kind="plugin", plugin="policy", choices=POLICIES,
                      doc="`none`, `median`, `asha`, `predictive`, `regret` or "
                          "`\"module:attr\"`")
    predictor: str | None = key(None, kind="plugin", plugin="predictor", optional=True,
                                shown="–", doc="required for `predictive` (`regret`: `pfn`): "
                                               "`pfn`, `baker` or `\"module:attr\"`")
    delta: float = key(DEFAULT_DELTA, kind="num", lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                       doc="`predictive`: stop when P(final > best + epsilon) < delta (the "
                           "default bounds the chance of discarding an improvement over a "
                           "~50-trial study by about 10%; see docs/predictors.md)")
    min_epochs: int = key(1, kind="int", lo=1, hi=MAX_EPOCHS,
                          doc="`predictive`, `regret`: never stop before this epoch (at most "
                              "`training.max_epochs`)")
    options: Mapping[str, Any] = key(
        factory=dict, kind="table",
        doc="other policy options, e.g. `{grace_period = 1, reduction_factor = 3}` for `asha`, "
            "`{n_startup_trials = 5}` for `median`")
    # predictive: stop when P(final > best + epsilon) < delta (epsilon: the regret tolerated)
    epsilon: float = key(DEFAULT_EPSILON, kind="num", lo=0.0, hi=1.0, hi_open=True,
                         doc="`predictive`: the regret tolerance: stop when "
                             "P(final > best + epsilon) < delta")
    # the stop audit: this share of would-be stops runs on to the horizon (0 = off)
    audit: float = key(DEFAULT_AUDIT, kind="num", lo=0.0, hi=1.0, hi_open=True,
                       doc="this share of would-be stops runs on to the horizon, to measure "
                           "the stops' regret (0 = off)")
    # recalibrate the predictor's forecasts on the study's own trials before the stop rule
    # uses them (off by default: measured to cost regret, docs/predictors.md)
    calibrate: bool = key(False, kind="bool",
                          doc="recalibrate the predictor's forecasts on the study's own trials "
                              "before the stop rule uses them (measured to cost regret, "
                              "docs/predictors.md)")


SECTIONS: dict[str, type] = {"study": StudySection, "search": SearchSection,
                              "task": TaskSection, "training": TrainingSection,
                              "stopping": StoppingSection}


def section_keys(cls: type) -> list[tuple[Field[Any], Rule]]:
    """The study-file keys a section dataclass declares, in order."""
    return [(f, r) for f in fields(cls) if (r := rule_of(f)) is not None]


def _path(f: Field[Any], r: Rule) -> tuple[str, ...]:
    return r.path or (f.name,)


def _has_default(f: Field[Any]) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def default_of(f: Field[Any]) -> Any:
    """A field's default value (a fresh one for a ``factory``)."""
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None if f.default is MISSING else f.default


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
        """The study-file shape (round-trips through :func:`config_from_dict`); JSON-able.
        Keys left None are left out; nested keys (``resources``) come last in their section."""
        d: dict[str, Any] = {}
        for sec, cls in SECTIONS.items():
            values = asdict(getattr(self, sec))
            flat: dict[str, Any] = {}
            nested: dict[str, Any] = {}
            for f, r in section_keys(cls):
                v = values[f.name]
                if v is None:
                    continue
                path = _path(f, r)
                if len(path) == 1:
                    flat[f.name] = v
                else:
                    nested.setdefault(path[0], {})[path[1]] = v
            d[sec] = {**flat, **nested}
        return plain(d)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> StudyConfig:
        return config_from_dict(data, source=source)

    def override(self, dotted: str, value: Any, *, flag: str = "") -> StudyConfig:
        """A copy with the key ``section.field`` set to ``value``, checked by the key's rule
        (the error names ``flag``, the command-line option that gave it, if any)."""
        sec, name = dotted.split(".", 1)
        obj = getattr(self, sec)
        f, r = next((f, r) for f, r in section_keys(type(obj)) if f.name == name)
        label = ".".join((sec, *_path(f, r))) + (f" ({flag})" if flag else "")
        v = _Checker(self.source).rule(value, label, r)
        return replace(self, **{sec: replace(obj, **{name: v})})

    def with_overrides(self, *, trials: int | None = None, storage: str | None = None,
                       cpu: float | None = None) -> StudyConfig:
        """A copy with command-line overrides applied (validated like the file's keys)."""
        cfg = self
        for dotted, value, flag in (("search.trials", trials, "--trials"),
                                    ("study.storage", storage, ""),
                                    ("training.cpu", cpu, "")):
            if value is not None:
                cfg = cfg.override(dotted, value, flag=flag)
        return cfg


class _Checker(Checker):
    """The study file's checks (:class:`nas._checks.Checker`) plus plug-in names."""

    def rule(self, v: Any, key: str, r: Rule) -> Any:
        if r.kind == "plugin" and not (r.optional and v is None):
            return self.plugin(v, key, r.plugin, r.choices)
        return super().rule(v, key, r)

    def plugin(self, v: Any, key: str, kind: str, builtin: tuple[str, ...] = ()) -> str:
        name = self.str_(v, key)
        if ":" in name:
            if not re.match(_PLUGIN_PATTERN, name):
                raise self.fail(key, v, "must be an installed name or \"module:attr\"")
            return name
        from nas.registry import available

        known = tuple(sorted(set(builtin) | set(available(kind))))
        if name not in known:
            raise self.fail(key, v, f"unknown {kind}; installed: {', '.join(known) or 'none'}"
                            " (or give \"module:attr\")")
        return name


def _read(c: _Checker, sec: str, data: Any,
          rules: Mapping[str, Rule] | None = None) -> dict[str, Any]:
    """The keys of section ``sec`` given in ``data``, checked by their rules (``rules``
    replaces some; ``"custom"`` keys are returned as given): field name -> value."""
    keys = section_keys(SECTIONS[sec])
    raw = c.table(data, sec, list(dict.fromkeys(_path(f, r)[0] for f, r in keys)))
    tables: dict[str, dict[str, Any]] = {}
    for f, r in keys:
        path = _path(f, r)
        if len(path) == 2 and path[0] not in tables:
            tables[path[0]] = c.table(raw.get(path[0], {}), f"{sec}.{path[0]}",
                                      [p[1] for p in (_path(g, q) for g, q in keys)
                                       if p[0] == path[0] and len(p) == 2])
    for f, r in keys:
        if not _has_default(f) and f.name not in raw:
            raise c.missing(f"{sec}.{f.name}")
    out: dict[str, Any] = {}
    for f, r in keys:
        path = _path(f, r)
        table = raw if len(path) == 1 else tables[path[0]]
        if path[-1] not in table or (r.optional and table[path[-1]] is None):
            continue
        v = table[path[-1]]
        r = (rules or {}).get(f.name, r)
        out[f.name] = v if r.kind == "custom" else c.rule(v, ".".join((sec, *path)), r)
    return out


def _objectives(c: _Checker, raw: Any) -> tuple[Objective, ...]:
    if not isinstance(raw, list) or len(raw) > 2:
        raise c.fail("search.objectives", raw,
                     "must be a list of one or two {name, direction} tables")
    out: list[Objective] = []
    for i, o in enumerate(raw):
        where = f"search.objectives[{i}]"
        o = c.table(o, where, [f.name for f in fields(Objective)])
        kw: dict[str, Any] = {}
        for f, r in section_keys(Objective):
            if f.name in o:
                kw[f.name] = c.rule(o[f.name], f"{where}.{f.name}", r)
            elif not _has_default(f):
                raise c.missing(f"{where}.{f.name}")
        out.append(Objective(**kw))
    if len({o.name for o in out}) != len(out):
        raise c.fail("search.objectives", raw, "objective names must be distinct")
    return tuple(out)


def _stopping_options(c: _Checker, st: dict[str, Any], given: Mapping[str, Any],
                      source: str) -> None:
    """One key, one home: a key of :data:`STOPPING_KEYS` written in ``stopping.options`` too
    moves to ``[stopping]`` with a deprecation warning; given in both with different values,
    it is an error."""
    options = dict(st.get("options", {}))
    rules = {f.name: r for f, r in section_keys(StoppingSection)}
    for name in STOPPING_KEYS.get(st["policy"], ()):
        if name not in options:
            continue
        value = c.rule(options.pop(name), f"stopping.options.{name}", rules[name])
        if name in given and st[name] != value:
            raise c.fail(f"stopping.options.{name}", value,
                         f"conflicts with stopping.{name} = {st[name]!r}; give it once, as "
                         f"stopping.{name}")
        st[name] = value
        warnings.warn(f"{source}: stopping.options.{name} is deprecated: write it as "
                      f"stopping.{name} (its one home)", FutureWarning, stacklevel=4)
    st["options"] = options


def config_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> StudyConfig:
    """Validate a study-file dict (the TOML shape) into a :class:`StudyConfig`."""
    c = _Checker(source)
    top = c.table(data, "", tuple(SECTIONS))
    for sec in ("study", "search", "task"):
        if sec not in top:
            raise c.missing(sec)

    s = _read(c, "study", top["study"])
    try:
        s["name"] = check_study_name(s["name"], "study.name")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    study = StudySection(**s)

    se = _read(c, "search", top["search"])
    se["objectives"] = _objectives(c, se.get("objectives", []))
    if se.get("sampler") == "cmaes" and len(se["objectives"]) > 1:
        raise c.fail("search.sampler", "cmaes", "cmaes handles one objective only; use nsga2, "
                     "tpe, gp or random for two")
    search = SearchSection(**se)

    task = TaskSection(**_read(c, "task", top["task"]))

    training = TrainingSection(**_read(c, "training", top.get("training", {})))
    if training.device == "cuda" and training.gpu == 0:
        raise c.fail("training.device", "cuda", "needs training.resources.gpu > 0")

    min_epochs = next(r for f, r in section_keys(StoppingSection) if f.name == "min_epochs")
    given = top.get("stopping", {})
    st = _read(c, "stopping", given,
               {"min_epochs": replace_rule(min_epochs, hi=training.max_epochs)})
    st.setdefault("policy", StoppingSection.policy)
    if st.get("predictor") is None:
        if st["policy"] == "regret":  # the shipped default rule reads the shipped pfn
            st["predictor"] = "pfn"
        elif st["policy"] == "predictive":
            raise c.missing("stopping.predictor (policy \"predictive\" needs one)")
    if "options" in st:
        _stopping_options(c, st, given, source)
    stopping = StoppingSection(**st)
    return StudyConfig(study=study, search=search, task=task, training=training,
                       stopping=stopping, source=source)


# ------------------------------------------------------------------ the docs table
#: The markers around the generated table of study-file keys in docs/runner.md.
DOCS_BEGIN = "<!-- study-keys: generated from nas/config.py by `python -m nas.config --docs` -->"
DOCS_END = "<!-- /study-keys -->"


def _shown(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str):
        return f"`{v}`"
    if isinstance(v, Mapping) and not v:
        return "`{}`"
    return f"{v:g}" if isinstance(v, float) else str(v)


def keys_table() -> str:
    """The Markdown table of every study-file key: default, ``--resume`` rule and meaning."""
    lines = ["| key | default | on `--resume` | meaning |", "|---|---|---|---|"]
    for sec, cls in SECTIONS.items():
        for f, r in section_keys(cls):
            shown = r.shown if r.shown is not None else (
                _shown(default_of(f)) if _has_default(f) else "required")
            resume = ("names the study" if (sec, f.name) == ("study", "name") else
                      "must match" if r.resume else "may change")
            lines.append(f"| `{'.'.join((sec, *_path(f, r)))}` | {shown} | {resume} "
                         f"| {r.doc} |")
    return "\n".join(lines) + "\n"


def docs_with_table(text: str) -> str:
    """``text`` (docs/runner.md) with the table between the markers replaced by
    :func:`keys_table`."""
    head, sep, rest = text.partition(DOCS_BEGIN + "\n")
    _, sep2, tail = rest.partition(DOCS_END)
    if not sep or not sep2:
        raise ValueError(f"the markers {DOCS_BEGIN!r} ... {DOCS_END!r} are missing")
    return head + DOCS_BEGIN + "\n" + keys_table() + DOCS_END + tail


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


if __name__ == "__main__":  # python -m nas.config --docs [FILE]: rewrite the docs table
    _args = sys.argv[1:]
    if not _args or _args[0] != "--docs":
        sys.exit("usage: python -m nas.config --docs [docs/runner.md]")
    _doc = Path(_args[1] if len(_args) > 1 else Path(__file__).parents[1] / "docs" / "runner.md")
    _doc.write_text(docs_with_table(_doc.read_text(encoding="utf-8")), encoding="utf-8")
