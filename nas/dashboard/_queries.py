"""Read queries of ``nas dashboard``: aggregated and paginated in SQL so that a page of a
10,000-trial study never loads every trial's curve.

Functions of a :class:`~nas.storage.Storage` over its tables (``nas.storage.tables``); they
only read.  Each opens one connection (``Storage.read``) and returns plain Python values.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, or_, select

from nas.errors import ConfigError
from nas.interfaces import COUNTED_STATES, TRIAL_STATES, Direction, TrialState
from nas.storage import Storage
from nas.storage.tables import CURVE_POINTS as _P
from nas.storage.tables import TRIALS as _T

__all__ = ["LEADERBOARD_SORTS", "best_completed_at", "curves_of", "importance_inputs",
           "leaderboard", "study_activity", "study_overview", "trial_progress"]

#: Leaderboard sort keys and their columns ("value" is best-first for the study's direction).
LEADERBOARD_SORTS = ("value", "number", "epochs", "state", "started", "finished")


def _latest(*values: Any) -> _dt.datetime | None:
    got = [v for v in values if isinstance(v, _dt.datetime)]  # (not an unreadable one)
    return max(got) if got else None


def _digits(text: str) -> int | None:
    """``text`` as a trial number when it is 1-18 ASCII digits (a column's int64), else None."""
    return int(text) if 0 < len(text) <= 18 and text.isascii() and text.isdigit() else None



# ------------------------------------------------------------------ studies page
def study_activity(st: Storage) -> dict[int, _dt.datetime | None]:
    """Per study id: the last time a trial of it started or finished (None: no trials)."""
    q = select(_T.c.study_id, func.max(_T.c.started), func.max(_T.c.finished)).group_by(
        _T.c.study_id)
    with st.read("reading study activity") as conn:
        return {int(sid): _latest(s, f) for sid, s, f in conn.execute(q)}


# ------------------------------------------------------------------ one study
def study_overview(st: Storage, study_id: int, direction: str = Direction.MAXIMIZE) -> dict[str, Any]:
    """One study in a few aggregate queries: trials by state, best COMPLETE value, epochs
    run (all trials, and by state), finished trials, the longest trial, last activity."""
    with st.read(f"summarising study {study_id}") as conn:
        states: dict[str, int] = {}
        epochs: dict[str, int] = {}
        for state, n, ep in conn.execute(
            select(_T.c.state, func.count(), func.coalesce(func.sum(_T.c.epochs), 0))
            .where(_T.c.study_id == study_id).group_by(_T.c.state)
        ):
            states[str(state)] = int(n)
            epochs[str(state)] = int(ep or 0)
        agg = func.min if direction == Direction.MINIMIZE else func.max
        best, longest, started, finished = conn.execute(
            select(agg(case((and_(_T.c.state == TrialState.COMPLETE, _T.c.value.is_not(None)),
                             _T.c.value))),
                   func.max(_T.c.epochs), func.max(_T.c.started), func.max(_T.c.finished))
            .where(_T.c.study_id == study_id)
        ).one()
    return {
        "states": states, "trials": sum(states.values()), "best_value": best,
        "epochs_run": sum(epochs.values()), "epochs_by_state": epochs,
        "finished": sum(n for s, n in states.items() if s in COUNTED_STATES),
        "longest": longest if isinstance(longest, int) else None,
        "last_activity": _latest(started, finished),
    }


def leaderboard(
    st: Storage,
    study_id: int,
    *,
    direction: str = Direction.MAXIMIZE,
    sort: str = "value",
    descending: bool | None = None,
    states: Sequence[str] | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the study's trials, sorted, filtered and paginated in SQL, and how many
    trials match the filter.  ``sort="value"`` with ``descending=None`` puts the best first
    for ``direction``; trials without a value always come last.  ``search`` matches a
    substring of the config's JSON text (case-insensitive) or the trial number."""
    if sort not in LEADERBOARD_SORTS:
        raise ConfigError(f"sort = {sort!r}: must be one of {', '.join(LEADERBOARD_SORTS)}")
    for s in states or []:
        if s not in TRIAL_STATES:
            raise ConfigError(f"trial state {s!r} is not one of {', '.join(TRIAL_STATES)}")
    if limit < 0 or offset < 0:
        raise ConfigError("offset and limit must be >= 0")
    where: list[ColumnElement[bool]] = [_T.c.study_id == study_id]
    if states:
        where.append(_T.c.state.in_(list(states)))
    if search:
        text = search.strip().lower()
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cond: ColumnElement[bool] = func.lower(_T.c.config.cast(String)).like(like, escape="\\")
        number = _digits(text)
        if number is not None:
            cond = or_(cond, _T.c.number == number)
        where.append(cond)
    col = _T.c[sort]
    if descending is None:
        descending = direction != Direction.MINIMIZE if sort == "value" else False
    key = col.desc() if descending else col.asc()
    q = (select(_T.c.number, _T.c.state, _T.c.value, _T.c.epochs, _T.c.config,
                _T.c.started, _T.c.finished, _T.c.error.is_not(None).label("failed"))
         .where(*where).order_by(col.is_(None), key, _T.c.number)
         .offset(offset).limit(limit))
    with st.read(f"listing trials of study {study_id}") as conn:
        total = int(conn.execute(select(func.count()).select_from(_T).where(*where))
                    .scalar_one())
        rows = [{"number": int(n), "state": state, "value": v, "epochs": e,
                 "config": {} if c is None else dict(c) if isinstance(c, dict) else c,
                 "started": s, "finished": f, "has_error": bool(x)}
                for n, state, v, e, c, s, f, x in conn.execute(q)]
    return rows, total


def trial_progress(st: Storage, study_id: int
                   ) -> list[tuple[int, str, float | None, _dt.datetime | None,
                                   _dt.datetime | None]]:
    """Every trial's ``(number, state, value, started, finished)`` by number: scalars only
    (the best-so-far plots of the study page)."""
    q = (select(_T.c.number, _T.c.state, _T.c.value, _T.c.started, _T.c.finished)
         .where(_T.c.study_id == study_id).order_by(_T.c.number))
    with st.read(f"reading the progress of study {study_id}") as conn:
        return [(int(n), str(s), v, a, b) for n, s, v, a, b in conn.execute(q)]


def importance_inputs(st: Storage, study_id: int, limit: int = 2000
                      ) -> list[tuple[float, Any, Any]]:
    """``(value, distributions, config)`` of the study's latest ``limit`` COMPLETE trials
    with a value (the input of Optuna's parameter importances; the config gives the
    per-layer parameters)."""
    q = (select(_T.c.value, _T.c.distributions, _T.c.config)
         .where(_T.c.study_id == study_id, _T.c.state == TrialState.COMPLETE, _T.c.value.is_not(None))
         .order_by(_T.c.number.desc()).limit(limit))
    with st.read(f"reading the parameters of study {study_id}") as conn:
        return [(float(v), d, c) for v, d, c in conn.execute(q)
                if isinstance(v, (int, float))]  # (not an unreadable one)


# ------------------------------------------------------------------ one trial's decisions
def best_completed_at(st: Storage, study_id: int, times: Sequence[_dt.datetime], *,
                      direction: str = Direction.MAXIMIZE,
                      exclude_trial: int | None = None) -> list[float | None]:
    """For each time, the study's best COMPLETE value among the trials finished by then
    (None before the first): what a decision made at that time was compared against."""
    if not times:
        return []
    q = (select(_T.c.finished, _T.c.value)
         .where(_T.c.study_id == study_id, _T.c.state == TrialState.COMPLETE,
                _T.c.value.is_not(None), _T.c.finished.is_not(None),
                _T.c.finished <= max(times))
         .order_by(_T.c.finished))
    if exclude_trial is not None:
        q = q.where(_T.c.id != exclude_trial)
    with st.read(f"reading the best values of study {study_id}") as conn:
        done = [(f, float(v)) for f, v in conn.execute(q)
                if isinstance(f, _dt.datetime) and isinstance(v, (int, float))]
    better = (lambda a, b: a < b) if direction == Direction.MINIMIZE else (lambda a, b: a > b)
    order = sorted(range(len(times)), key=lambda i: times[i])
    res: dict[int, float | None] = {}
    best: float | None = None
    j = 0
    for i in order:
        while j < len(done) and done[j][0] <= times[i]:
            v = done[j][1]
            if best is None or better(v, best):
                best = v
            j += 1
        res[i] = best
    return [res[i] for i in range(len(times))]


def curves_of(st: Storage, study_id: int, numbers: Sequence[int]
              ) -> dict[int, list[tuple[int, float | None, float | None]]]:
    """The curves ``(step, value, wall_time)`` of the given trial numbers (one query)."""
    nums = sorted({int(n) for n in numbers})
    out: dict[int, list[tuple[int, float | None, float | None]]] = {}
    if not nums:
        return out
    q = (select(_T.c.number, _P.c.step, _P.c.value, _P.c.wall_time)
         .join(_T, _T.c.id == _P.c.trial_id)
         .where(_T.c.study_id == study_id, _T.c.number.in_(nums))
         .order_by(_T.c.number, _P.c.step))
    with st.read(f"reading curves of study {study_id}") as conn:
        for n, s, v, w in conn.execute(q):
            out.setdefault(int(n), []).append((int(s), v, w))
    return out
