"""The error every conformance check of :mod:`nas.testing` raises."""

from __future__ import annotations

from typing import Any

__all__ = ["ConformanceError", "require"]


class ConformanceError(AssertionError):
    """A plug-in (or storage) broke a rule of its contract.

    ``check`` names the check that failed (e.g. ``"check_predictor"``); the message says what
    is wrong.  A subclass of :class:`AssertionError`, so that pytest reports it as a failed
    assertion; unlike a bare ``assert`` it is raised under ``python -O`` too.
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.message = message


def require(check: str, condition: Any, message: str) -> None:
    """Raise :class:`ConformanceError` ``(check, message)`` unless ``condition`` holds."""
    if not condition:
        raise ConformanceError(check, message)
