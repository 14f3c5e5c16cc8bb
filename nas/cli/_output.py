"""Rendering of listings: ``--format table|json|csv`` (``--json`` is ``--format json``).

JSON output is one document on stdout and nothing else goes to stdout.  Tables use rich.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import typer

from nas._format import printable
from nas._json import jsonable
from nas.errors import ConfigError

__all__ = ["FORMAT_OPTION", "JSON_OPTION", "Format", "check_count", "check_output_file", "emit",
           "emit_json", "resolve_format"]


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FORMAT_OPTION = typer.Option(Format.table, "--format", "-f", help="Output format.")
JSON_OPTION = typer.Option(False, "--json", help="Shorthand for --format json.")


def resolve_format(fmt: Format, as_json: bool, *, allowed: Sequence[str] = ("table", "json", "csv")) -> str:
    value = "json" if as_json else fmt.value
    if value not in allowed:
        raise ConfigError(f"--format {value} is not supported here; use one of {', '.join(allowed)}")
    return value


def check_count(value: int | None, flag: str, hi: int, lo: int = 1) -> None:
    """A count given on the command line (``--seeds``, ``--epochs``, ``--trials``) within
    [lo, hi] (the study file's caps), else :class:`ConfigError` naming the flag."""
    if value is not None and not lo <= value <= hi:
        shown = str(value) if len(str(value)) <= 30 else str(value)[:27] + "..."
        raise ConfigError(f"{flag} = {shown}: must be an integer in [{lo}, {hi}]")


def check_output_file(path: Any, flag: str) -> None:
    """``path`` can be written as a file: not a directory, and its folder exists and is
    writable.  Checked before any work, so that a long run never ends on a path it cannot
    write (the file itself is written at the end)."""
    import os
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {p}: is a directory; give the name of the file to write")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{flag} {p}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ConfigError(f"{flag} {p}: cannot write there (permission denied)")


def emit_json(doc: Any) -> None:
    """Print one JSON document on stdout (NaN/inf become null)."""
    sys.stdout.write(json.dumps(jsonable(doc), indent=2) + "\n")
    sys.stdout.flush()


def _cell(v: Any) -> str:
    """One table or csv cell, control characters escaped (:func:`nas._format.printable`)."""
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(jsonable(v), sort_keys=True)  # (escapes control characters)
    return printable(str(v))


def emit(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    keep: Sequence[str] = (),
    optional: Sequence[str] = (),
    flexible: str | None = None,
) -> None:
    """Render a listing of rows (dicts with the same keys) in ``fmt``.  A table fits the
    terminal without cutting a value (:mod:`nas.cli._table`): columns empty in every row go,
    values wrap at spaces, the ``keep`` columns never wrap, the ``flexible`` one takes what
    is left, and the ``optional`` ones go first when the longest words do not fit."""
    cols = list(columns) if columns is not None else (list(rows[0].keys()) if rows else [])
    if fmt == "json":
        emit_json([{c: r.get(c) for c in cols} for r in rows])
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in cols])
        sys.stdout.write(buf.getvalue())
    else:
        from nas.cli._table import layout, render, terminal_width

        cells = {c: [_cell(r.get(c)) for r in rows] for c in cols}
        plan = layout(cols, cells, terminal_width(), keep=keep, optional=optional,
                      flexible=flexible)
        render(plan, cells, title=None if title is None else printable(title))
