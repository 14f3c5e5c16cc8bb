"""The ``nas`` command line.  ``main`` maps errors to exit codes: 0 ok, 2 user error, 1 internal (docs/runner.md)."""

from __future__ import annotations

import sys
from typing import Any

from nas.cli._app import app, state
from nas.cli._plot import plot_curve

# Command modules register themselves on the app when imported (keep their imports light), in
# the order ``nas --help`` lists them.
# isort: off
from nas.cli import _db, _best, _run, _spaces, _bench, _pfn, _dashboard  # noqa: F401  (registration)
# isort: on

__all__ = ["app", "main", "plot_curve"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nas`` console script: 0 ok, 2 user error, 1 internal failure."""
    import typer

    from nas._format import printable
    from nas.errors import NasError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    usage_error, click_exception = _click_errors()

    try:
        rv = app(args=args, prog_name="nas", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `nas` or `nas db` alone: the help
            exc.show()
            return 2
        # unknown option, `--top ten`: one line, like any user error
        if debug or state.debug:
            raise
        where = exc.ctx.command_path if exc.ctx is not None else "nas"
        msg = " ".join(exc.format_message().split())
        print(f"nas: error: {msg} (see '{where} --help')", file=sys.stderr)
        return 2
    except click_exception as exc:
        print(f"nas: error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except NasError as exc:
        if debug or state.debug:
            raise
        print(f"nas: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug or state.debug:
            raise
        print(f"nas: internal error: {type(exc).__name__}: {printable(str(exc))} (run with "
              "--debug for the traceback)", file=sys.stderr)
        return 1
    return rv if isinstance(rv, int) else 0


def _click_errors() -> tuple[Any, Any]:
    """click's ``UsageError`` and ``ClickException`` as typer raises them.  typer >= 0.2x parses
    with its own copy of click, whose classes are not the ``click`` package's; both are found
    through the public ``typer.BadParameter``, a subclass of the two in either case."""
    import typer

    bases = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
    return bases["UsageError"], bases["ClickException"]


def _console_main() -> None:  # pragma: no cover
    sys.exit(main())
