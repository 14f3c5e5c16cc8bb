"""One-line text forms of a trial's configuration, shared by the CLI and the dashboard."""

from __future__ import annotations

from typing import Any

__all__ = ["short_config"]


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
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 3] + "..."
