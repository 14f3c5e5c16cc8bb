"""The one validation helper: option and key checks raising one-line ``ConfigError`` messages.

Every message has the shape ``WHERE: KEY = VALUE: RULE`` (``WHERE`` left out when empty)::

    bad.toml: search.trials = 0: must be an integer in [1, 1000000]
    task parity: bits = -3: must be an integer in [1, 256]
    policy asha: grace_period = 0: must be an integer >= 1

``WHERE`` is the study file for :mod:`nas.config` and ``"<kind> <name>"`` for a plug-in (task,
space, policy, predictor) checking its own constructor options.  Each method returns the value
converted to its plain Python type, or raises :class:`~nas.errors.ConfigError`.

:func:`key` declares a study-file key on a section dataclass (its default, rule and doc in the
field's metadata, a :class:`Rule`); :meth:`Checker.rule` checks a value against it.  Parsing,
``to_dict``, the command-line overrides, ``--resume``'s comparison, the worker's training
options and the docs table of study-file keys all read these declarations (see
:mod:`nas.config`).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field
from typing import Any

from nas.errors import ConfigError

__all__ = ["Checker", "Rule", "key", "plain", "rule_of"]


@dataclass(frozen=True)
class Rule:
    """What one study-file key accepts (a field's ``metadata["rule"]``, see :func:`key`).

    ``kind``: ``"int"``, ``"num"``, ``"str"``, ``"bool"``, ``"choice"``, ``"table"``,
    ``"plugin"`` (an installed plug-in of registry kind ``plugin``, or ``"module:attr"``) or
    ``"custom"`` (checked by the section's parser).  ``optional``: None (or leaving the key
    out) is allowed.  ``path``: where the key sits in its file section when it is nested
    (``("resources", "cpu")``).  ``resume``: ``--resume`` refuses a different value (it changes
    what a trial means).  ``shown``: the docs' default column when the default is not literal.
    """

    kind: str
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False
    pattern: str | None = None
    rule: str = ""
    plugin: str = ""
    path: tuple[str, ...] = ()
    resume: bool = False
    shown: str | None = None


def key(default: Any = MISSING, *, factory: Any = MISSING, **rule: Any) -> Any:
    """A dataclass field declaring a study-file key: its default (``factory`` for a mutable
    one; neither: the key is required) and its :class:`Rule` (the keyword arguments)."""
    meta = {"rule": Rule(**rule)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def rule_of(f: Field[Any]) -> Rule | None:
    """The :class:`Rule` a field was declared with (None: not a study-file key)."""
    r = f.metadata.get("rule")
    return r if isinstance(r, Rule) else None


def plain(v: Any) -> Any:
    """A copy of nested tables and lists as plain ``dict`` (string keys) and ``list``."""
    if isinstance(v, Mapping):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


class Checker:
    """Checks keys of one source (a file, or one plug-in's options); see the module docstring."""

    def __init__(self, where: str = "") -> None:
        self.where = where

    def _line(self, text: str) -> ConfigError:
        return ConfigError(f"{self.where}: {text}" if self.where else text)

    def fail(self, key: str, value: Any, rule: str) -> ConfigError:
        """The error for ``key = value`` breaking ``rule`` (to raise)."""
        return self._line(f"{key} = {value!r}: {rule}")

    def missing(self, key: str) -> ConfigError:
        return self._line(f"{key}: required key is missing")

    def unknown(self, keys: Sequence[str], known: Sequence[str], prefix: str = "") -> ConfigError:
        """The error for unknown keys (or keyword options), listing the known ones."""
        names = ", ".join(f"{prefix}{k}" for k in keys)
        return self._line(f"{names}: unknown key{'s' if len(keys) > 1 else ''} "
                          f"(known: {', '.join(known)})")

    def table(self, data: Any, key: str, known: Sequence[str]) -> dict[str, Any]:
        """A table whose keys are all in ``known``."""
        if not isinstance(data, Mapping):
            raise self.fail(key, data, "must be a table")
        for k in data:
            if k not in known:
                raise self.unknown([k], known, prefix=key + "." if key else "")
        return dict(data)

    def mapping(self, v: Any, key: str) -> dict[str, Any]:
        if not isinstance(v, Mapping):
            raise self.fail(key, v, "must be a table")
        return plain(v)  # type: ignore[no-any-return]

    def str_(self, v: Any, key: str, *, pattern: re.Pattern[str] | None = None,
             rule: str = "") -> str:
        if not isinstance(v, str) or not v:
            raise self.fail(key, v, "must be a non-empty string")
        if pattern is not None and not pattern.match(v):
            raise self.fail(key, v, rule)
        return v

    def choice(self, v: Any, key: str, choices: Sequence[Any]) -> Any:
        if v not in choices:
            raise self.fail(key, v, f"must be one of {', '.join(map(str, choices))}")
        return v

    def bool_(self, v: Any, key: str) -> bool:
        if not isinstance(v, bool):
            raise self.fail(key, v, "must be true or false")
        return v

    def int_(self, v: Any, key: str, *, lo: int | None = None, hi: int | None = None,
             none: bool = False) -> int:
        """An integer in [lo, hi] (either bound optional); ``none``: None is allowed too."""
        if none and v is None:
            return None  # type: ignore[return-value]
        ok = _is_int(v) and (lo is None or v >= lo) and (hi is None or v <= hi)
        if not ok:
            rng = (f">= {lo}" if hi is None else f"in [{lo}, {hi}]") if lo is not None else ""
            tail = " or None" if none else ""
            raise self.fail(key, v, f"must be an integer {rng}".rstrip() + tail)
        return int(v)

    def num(self, v: Any, key: str, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, hi_open: bool = False) -> float:
        """A finite number within the bounds (``*_open``: the bound itself is excluded)."""
        ok = _is_num(v)
        if ok and lo is not None and (v < lo or (lo_open and v == lo)):
            ok = False
        if ok and hi is not None and (v > hi or (hi_open and v == hi)):
            ok = False
        if not ok:
            raise self.fail(key, v, ("must be a number " +
                                     _bounds(lo, hi, lo_open, hi_open)).rstrip())
        return float(v)

    def choices(self, v: Any, key: str, allowed: Sequence[Any] | None = None, *,
                kind: str | None = None, lo: float | None = None, hi: float | None = None,
                hi_open: bool = False) -> tuple[Any, ...]:
        """A non-empty list without duplicates whose items are in ``allowed``, or of ``kind``
        (``"int"``, ``"number"`` or ``"bool"``, optionally within [lo, hi])."""
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not v:
            raise self.fail(key, v, "must be a non-empty list")
        out = tuple(v)
        if allowed is not None and any(x not in allowed for x in out):
            raise self.fail(key, v, "must be a non-empty list of "
                                    f"{', '.join(map(str, allowed))}")
        if kind is not None:
            test = {"int": _is_int, "number": _is_num, "bool": lambda x: isinstance(x, bool)}[kind]
            inside = all(test(x) and (lo is None or x >= lo)
                         and (hi is None or x < hi or (not hi_open and x == hi)) for x in out)
            if not inside:
                what = {"int": "integers", "number": "numbers", "bool": "true/false"}[kind]
                bounds = _bounds(lo, hi, False, hi_open)
                raise self.fail(key, v, f"must be a non-empty list of {what}"
                                        + (f" {bounds}" if bounds else ""))
        if len(set(out)) != len(out):
            raise self.fail(key, v, "must not have duplicates")
        return out

    def rule(self, v: Any, key: str, r: Rule) -> Any:
        """``v`` checked against the declared rule ``r`` (``"plugin"`` and ``"custom"`` keys
        are checked by a subclass or the section's parser)."""
        if r.optional and v is None:
            return None
        if r.kind == "int":
            return self.int_(v, key, lo=None if r.lo is None else int(r.lo),
                             hi=None if r.hi is None else int(r.hi))
        if r.kind == "num":
            return self.num(v, key, lo=r.lo, hi=r.hi, lo_open=r.lo_open, hi_open=r.hi_open)
        if r.kind == "str":
            return self.str_(v, key, pattern=None if r.pattern is None else re.compile(r.pattern),
                             rule=r.rule)
        if r.kind == "bool":
            return self.bool_(v, key)
        if r.kind == "choice":
            return self.choice(v, key, r.choices)
        if r.kind == "table":
            return self.mapping(v, key)
        raise TypeError(f"{key}: a {r.kind!r} key is checked by its section's parser")

    def interval(self, v: Any, key: str, lo: float, hi: float, *,
                 positive: bool = False) -> tuple[float, float]:
        """``[low, high]`` with ``lo <= low <= high <= hi`` (``positive``: ``low > lo``)."""
        ok = (isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2
              and all(_is_num(x) for x in v))
        if ok:
            a, b = float(v[0]), float(v[1])
            ok = lo <= a <= b <= hi and (a > lo if positive else True)
        if not ok:
            raise self.fail(key, v, f"must be [low, high] with {lo:g} "
                                    f"{'<' if positive else '<='} low <= high <= {hi:g}")
        return float(v[0]), float(v[1])
