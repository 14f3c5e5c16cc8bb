"""CLI commands (registered on import)."""

from __future__ import annotations

from nas.cli._app import app  # noqa: F401
