"""The ``nas`` command line.  ``main`` maps errors to exit codes (DESIGN.md conventions)."""

from __future__ import annotations

import sys

from nas.cli._app import app, state

# Command modules register themselves on the app when imported (keep their imports light).
from nas.cli import _db, _run, _spaces, _bench, _pfn, _dashboard  # noqa: E402,F401  (registration)

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nas`` console script: 0 ok, 2 user error, 1 internal failure."""
    from nas.errors import NasError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, prog_name="nas", standalone_mode=True)
    except SystemExit as exc:  # typer/click exit with their own codes (usage errors: 2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except NasError as exc:
        if debug or state.debug:
            raise
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug or state.debug:
            raise
        print(f"nas: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
              "traceback)", file=sys.stderr)
        return 1
    return 0


def _console_main() -> None:  # pragma: no cover
    sys.exit(main())
