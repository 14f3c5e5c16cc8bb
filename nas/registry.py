"""Find plug-ins by entry-point name or by ``"module:attr"``, and check them against their
protocols before anything is constructed or called.

A trainer (``training.trainer``) has no entry-point group: it is always a ``"module:function"``,
loaded as kind ``"trainer"`` and checked by :func:`check_trainer` against
:class:`nas.interfaces.Trainer`.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from nas.errors import PluginError

__all__ = ["GROUPS", "PROTOCOLS", "add_import_path", "available", "check_class", "check_trainer",
           "create", "load", "trainer_arguments"]

GROUPS = {
    "space": "nas.search_spaces",
    "task": "nas.tasks",
    "predictor": "nas.predictors",
    "policy": "nas.policies",
}


#: The methods a plug-in class of each kind must declare before nas constructs it (a
#: ``"module:attr"`` name can point at any callable: ``os:system`` must never be called).
PROTOCOLS = {
    "space": ("sample", "build", "features"),
    "task": ("spec", "data"),
    "predictor": ("fit", "predict"),
    "policy": ("decide",),
}


def _group(kind: str) -> str:
    try:
        return GROUPS[kind]
    except KeyError:
        raise PluginError(f"unknown plug-in kind {kind!r}; known: {', '.join(GROUPS)}") from None


def add_import_path(*folders: str | Path) -> None:
    """Let ``"module:attr"`` plug-ins import from ``folders`` (a study file's folder: pytest's
    rootdir habit).  Appended to ``sys.path``, so a file there never shadows an installed
    module of the same name."""
    for folder in folders:
        text = str(Path(folder).resolve())
        if text not in sys.path:
            sys.path.append(text)
            importlib.invalidate_caches()


def available(kind: str) -> list[str]:
    """Names registered under the entry-point group of ``kind`` (sorted)."""
    return sorted({ep.name for ep in entry_points(group=_group(kind))})


def load(kind: str, name: str) -> Any:
    """The object (usually a class) registered as ``name``, or named ``"module:attr"`` (any
    ``kind`` for the latter, e.g. ``"trainer"``; it only names errors)."""
    if ":" in name:
        mod_name, _, attr = name.partition(":")
        try:
            obj: Any = importlib.import_module(mod_name)
        except ImportError as exc:
            raise PluginError(f"{kind} {name!r}: cannot import module {mod_name!r}: {exc} "
                              "(nas imports from the study file's folder and the installed "
                              "packages; elsewhere, set PYTHONPATH)") from exc
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise PluginError(
                    f"{kind} {name!r}: module {mod_name!r} has no attribute {attr!r}"
                ) from None
        return obj
    group = _group(kind)
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        known = ", ".join(available(kind)) or "none"
        raise PluginError(f"unknown {kind} {name!r}; installed: {known}")
    try:
        return matches[0].load()
    except Exception as exc:  # a broken plug-in must not look like an internal failure
        raise PluginError(f"{kind} {name!r} failed to load: {exc}") from exc


def check_class(kind: str, name: str, obj: Any) -> type:
    """``obj`` if it is a class declaring every method of ``kind``'s protocol, else
    :class:`PluginError` (nothing is called or constructed here)."""
    need = PROTOCOLS.get(kind, ())
    if not isinstance(obj, type):
        raise PluginError(f"{kind} {name!r} is a {type(obj).__name__}, not a {kind} plug-in: "
                          f"expected a class with the methods {', '.join(need)}")
    missing = [m for m in need if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(f"{kind} {name!r} is not a {kind} plug-in: the class lacks the "
                          f"method(s) {', '.join(missing)} (needs {', '.join(need)})")
    return obj


def trainer_arguments() -> tuple[str, ...]:
    """The positional arguments every trainer is called with, read from the
    :class:`nas.interfaces.Trainer` protocol: ``space, config, task, options, report``."""
    import inspect

    from nas.interfaces import Trainer

    params = list(inspect.signature(Trainer.__call__).parameters)
    return tuple(params[1:])  # without ``self``


def check_trainer(name: str) -> Any:
    """The training function named ``"module:function"``: imported, and required to be a plain
    function (not a class, not a builtin such as ``os:system``) that can be called with the
    arguments of the :class:`nas.interfaces.Trainer` protocol; nothing is called."""
    import inspect

    if ":" not in name:
        raise PluginError(f"trainer {name!r}: must be \"module:function\"")
    obj = load("trainer", name)
    if not inspect.isfunction(obj):
        raise PluginError(f"trainer {name!r} is a {type(obj).__name__}, not a training function "
                          "(a Python function with the signature of nas.training.train)")
    args = trainer_arguments()
    try:
        inspect.signature(obj).bind(*args)
    except TypeError as exc:
        raise PluginError(f"trainer {name!r} is not a training function: it cannot be called "
                          f"as trainer({', '.join(args)}) ({exc}); see nas.interfaces.Trainer"
                          ) from None
    return obj


def _describe(obj: Any) -> str:
    text = repr(obj)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(obj).__name__} {text}"


def _check(kind: str, name: str, obj: Any, built: bool) -> Any:
    missing = [m for m in PROTOCOLS.get(kind, ()) if not callable(getattr(obj, m, None))]
    if missing:
        what = f"built {_describe(obj)}" if built else f"is {_describe(obj)}"
        raise PluginError(f"{kind} {name!r} {what}, not a {kind} (no {', '.join(missing)} "
                          "method); name a class or a factory function")
    return obj


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Load ``name``, check that it is a class of ``kind``'s protocol (:data:`PROTOCOLS`) and
    construct it with ``options`` as keyword arguments."""
    obj = check_class(kind, name, load(kind, name))
    try:
        made = obj(**(options or {}))
    except TypeError as exc:
        raise PluginError(f"{kind} {name!r}: bad options {options!r}: {exc}") from exc
    return _check(kind, name, made, built=True)
