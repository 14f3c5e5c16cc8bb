"""One-line text forms of a trial's configuration, shared by the CLI and the dashboard, and
:func:`printable`, the one filter of what reaches a terminal."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["layer_params", "printable", "short_config", "short_number", "short_reason"]

#: C0 controls (ESC, BEL, CR, ...), DEL and C1 controls (CSI): a terminal obeys them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def layer_params(cfg: Any) -> dict[str, Any] | None:
    """A config's ``layers`` list flattened to ``layer<i>.<key>`` (``layer0.cell``, so that
    one can filter or weigh by a layer's cell), or None when it has no list of mappings under
    ``layers`` (to_pandas() and the dashboard's importances both use this)."""
    layers = cfg.get("layers") if isinstance(cfg, dict) else None
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        return None
    return {f"layer{i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.items()}


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


def short_number(x: float) -> str:
    """A number in few characters: ``.0012``, ``4e-4``, ``0.97``, ``12``."""
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        mant, exp = f"{x:.0e}".split("e")
        return f"{mant}e{int(exp)}"
    text = f"{x:.2g}" if abs(x) < 1 else f"{x:.3g}"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
#: (pattern of a stored decision's reason, its short form); the first that matches wins
_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bP\(.*?\)\s*=\s*" + _NUM + r"\s*<\s*(?:delta|δ)"), "P {0} < δ"),
    (re.compile(r"\bEI\b\s*[=:]?\s*" + _NUM), "EI {0}"),
    (re.compile(r"\brung\s+(\d+)"), "{policy} rung {0}"),
    (re.compile(r"<\s*median\s+" + _NUM), "< median {0}"),
]


def short_reason(policy: str, reason: str | None, width: int = 24) -> str:
    """A stop decision's reason in a few characters for a table column, derived from the
    stored text: ``P .0012 < δ``, ``EI 4e-4``, ``asha rung 3``, ``< median .91``; a reason
    of no known form is shown whole when it is short, else as the policy's name."""
    text = " ".join((reason or "").split())
    for pattern, form in _REASONS:
        m = pattern.search(text)
        if m:
            args = [short_number(float(g)) if "." in g or "e" in g.lower() else g
                    for g in m.groups()]
            return form.format(*args, policy=policy).strip()
    return text if text and len(text) <= width else policy
