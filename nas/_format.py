"""One-line text forms of a trial's configuration, shared by the CLI and the dashboard, and
:func:`printable`, the one filter of what reaches a terminal."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["printable", "short_config"]

#: C0 controls (ESC, BEL, CR, ...), DEL and C1 controls (CSI): a terminal obeys them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character escaped (``\\x1b``, ``\\n``, ...) as ``repr``
    shows it: stored strings (curve-file groups, config values, reasons, errors) are printed,
    never obeyed by the terminal.  The study-name rule (:mod:`nas.names`) refuses them."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def short_config(cfg: dict[str, Any], width: int = 80) -> str:
    """A one-line summary of a configuration: the cells of ``layers`` first, then scalars."""
    parts = []
    layers = cfg.get("layers")
    if isinstance(layers, list) and layers and all(isinstance(x, dict) for x in layers):
        cells = "+".join(str(x.get("cell", "?")) + ("/" + str(x["hypernet"])
                                                     if x.get("hypernet") not in (None, "none")
                                                     else "") for x in layers)
        parts.append(f"cells={cells}")
    first = ("hidden", "loops", "optimizer", "lr")
    for k in [k for k in first if k in cfg] + sorted(k for k in cfg if k not in first):
        v = cfg[k]
        if k == "layers" or isinstance(v, (dict, list)):
            continue
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    text = printable(" ".join(parts))  # (the live view prints it too)
    return text if len(text) <= width else text[: width - 3] + "..."
