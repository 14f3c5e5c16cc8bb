"""Rows of the write modules: forecasts from a ForecastSummary, decisions, and
:func:`write_points`, the one write path of curve points.

Every curve point (``Storage.add_points``, ``record_step(s)`` of ``StepRecord``, bulk imports)
reaches the ``curve_points`` table through :func:`write_points`, so that the conversions (NaN/inf stored as
missing, a (trial, step) stored once) and the back-end specific inserts live in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from nas.errors import ConfigError
from nas.interfaces import ACTIONS, Action, ForecastSummary
from nas.storage._engine import finite
from nas.storage._models import CURVE_POINTS as _P
from nas.storage._records import ForecastRecord

__all__ = ["POINT_BATCH", "PointRow", "decision_row", "forecast_record", "forecast_row",
           "summary_of", "write_points"]

#: Rows per executemany (and the unit of the conflict-skipping inserts).
POINT_BATCH = 10_000

#: ``(trial_id, step, value, wall_time)``; value/wall_time None, NaN or inf = missing.
PointRow = tuple[int, int, "float | None", "float | None"]

_SUMMARY_FIELDS = tuple(f.name for f in dataclasses.fields(ForecastSummary))
_NUMBERS = tuple(n for n in _SUMMARY_FIELDS if n not in ("predictor", "horizon"))


def summary_of(f: ForecastSummary | Mapping[str, Any]) -> ForecastSummary:
    """A forecast as a :class:`~nas.interfaces.ForecastSummary` (a mapping needs ``predictor``
    and ``horizon``; missing numbers are None)."""
    if isinstance(f, ForecastSummary):
        return f
    return ForecastSummary(str(f["predictor"]), int(f["horizon"]),
                           **{n: f.get(n) for n in _NUMBERS})


def forecast_row(trial_id: int, step: int, s: ForecastSummary, now: Any) -> dict[str, Any]:
    """The ``forecasts`` row of a forecast made after ``step`` (NaN/inf stored as missing)."""
    return {"trial_id": int(trial_id), "step": int(step), "predictor": str(s.predictor),
            "horizon": int(s.horizon), **{n: finite(getattr(s, n)) for n in _NUMBERS},
            "created": now}


def forecast_record(row: Any) -> ForecastRecord:
    """A ``forecasts`` row as the record the read methods return."""
    return ForecastRecord(row.trial_id, row.step,
                          ForecastSummary(**{n: getattr(row, n) for n in _SUMMARY_FIELDS}),
                          row.created)


def decision_row(trial_id: int, step: int, d: Mapping[str, Any], now: Any) -> dict[str, Any]:
    """The ``decisions`` row of ``d`` (the keyword arguments of ``Storage.add_decision``)."""
    action = str(d["action"]).upper()
    if action not in ACTIONS:
        raise ConfigError(f"decision action {d['action']!r} is not one of {', '.join(ACTIONS)}")
    return {"trial_id": int(trial_id), "step": int(step), "policy": str(d["policy"]),
            "action": Action(action).value, "reason": str(d.get("reason", "")),
            "created": now, "threshold": finite(d.get("threshold"))}


def write_points(conn: Connection, points: Iterable[PointRow], *, new_trials: bool = False) -> int:
    """Store curve points inside the caller's transaction; returns how many rows were given
    (each (trial, step) counted once).

    NaN and inf are stored as NULL (missing).  A (trial, step) given twice keeps its first
    value, and one already stored is left as it is (never duplicated, never an error).
    ``new_trials``: every point belongs to a trial created in this transaction (a bulk
    import), so there is nothing to skip: PostgreSQL (psycopg) then uses COPY, the other back
    ends a plain batched insert.
    """
    if new_trials:
        return _write_new(conn, points)
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for tid, step, value, wall in points:
        key = (int(tid), int(step))
        if key not in rows:
            rows[key] = {"trial_id": key[0], "step": key[1], "value": finite(value),
                         "wall_time": finite(wall)}
    if rows:
        _insert_ignore(conn, list(rows.values()))
    return len(rows)


def _insert_ignore(conn: Connection, rows: list[dict[str, Any]]) -> None:
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        stmt: Any
        if name == "sqlite":
            from sqlalchemy.dialects import sqlite

            stmt = sqlite.insert(_P).on_conflict_do_nothing(index_elements=["trial_id", "step"])
        else:
            from sqlalchemy.dialects import postgresql

            stmt = postgresql.insert(_P).on_conflict_do_nothing(
                index_elements=["trial_id", "step"])
        for i in range(0, len(rows), POINT_BATCH):
            conn.execute(stmt, rows[i : i + POINT_BATCH])
        return
    # Other back ends: skip the steps that are there (one writer per trial, docs/storage.md).
    tids = sorted({r["trial_id"] for r in rows})
    have = set(conn.execute(select(_P.c.trial_id, _P.c.step)
                            .where(_P.c.trial_id.in_(tids))).tuples())
    new = [r for r in rows if (r["trial_id"], r["step"]) not in have]
    if new:
        conn.execute(insert(_P), new)


def _write_new(conn: Connection, points: Iterable[PointRow]) -> int:
    n = 0
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        raw: Any = conn.connection.driver_connection  # same transaction as the trial inserts
        with raw.cursor() as cur, cur.copy(
            "COPY curve_points (trial_id, step, value, wall_time) FROM STDIN"
        ) as copy:
            for tid, step, value, wall in points:
                copy.write_row((tid, step, finite(value), finite(wall)))
                n += 1
        return n
    batch: list[dict[str, Any]] = []
    for tid, step, value, wall in points:
        batch.append({"trial_id": tid, "step": step, "value": finite(value),
                      "wall_time": finite(wall)})
        if len(batch) >= POINT_BATCH:
            conn.execute(insert(_P), batch)
            n += len(batch)
            batch = []
    if batch:
        conn.execute(insert(_P), batch)
        n += len(batch)
    return n
