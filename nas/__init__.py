"""nas: neural-architecture search for sequence models with learning-curve early stopping.

Heavy parts (torch, ray) load lazily: ``import nas`` is cheap.
"""

from __future__ import annotations

from typing import Any

from nas.errors import (
    ConfigError,
    CurveFileError,
    NasError,
    PluginError,
    PredictorError,
    StorageError,
    StudyNotFoundError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "NasError",
    "ConfigError",
    "StorageError",
    "PluginError",
    "CurveFileError",
    "StudyNotFoundError",
    "PredictorError",
    "open_study",
    "run",
    "Study",
]

_LAZY = {
    "open_study": ("nas.storage", "open_study"),
    "run": ("nas.api", "run"),
    "Study": ("nas.api", "Study"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
