"""Find plug-ins by entry-point name or by ``"module:attr"``."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from nas.errors import PluginError

__all__ = ["GROUPS", "available", "load", "create"]

GROUPS = {
    "space": "nas.search_spaces",
    "task": "nas.tasks",
    "predictor": "nas.predictors",
    "policy": "nas.policies",
}


def _group(kind: str) -> str:
    try:
        return GROUPS[kind]
    except KeyError:
        raise PluginError(f"unknown plug-in kind {kind!r}; known: {', '.join(GROUPS)}") from None


def available(kind: str) -> list[str]:
    """Names registered under the entry-point group of ``kind`` (sorted)."""
    return sorted({ep.name for ep in entry_points(group=_group(kind))})


def load(kind: str, name: str) -> Any:
    """The object (usually a class) registered as ``name``, or named ``"module:attr"``."""
    group = _group(kind)
    if ":" in name:
        mod_name, _, attr = name.partition(":")
        try:
            obj: Any = importlib.import_module(mod_name)
        except ImportError as exc:
            raise PluginError(f"{kind} {name!r}: cannot import module {mod_name!r}: {exc}") from exc
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise PluginError(
                    f"{kind} {name!r}: module {mod_name!r} has no attribute {attr!r}"
                ) from None
        return obj
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        known = ", ".join(available(kind)) or "none"
        raise PluginError(f"unknown {kind} {name!r}; installed: {known}")
    try:
        return matches[0].load()
    except Exception as exc:  # a broken plug-in must not look like an internal failure
        raise PluginError(f"{kind} {name!r} failed to load: {exc}") from exc


#: What a plug-in of each kind must have (checked on what :func:`create` returns).
_METHODS = {
    "space": ("sample", "build", "features"),
    "task": ("spec", "data"),
    "predictor": ("fit", "predict"),
    "policy": ("decide",),
}


def _describe(obj: Any) -> str:
    text = repr(obj)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(obj).__name__} {text}"


def _check(kind: str, name: str, obj: Any, built: bool) -> Any:
    missing = [m for m in _METHODS.get(kind, ()) if not callable(getattr(obj, m, None))]
    if missing:
        what = f"built {_describe(obj)}" if built else f"is {_describe(obj)}"
        raise PluginError(f"{kind} {name!r} {what}, not a {kind} (no {', '.join(missing)} "
                          "method); name a class or a factory function")
    return obj


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Load ``name`` and construct it with ``options`` as keyword arguments.

    The result must have the methods of its kind (a policy ``decide``, a predictor ``fit`` and
    ``predict``, ...): ``"math:pi"`` is a :class:`~nas.errors.PluginError`, not a silent no-op.
    A ready instance (not callable, but with the methods) is returned as it is."""
    obj = load(kind, name)
    if not callable(obj):
        return _check(kind, name, obj, built=False)
    try:
        made = obj(**(options or {}))
    except TypeError as exc:
        raise PluginError(f"{kind} {name!r}: bad options {options!r}: {exc}") from exc
    return _check(kind, name, made, built=True)
