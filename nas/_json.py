"""JSON sanitising, once: :func:`jsonable` for documents, stored configs and CLI output."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "jsonable", "jsonable_or_repr", "too_deep"]

#: How deeply configs may nest (tables in tables, lists in lists): far beyond any real one,
#: well within what the JSON encoder and the database drivers handle.
MAX_DEPTH = 100


def jsonable(obj: Any) -> Any:
    """A JSON-safe copy: non-finite floats -> None, numpy scalars -> Python, tuples -> lists,
    mapping keys -> str, dates and times -> ISO strings; anything else is returned as it is."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    item = getattr(obj, "item", None)
    if callable(item):  # numpy scalars
        return jsonable(item())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def jsonable_or_repr(obj: Any) -> Any:
    """``obj`` as plain JSON data (through :func:`jsonable`), or its ``repr`` when it has none."""
    try:
        return json.loads(json.dumps(jsonable(obj), allow_nan=False))
    except (TypeError, ValueError):
        return repr(obj)


def too_deep(obj: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``obj`` nests dicts and lists more than ``limit`` levels deep (checked without
    recursion, so a 100,000-deep document does not overflow the stack here)."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, Mapping):
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((x, depth + 1) for x in items)
    return False
