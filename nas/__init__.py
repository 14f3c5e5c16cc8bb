"""nas: neural-architecture search for sequence models with learning-curve early stopping.

Heavy parts (torch, ray) load lazily: ``import nas`` is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas._checks import Checker  # for plug-ins checking their own options
from nas.errors import (
    ConfigError,
    CurveFileError,
    NasError,
    PluginError,
    PredictorError,
    StorageError,
    StudyNotFoundError,
)

if TYPE_CHECKING:  # loaded lazily at run time (see _LAZY)
    from nas.config import StudyConfig

__version__ = "0.1.0"

__all__ = [
    "Checker",
    "ConfigError",
    "CurveFileError",
    "NasError",
    "PluginError",
    "PredictorError",
    "StorageError",
    "Study",
    "StudyConfig",
    "StudyNotFoundError",
    "__version__",
    "open_study",
    "run",
]

_LAZY = {
    "open_study": ("nas.storage", "open_study"),
    "run": ("nas.api", "run"),
    "Study": ("nas.api", "Study"),
    "StudyConfig": ("nas.config", "StudyConfig"),  # for ``.py`` study files
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
