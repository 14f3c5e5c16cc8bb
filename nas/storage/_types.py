"""Column types that read a corrupted value as :data:`UNREADABLE` instead of raising.

A row written by plain SQL or another tool can hold what no nas write produces: a text in a
float column, a time SQLite cannot parse, a JSON column that is not JSON.  SQLAlchemy's own
types raise while the row is fetched, so one such row broke every page and listing that read
it.  These types wrap the standard ones: writes are unchanged (the same DDL, the same bind
conversion), and a value that cannot be read becomes :data:`UNREADABLE`, a string that the
dashboard and the CLI show as ``unreadable`` in its cell.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, DateTime, Float
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UNREADABLE", "SafeDateTime", "SafeFloat", "SafeJSON", "Unreadable", "as_list",
           "as_mapping", "as_number", "as_time", "readable"]


class Unreadable(str):
    """The marker of a stored value that could not be read (a ``str``: it prints and
    serialises as ``unreadable``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unreadable>"


UNREADABLE = Unreadable("unreadable")


def readable(v: Any) -> bool:
    """False for :data:`UNREADABLE`."""
    return not isinstance(v, Unreadable)


Check = Callable[[Any], Any]


def _tolerant(inner: Check | None, check: Check) -> Check:
    def process(value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(inner(value) if inner is not None else value)
        except (ValueError, TypeError, OverflowError, AttributeError):
            return UNREADABLE

    return process


def _float(v: Any) -> Any:
    if type(v) is float or type(v) is int:
        return v
    if isinstance(v, (str, bytes)):  # SQLite keeps a text that is not a number as text
        raise TypeError(v)
    return float(v)


def _datetime(v: Any) -> Any:
    if not isinstance(v, _dt.datetime):
        raise TypeError(type(v).__name__)
    return v


def _same(v: Any) -> Any:
    return v


class SafeFloat(TypeDecorator[Any]):
    """:class:`~sqlalchemy.Float`; a value that is not a number reads as UNREADABLE."""

    impl = Float
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Check:
        return _tolerant(super().result_processor(dialect, coltype), _float)


class SafeDateTime(TypeDecorator[Any]):
    """:class:`~sqlalchemy.DateTime`; a time that cannot be parsed reads as UNREADABLE."""

    impl = DateTime
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Check:
        return _tolerant(super().result_processor(dialect, coltype), _datetime)


class SafeJSON(TypeDecorator[Any]):
    """:class:`~sqlalchemy.JSON`; a text that is not JSON reads as UNREADABLE."""

    impl = JSON
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Check:
        return _tolerant(super().result_processor(dialect, coltype), _same)


def as_mapping(v: Any, name: str, bad: list[str]) -> dict[str, Any]:
    """``v`` as a dict (None: empty); anything else is empty and ``name`` joins ``bad``."""
    if v is None:
        return {}
    if isinstance(v, dict):
        return dict(v)
    bad.append(name)
    return {}


def as_list(v: Any, name: str, bad: list[str]) -> list[Any]:
    """``v`` as a list (None: empty); anything else is empty and ``name`` joins ``bad``."""
    if v is None:
        return []
    if isinstance(v, list):
        return list(v)
    bad.append(name)
    return []


def as_time(v: Any, name: str, bad: list[str]) -> Any:
    """``v`` if it is a datetime or None; anything else is None and ``name`` joins ``bad``."""
    if v is None or isinstance(v, _dt.datetime):
        return v
    bad.append(name)
    return None


def as_number(v: Any, name: str, bad: list[str]) -> float | None:
    """``v`` if it is a number or None; anything else is None and ``name`` joins ``bad``."""
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return v
    bad.append(name)
    return None
