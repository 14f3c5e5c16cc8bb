"""A small TOML writer for the study files nas writes (``nas best``): tables, sub-tables,
strings, numbers, booleans, arrays and inline tables.  Reading uses ``tomllib``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # round-trips exactly
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's escapes are TOML's basic string's
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()
                                if x is not None) + " }"
    if isinstance(v, (list, tuple)):
        if any(x is None for x in v):
            raise ValueError("TOML has no null: an array holds None")
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {type(v).__name__} as TOML")


def _table(name: str, body: Mapping[str, Any], out: list[str]) -> None:
    out.append(f"[{name}]")
    subs = []
    for k, v in body.items():
        if v is None:  # TOML has no null: an absent key is the default
            continue
        if isinstance(v, Mapping) and v and all(not isinstance(x, Mapping) for x in v.values()) \
                and len(_value(v)) <= 60:
            out.append(f"{_key(str(k))} = {_value(v)}")
        elif isinstance(v, Mapping):
            subs.append((k, v))
        else:
            out.append(f"{_key(str(k))} = {_value(v)}")
    for k, v in subs:
        out.append("")
        _table(f"{name}.{_key(str(k))}", v, out)


def dumps(doc: Mapping[str, Any], *, header: str = "") -> str:
    """``doc`` (a mapping of tables) as TOML text, after ``header`` comment lines."""
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, body in doc.items():
        if not isinstance(body, Mapping):
            raise TypeError(f"top-level {name!r} must be a table")
        if out:
            out.append("")
        _table(_key(str(name)), body, out)
    return "\n".join(out) + "\n"
