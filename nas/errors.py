"""The one exception tree of nas.

The CLI prints the message of a :class:`NasError` on one line and exits with code 2 (user error);
any other exception is an internal failure (exit code 1).  ``--debug`` shows tracebacks.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CurveFileError",
    "NasError",
    "PluginError",
    "PredictorError",
    "StorageError",
    "StudyLeasedError",
    "StudyNotFoundError",
]


class NasError(Exception):
    """Base class of every error nas raises on purpose (bad input, missing study, ...)."""


class ConfigError(NasError, ValueError):
    """A study file, option or argument is invalid; the message names the key, value and rule."""


class StorageError(NasError):
    """A database operation failed; the message names the URL (password masked) and the cause."""


class PluginError(NasError, LookupError):
    """A search space, task, predictor or policy could not be found or loaded."""


class CurveFileError(NasError, ValueError):
    """A file is not a valid curve file (see nas/curvefile.py and docs/storage.md: `.npz` with `curves`, ...)."""


class StudyNotFoundError(NasError, KeyError):
    """A study name that the storage does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else ""


class PredictorError(NasError, ValueError):
    """A predictor was given input it cannot handle (values outside [0, 1], horizon too long)."""


class StudyLeasedError(NasError):
    """A study is in use by a running ``nas run`` driver (it holds the study's lease)."""
