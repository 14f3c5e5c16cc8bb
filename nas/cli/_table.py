"""Tables that fit the terminal without cutting a value.

rich shrinks every column of a table that is too wide and cuts what no longer fits (``direc…``,
``0.973…``).  :func:`layout` plans the columns instead: columns that are empty in every row go,
each column keeps at least its longest word (values wrap at spaces, never inside a word), a
*flexible* column (a summary such as ``params``) takes what is left, and when even the
longest words do not fit, the *optional* columns go, in the order given; :func:`table` then
says which ones went.  ``--format json|csv`` always carries every column, in full.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["HEADERS", "Layout", "layout", "render", "terminal_width"]

#: shorter table headers for the long column names of the listings (JSON keeps the names)
HEADERS = {"direction": "dir", "best_value": "best", "false_stops": "false stops",
           "ms_per_step": "ms/step", "n_params": "weights", "stop_step": "stop"}


def terminal_width() -> int:
    """The terminal's columns (``COLUMNS`` wins; 80 off a terminal)."""
    return shutil.get_terminal_size((80, 24)).columns


def header(column: str) -> str:
    return HEADERS.get(column, column).replace("_", " ")


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _overhead(n: int) -> int:
    """Columns a rich table with ``n`` columns uses besides their contents: a border on each
    side, a separator between columns, one space of padding on each side of every column."""
    return 3 * n + 1


@dataclass
class Layout:
    """The planned table: the columns shown, their content widths, the columns dropped for
    width (``hidden``) and those dropped because no row has a value there (``empty``)."""

    columns: list[str]
    widths: dict[str, int]
    hidden: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)


def layout(columns: Sequence[str], cells: Mapping[str, Sequence[str]], width: int, *,
           keep: Sequence[str] = (), optional: Sequence[str] = (), flexible: str | None = None,
           flexible_min: int = 20) -> Layout:
    """Plan a table of ``cells`` (column -> its cell texts) at ``width`` terminal columns.

    ``keep`` columns are never wrapped (an id, a name); ``flexible`` (at most one) takes the
    room that is left, at least ``flexible_min``; ``optional`` columns are dropped, first
    first, while the longest words do not fit."""
    n_rows = max((len(v) for v in cells.values()), default=0)
    empty = [c for c in columns if n_rows and c not in keep and c != flexible
             and not any(cells[c])]
    shown = [c for c in columns if c not in empty]
    natural = {c: max([len(header(c))] + [len(x) for x in cells[c]]) for c in shown}
    least = {c: natural[c] if c in keep else
             max([_longest_word(header(c))] + [_longest_word(x) for x in cells[c]])
             for c in shown}
    if flexible in least:
        least[flexible] = min(flexible_min, natural[flexible])
    hidden = []
    for c in optional:
        if sum(least[x] for x in shown) + _overhead(len(shown)) <= width:
            break
        if c in shown:
            shown.remove(c)
            hidden.append(c)
    widths = {c: least[c] for c in shown}
    spare = width - _overhead(len(shown)) - sum(widths.values())
    # the columns of values first, the widest need last (short values end up on one line)
    for c in sorted((c for c in shown if c != flexible), key=lambda c: natural[c] - least[c]):
        give = max(0, min(spare, natural[c] - widths[c]))
        widths[c] += give
        spare -= give
    if flexible in widths:
        widths[flexible] += max(0, min(spare, natural[flexible] - widths[flexible]))
    return Layout(shown, widths, hidden, empty)


def render(plan: Layout, cells: Mapping[str, Sequence[str]], *, title: str | None = None,
           note_hidden: bool = True) -> None:
    """Print the planned table on stdout; below it, which columns did not fit."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for c in plan.columns:
        table.add_column(header(c), width=plan.widths[c], overflow="fold")
    n_rows = max((len(v) for v in cells.values()), default=0)
    for i in range(n_rows):  # Text: data is never read as rich markup ("[...]" would vanish)
        table.add_row(*[Text(cells[c][i]) for c in plan.columns])
    console = Console()
    console.print(table)
    if note_hidden and plan.hidden:
        console.print(f"hidden at {console.width} columns: "
                      f"{', '.join(header(c) for c in plan.hidden)} (see --format json)",
                      markup=False, highlight=False, style="dim")
