"""``--help`` pages that read cleanly at 80 columns.

Typer's own rich help puts each option in a six-column table (long name, short name, negative
names, type, help) that squeezes the descriptions to a few characters and cuts long option
names at 80 columns; it also shows ``<bool>`` after flags and ``{file}`` in usage lines.  The
command and group classes here render the same information as two columns: the option with its
metavar (none for flags) and the description with its default.  Nothing is ever cut: the
description wraps, and when the option column would leave it too little room, the description
goes on the lines below the option.
"""

from __future__ import annotations

import inspect
import io
import shutil
import sys
from enum import Enum
from typing import Any

import typer
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

__all__ = ["NasCommand", "NasGroup", "NasTyper"]

#: below this many columns for the description, it goes under the option instead of beside it
_MIN_HELP_WIDTH = 30
#: help pages are no wider than this, whatever the terminal
_MAX_WIDTH = 100


def _paragraphs(doc: str | None) -> list[str]:
    """The docstring's paragraphs, each on one line (rich re-wraps them to the width)."""
    text = inspect.cleandoc(doc or "")
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def _first_sentence(doc: str | None) -> str:
    paras = _paragraphs(doc)
    if not paras:
        return ""
    first = paras[0]
    cut = first.find(". ")
    return first[:cut + 1] if cut >= 0 else first


def _metavar(param: Any, ctx: Any) -> str:
    """What follows an option that takes a value: its choices (``table|json|csv``) or its type
    in capitals (``INT``, ``PATH``); flags get nothing."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar is not None:
        return str(param.metavar)
    try:
        shown = str(param.display_type(ctx))  # typer: "<int>", "<table|json|csv>"
    except (AttributeError, TypeError):
        shown = str(getattr(param.type, "name", "value"))
    shown = shown.strip("<>")
    if "|" not in shown:
        shown = {"str": "TEXT"}.get(shown, shown).upper()
    if param.nargs != 1 or getattr(param, "multiple", False):
        shown += "..."
    return shown


def _default_text(param: Any) -> str:
    if param.required or param.show_default is False:
        return ""
    if isinstance(param.show_default, str):
        return param.show_default
    default = param.default
    if default is None or callable(default) or default == [] or default == ():
        return ""
    if getattr(param, "is_flag", False):
        if not param.secondary_opts:  # a plain flag is off unless given
            return ""
        longs = [o for o in (param.opts if default else param.secondary_opts) if o.startswith("--")]
        return longs[0] if longs else ""
    if isinstance(default, Enum):
        default = default.value
    return str(default)


def _option_name(param: Any, ctx: Any) -> str:
    opts = sorted(param.opts, key=lambda o: (o.startswith("--"), o))  # -f, --format
    name = ", ".join(opts)
    if param.secondary_opts:
        name += " / " + ", ".join(param.secondary_opts)
    meta = _metavar(param, ctx)
    return f"{name} {meta}" if meta else name


def _argument_name(param: Any) -> str:
    name = str(param.metavar or param.name).upper()
    return name + ("..." if param.nargs != 1 else "")


def _usage(command: Any, ctx: Any) -> str:
    parts = [ctx.command_path, "[OPTIONS]"]
    for param in command.get_params(ctx):
        if param.param_type_name == "argument" and not getattr(param, "hidden", False):
            name = _argument_name(param)
            parts.append(name if param.required else f"[{name}]")
    if isinstance(command, TyperGroup):
        parts.append("COMMAND [ARGS]...")
    return " ".join(parts)


def _two_columns(rows: list[tuple[str, str]], width: int) -> Any:
    """Option and description side by side when the description keeps at least
    ``_MIN_HELP_WIDTH`` columns, else each description under its option."""
    if not rows:
        return Text("")
    name_w = max(len(n) for n, _ in rows)
    if width - 4 - name_w - 2 >= _MIN_HELP_WIDTH:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, min_width=name_w)
        table.add_column(ratio=1)
        for name, text in rows:
            table.add_row(Text(name, style="bold cyan"), Text(text))
        return table
    parts: list[Any] = []
    for name, text in rows:
        parts.append(Text(name, style="bold cyan"))
        if text:
            parts.append(Padding(Text(text), (0, 0, 0, 4)))
    return Group(*parts)


def _params_rows(command: Any, ctx: Any, kind: str) -> list[tuple[str, str]]:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.param_type_name != kind:
            continue
        text = " ".join((param.help or "").split())
        extra = []
        default = _default_text(param)
        if default:
            extra.append(f"default: {default}")
        if param.required:
            extra.append("required")
        if extra:
            text = f"{text}  [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
        name = _argument_name(param) if kind == "argument" else _option_name(param, ctx)
        rows.append((name, text))
    return rows


def render_help(command: Any, ctx: Any) -> str:
    """The help page of ``command`` as text (with colours when stdout is a terminal)."""
    width = min(_MAX_WIDTH, shutil.get_terminal_size((80, 24)).columns)
    buf = io.StringIO()
    tty = sys.stdout.isatty()
    console = Console(file=buf, width=width, highlight=False, markup=False,
                      force_terminal=tty, no_color=not tty, soft_wrap=False)
    console.print(Text("Usage: ", style="yellow") + Text(_usage(command, ctx), style="bold"))
    console.print()
    for para in _paragraphs(command.help):
        console.print(Padding(Text(para), (0, 0, 1, 1)))
    panels = [("Arguments", _params_rows(command, ctx, "argument")),
              ("Options", _params_rows(command, ctx, "option"))]
    if isinstance(command, TyperGroup):
        cmds = []
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                cmds.append((name, _first_sentence(sub.help)))
        panels.append(("Commands", cmds))
    for title, rows in panels:
        if rows:
            console.print(Panel(_two_columns(rows, width), title=title, title_align="left",
                                border_style="dim"))
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())


class NasCommand(TyperCommand):
    """A command whose ``--help`` is :func:`render_help`."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx) + "\n")


class NasGroup(TyperGroup):
    """A group whose ``--help`` is :func:`render_help`."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx) + "\n")


class NasTyper(typer.Typer):
    """A Typer app whose group and commands render help with :func:`render_help`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", NasGroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("cls", NasCommand)
        return super().command(*args, **kwargs)
