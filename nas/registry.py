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


def create(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Load ``name`` and construct it with ``options`` as keyword arguments."""
    obj = load(kind, name)
    if not callable(obj):
        return obj
    try:
        return obj(**(options or {}))
    except TypeError as exc:
        raise PluginError(f"{kind} {name!r}: bad options {options!r}: {exc}") from exc
