"""The write and read API of the study database.

:class:`Storage` is what the engine uses: the runner's driver process creates one per study
and calls the write methods from Tune's callback/scheduler hooks (possibly from several
threads: every call opens its own connection from the pool and its own transaction, so a
``Storage`` is safe to share between threads; processes each create their own).  The query
CLI and :func:`nas.storage.open_study` use the read methods.  Every database exception becomes
a :class:`~nas.errors.StorageError` naming the masked URL and the cause.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from typing_extensions import Self

from nas.errors import ConfigError, NasError, StorageError, StudyNotFoundError
from nas.names import check_study_name
from nas.storage._dashboard import DashboardReads
from nas.storage._engine import cause, finite, jsonable, make_engine
from nas.storage._models import (
    CurvePointModel,
    DecisionModel,
    ForecastModel,
    StudyModel,
    TrialModel,
    TrialValueModel,
    utcnow,
)
from nas.storage._records import (
    STATES,
    DecisionRecord,
    ForecastRecord,
    StudyRecord,
    TrialRecord,
)
from nas.storage._schema import ensure_schema
from nas.storage._url import mask_url

__all__ = ["DIRECTIONS", "Storage"]

#: The largest integer a database column holds (beyond it drivers raise OverflowError).
_INT64_MAX = 2**63 - 1

log = logging.getLogger(__name__)

DIRECTIONS = ("maximize", "minimize")
STUDY_STATUSES = ("RUNNING", "COMPLETE", "INTERRUPTED", "FAILED")

_S = cast(Table, StudyModel.__table__)
_T = cast(Table, TrialModel.__table__)
_V = cast(Table, TrialValueModel.__table__)
_P = cast(Table, CurvePointModel.__table__)
_F = cast(Table, ForecastModel.__table__)
_D = cast(Table, DecisionModel.__table__)

POINT_BATCH = 10_000


def _forecast_row(trial_id: int, step: int, f: Mapping[str, Any], now: Any) -> dict[str, Any]:
    return {"trial_id": int(trial_id), "step": int(step), "predictor": str(f["predictor"]),
            "horizon": int(f["horizon"]), "mean": finite(f.get("mean")),
            "q05": finite(f.get("q05")), "q50": finite(f.get("q50")),
            "q95": finite(f.get("q95")), "p_improve": finite(f.get("p_improve")),
            "created": now}


def _decision_row(trial_id: int, step: int, d: Mapping[str, Any], now: Any) -> dict[str, Any]:
    return {"trial_id": int(trial_id), "step": int(step), "policy": str(d["policy"]),
            "action": str(d["action"]).upper(), "reason": str(d.get("reason", "")),
            "created": now, "threshold": finite(d.get("threshold"))}


def _check_state(state: str) -> str:
    if state not in STATES:
        raise ConfigError(f"trial state {state!r} is not one of {', '.join(STATES)}")
    return state


class Storage(DashboardReads):
    """A connection to one study database (any SQLAlchemy URL).

    Opening a new (empty) database creates the schema at the head revision; a database at an
    older revision is refused with a message telling to run ``nas db upgrade``; one newer than
    this code is refused.  ``url`` is what was given, ``masked_url`` the same with the password
    replaced by ``***`` (use it in messages).
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        self.dialect = ""
        self._engine = make_engine(url)
        self.dialect = self._engine.dialect.name
        self._local = threading.local()  # the connection of this thread's batch(), if any
        if check_schema:
            with self._translate("opening the database"):
                ensure_schema(self._engine, self.masked_url)

    # ------------------------------------------------------------------ plumbing
    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        """Release pooled connections (the object stays usable: the pool reconnects)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.masked_url!r})"

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except NasError:
            raise
        except (SQLAlchemyError, OSError, ImportError) as exc:
            raise StorageError(f"{action} failed on {self.masked_url}: {cause(exc)}") from exc

    @contextmanager
    def transaction(self, action: str) -> Iterator[Connection]:
        """One transaction (committed on success, rolled back on any error); inside
        :meth:`batch` (same thread), the batch's transaction."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with self._translate(action):
                yield conn
            return
        with self._translate(action), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def batch(self, action: str = "writing a batch") -> Iterator[None]:
        """Make every write method called in this thread inside the block part of ONE
        transaction: all of them are committed at the end, or none (any error rolls back the
        whole batch and propagates).  For writers that apply many small writes at once."""
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("Storage.batch() cannot be nested")
        with self._translate(action), self._engine.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        with self._translate(action), self._engine.connect() as conn:
            yield conn

    # ------------------------------------------------------------------ studies
    def create_study(
        self,
        name: str,
        *,
        space: str,
        task: str,
        objectives: list[dict[str, Any]],
        config: dict[str, Any],
        exist_ok: bool = False,
        status: str = "RUNNING",
    ) -> int:
        """Create a study and return its id.  An existing name is a :class:`ConfigError`
        unless ``exist_ok`` (then the existing study's id is returned, unchanged)."""
        row = self.study_row(name, space=space, task=task, objectives=objectives,
                              config=config, status=status)
        try:
            with self.transaction(f"creating study {name!r}") as conn:
                return self.insert_study(conn, row)
        except ConfigError:
            if exist_ok:
                return self.get_study(name).id
            raise

    def study_row(self, name: str, *, space: str, task: str, objectives: list[dict[str, Any]],
                   config: dict[str, Any], status: str) -> dict[str, Any]:
        check_study_name(name)
        if status not in STUDY_STATUSES:
            raise ConfigError(f"study status {status!r} is not one of {', '.join(STUDY_STATUSES)}")
        return {
            "name": name, "space": space, "task": task,
            "objectives": self._check_objectives(objectives), "config": jsonable(config),
            "created": utcnow(), "status": status,
        }

    def insert_study(self, conn: Connection, row: dict[str, Any]) -> int:
        """Insert a study row inside the caller's transaction; an existing name is a
        :class:`ConfigError` (the transaction must then be rolled back)."""
        try:
            return int(conn.execute(insert(_S).values(**row).returning(_S.c.id)).scalar_one())
        except IntegrityError:
            raise ConfigError(
                f"study {row['name']!r} already exists in {self.masked_url}; choose another name "
                "(or resume it where the command offers --resume)"
            ) from None

    @staticmethod
    def _check_objectives(objectives: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not objectives:
            raise ConfigError("objectives must name at least one objective")
        out = []
        for i, o in enumerate(objectives):
            if not isinstance(o, Mapping) or "name" not in o:
                raise ConfigError(f"objectives[{i}] is {o!r}; expected {{'name': ..., 'direction': ...}}")
            d = o.get("direction", "maximize")
            if d not in DIRECTIONS:
                raise ConfigError(f"objectives[{i}].direction is {d!r}; must be maximize or minimize")
            out.append(jsonable({**o, "direction": d}))
        return out

    @staticmethod
    def _study(row: Any) -> StudyRecord:
        return StudyRecord(
            id=row.id, name=row.name, space=row.space, task=row.task,
            objectives=list(row.objectives or []), config=dict(row.config or {}),
            created=row.created, status=row.status,
        )

    def get_study(self, name: str) -> StudyRecord:
        """The study called ``name``; :class:`StudyNotFoundError` lists the known names."""
        with self._read(f"reading study {name!r}") as conn:
            row = conn.execute(select(_S).where(_S.c.name == name)).first()
            if row is None:
                names = list(conn.execute(select(_S.c.name).order_by(_S.c.name)).scalars())
        if row is None:
            known = ", ".join(names[:50]) + (" ..." if len(names) > 50 else "") if names else "none"
            raise StudyNotFoundError(
                f"no study {name!r} in {self.masked_url}; known studies: {known}"
            )
        return self._study(row)

    def get_study_by_id(self, study_id: int) -> StudyRecord:
        with self._read("reading a study") as conn:
            row = conn.execute(select(_S).where(_S.c.id == study_id)).first()
        if row is None:
            raise StudyNotFoundError(f"no study with id {study_id} in {self.masked_url}")
        return self._study(row)

    def study_names(self) -> list[str]:
        with self._read("listing studies") as conn:
            return list(conn.execute(select(_S.c.name).order_by(_S.c.name)).scalars())

    def studies(self) -> list[StudyRecord]:
        with self._read("listing studies") as conn:
            return [self._study(r) for r in conn.execute(select(_S).order_by(_S.c.id))]

    def set_study_status(self, study_id: int, status: str) -> None:
        if status not in STUDY_STATUSES:
            raise ConfigError(f"study status {status!r} is not one of {', '.join(STUDY_STATUSES)}")
        with self.transaction("setting the study status") as conn:
            n = conn.execute(update(_S).where(_S.c.id == study_id).values(status=status)).rowcount
        if n == 0:
            raise StudyNotFoundError(f"no study with id {study_id} in {self.masked_url}")

    def delete_study(self, name: str) -> None:
        """Delete a study and everything it holds (one transaction)."""
        study_id = self.get_study(name).id
        with self.transaction(f"deleting study {name!r}") as conn:
            tids = select(_T.c.id).where(_T.c.study_id == study_id).scalar_subquery()
            for table in (_P, _F, _D, _V):
                conn.execute(delete(table).where(table.c.trial_id.in_(tids)))
            conn.execute(delete(_T).where(_T.c.study_id == study_id))
            conn.execute(delete(_S).where(_S.c.id == study_id))

    def study_summaries(self) -> list[dict[str, Any]]:
        """Per study: the record, trials by state, best primary value (respecting direction)."""
        with self._read("summarising studies") as conn:
            studies = [self._study(r) for r in conn.execute(select(_S).order_by(_S.c.id))]
            counts: dict[int, dict[str, int]] = {}
            for sid, state, n in conn.execute(
                select(_T.c.study_id, _T.c.state, func.count()).group_by(_T.c.study_id, _T.c.state)
            ):
                counts.setdefault(sid, {})[state] = int(n)
            done = and_(_T.c.state == "COMPLETE", _T.c.value.is_not(None))
            best_max = dict(conn.execute(
                select(_T.c.study_id, func.max(_T.c.value)).where(done).group_by(_T.c.study_id)
            ).all())
            best_min = dict(conn.execute(
                select(_T.c.study_id, func.min(_T.c.value)).where(done).group_by(_T.c.study_id)
            ).all())
        out = []
        for s in studies:
            best = (best_min if s.direction == "minimize" else best_max).get(s.id)
            out.append({"study": s, "states": counts.get(s.id, {}), "best_value": best})
        return out

    # ------------------------------------------------------------------ trials (write)
    def create_trial(
        self,
        study_id: int,
        number: int,
        *,
        config: dict[str, Any],
        distributions: dict[str, Any],
        features: dict[str, Any] | None = None,
        group: str | None = None,
        node: str | None = None,
        state: str = "RUNNING",
    ) -> int:
        """Record a new trial (started now) and return its id; (study, number) is unique."""
        _check_state(state)
        row = {
            "study_id": study_id, "number": int(number), "state": state,
            "config": jsonable(config), "distributions": jsonable(distributions),
            "features": jsonable(features) if features is not None else None,
            "group_name": group, "node": node, "started": utcnow(),
        }
        with self.transaction(f"creating trial {number} of study {study_id}") as conn:
            return int(conn.execute(insert(_T).values(**row).returning(_T.c.id)).scalar_one())

    def add_points(self, trial_id: int, points: Sequence[tuple[int, float | None, float | None]]) -> None:
        """Store curve points ``(step, value, wall_time)`` in one batched insert.

        A (trial, step) already stored is ignored (never duplicated, never an error); NaN and
        inf values are stored as NULL (missing).  Steps are the epochs, 1-based.
        """
        rows: dict[int, dict[str, Any]] = {}
        for p in points:
            step, value, wall = (tuple(p) + (None,))[:3]
            s = int(cast(int, step))
            if s not in rows:
                rows[s] = {"trial_id": trial_id, "step": s, "value": finite(value),
                           "wall_time": finite(wall)}
        if not rows:
            return
        with self.transaction(f"adding {len(rows)} points to trial {trial_id}") as conn:
            self._insert_ignore_points(conn, list(rows.values()))

    def _insert_ignore_points(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        name = self.dialect
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

    def add_forecast(
        self,
        trial_id: int,
        step: int,
        *,
        predictor: str,
        horizon: int,
        mean: float,
        q05: float,
        q50: float,
        q95: float,
        p_improve: float | None,
    ) -> None:
        """Store a predictor's forecast made after ``step`` of the value at ``horizon``."""
        row = _forecast_row(trial_id, step, {
            "predictor": predictor, "horizon": horizon, "mean": mean, "q05": q05, "q50": q50,
            "q95": q95, "p_improve": p_improve}, utcnow())
        with self.transaction(f"adding a forecast to trial {trial_id}") as conn:
            conn.execute(insert(_F).values(**row))

    def add_decision(self, trial_id: int, step: int, *, policy: str, action: str, reason: str,
                     threshold: float | None = None) -> None:
        """Store a stopping policy's decision (``CONTINUE``, ``STOP`` or ``AUDIT``) after
        ``step``; ``threshold``: the raw value its forecast had to clear."""
        row = _decision_row(trial_id, step, {"policy": policy, "action": action,
                                             "reason": reason, "threshold": threshold}, utcnow())
        with self.transaction(f"adding a decision to trial {trial_id}") as conn:
            conn.execute(insert(_D).values(**row))

    def record_step(
        self,
        trial_id: int,
        step: int,
        value: float | None,
        wall_time: float | None = None,
        *,
        forecast: Mapping[str, Any] | None = None,
        decision: Mapping[str, Any] | None = None,
    ) -> None:
        """One result of the runner's per-epoch hook in one transaction: the point (ignored if
        the step is stored), and optionally a forecast (the keyword arguments of
        :meth:`add_forecast`) and a decision (those of :meth:`add_decision`)."""
        self.record_steps([(trial_id, step, value, wall_time, forecast, decision)])

    def record_steps(
        self,
        steps: Sequence[tuple[int, int, float | None, float | None,
                              Mapping[str, Any] | None, Mapping[str, Any] | None]],
    ) -> None:
        """Many :meth:`record_step` calls (any trials) in one transaction with batched inserts:
        each item is ``(trial_id, step, value, wall_time, forecast, decision)``.  For a writer
        thread that drains a queue of results."""
        now = utcnow()
        points: dict[tuple[int, int], dict[str, Any]] = {}
        forecasts: list[dict[str, Any]] = []
        decisions: list[dict[str, Any]] = []
        for trial_id, step, value, wall_time, forecast, decision in steps:
            key = (int(trial_id), int(step))
            if key not in points:
                points[key] = {"trial_id": key[0], "step": key[1], "value": finite(value),
                               "wall_time": finite(wall_time)}
            if forecast is not None:
                forecasts.append(_forecast_row(key[0], key[1], forecast, now))
            if decision is not None:
                decisions.append(_decision_row(key[0], key[1], decision, now))
        if not points:
            return
        with self.transaction(f"recording {len(points)} results") as conn:
            self._insert_ignore_points(conn, list(points.values()))
            if forecasts:
                conn.execute(insert(_F), forecasts)
            if decisions:
                conn.execute(insert(_D), decisions)

    def set_trial_node(self, trial_id: int, node: str) -> None:
        """Record which machine ran the trial (known to the runner after its first result)."""
        with self.transaction(f"recording the node of trial {trial_id}") as conn:
            conn.execute(update(_T).where(_T.c.id == trial_id).values(node=str(node)[:200]))

    def set_study_evaluation(self, study_id: int, doc: Mapping[str, Any]) -> None:
        """Store the final evaluation (``nas evaluate``) under the study's ``config["evaluation"]``."""
        with self.transaction("storing the evaluation") as conn:
            cfg = conn.execute(select(_S.c.config).where(_S.c.id == study_id)).scalar_one_or_none()
            if cfg is None and not conn.execute(select(_S.c.id).where(_S.c.id == study_id)).first():
                raise StudyNotFoundError(f"no study with id {study_id} in {self.masked_url}")
            new = dict(cfg or {})
            new["evaluation"] = jsonable(dict(doc))
            conn.execute(update(_S).where(_S.c.id == study_id).values(config=new))

    def finish_trial(
        self,
        trial_id: int,
        *,
        state: str,
        value: float | None = None,
        values: list[float] | None = None,
        epochs: int | None = None,
        error: str | None = None,
    ) -> None:
        """Set the trial's final state, value(s), epochs run, error and end time.

        ``value`` defaults to ``values[0]``; ``epochs`` defaults to the highest stored step.
        NaN/inf values are stored as missing.
        """
        _check_state(state)
        if value is None and values:
            value = values[0]
        with self.transaction(f"finishing trial {trial_id}") as conn:
            if epochs is None:
                epochs = conn.execute(
                    select(func.max(_P.c.step)).where(_P.c.trial_id == trial_id)
                ).scalar()
            n = conn.execute(
                update(_T).where(_T.c.id == trial_id).values(
                    state=state, value=finite(value), epochs=epochs, error=error,
                    finished=utcnow(),
                )
            ).rowcount
            if n == 0:
                raise StorageError(f"no trial with id {trial_id} in {self.masked_url}")
            if values is not None:
                conn.execute(delete(_V).where(_V.c.trial_id == trial_id))
                if values:
                    conn.execute(insert(_V), [
                        {"trial_id": trial_id, "objective": i, "value": finite(v)}
                        for i, v in enumerate(values)
                    ])

    def mark_interrupted(self, study_id: int) -> int:
        """Mark the study's RUNNING trials INTERRUPTED (after a crash or Ctrl-C); returns how many."""
        with self.transaction("marking running trials interrupted") as conn:
            return int(conn.execute(
                update(_T).where(_T.c.study_id == study_id, _T.c.state == "RUNNING")
                .values(state="INTERRUPTED", finished=utcnow())
            ).rowcount)

    # ------------------------------------------------------------------ trials (read)
    def trials(
        self,
        study_id: int,
        *,
        states: list[str] | None = None,
        with_curves: bool = False,
    ) -> list[TrialRecord]:
        """The study's trials by number; with ``with_curves`` each has its curve."""
        for s in states or []:
            _check_state(s)
        with self._read("reading trials") as conn:
            q = select(_T).where(_T.c.study_id == study_id)
            if states:
                q = q.where(_T.c.state.in_(states))
            rows = conn.execute(q.order_by(_T.c.number)).all()
            vq = select(_V.c.trial_id, _V.c.objective, _V.c.value).join(
                _T, _T.c.id == _V.c.trial_id).where(_T.c.study_id == study_id)
            vals: dict[int, dict[int, float | None]] = {}
            for tid, obj, v in conn.execute(vq):
                vals.setdefault(tid, {})[obj] = v
            curves: dict[int, list[float | None]] = {}
            if with_curves:
                pq = select(_P.c.trial_id, _P.c.value).join(_T, _T.c.id == _P.c.trial_id).where(
                    _T.c.study_id == study_id).order_by(_P.c.trial_id, _P.c.step)
                if states:
                    pq = pq.where(_T.c.state.in_(states))
                cur_id, cur = None, []
                for tid, v in conn.execute(pq):
                    if tid != cur_id:
                        cur_id, cur = tid, curves.setdefault(tid, [])
                    cur.append(v)
        out = []
        for r in rows:
            tv = vals.get(r.id)
            out.append(TrialRecord(
                id=r.id, study_id=r.study_id, number=r.number, state=r.state,
                config=dict(r.config or {}), distributions=dict(r.distributions or {}),
                features=None if r.features is None else dict(r.features),
                group=r.group_name, value=r.value,
                values=[tv[k] for k in sorted(tv)] if tv else None,
                epochs=r.epochs, error=r.error, node=r.node, started=r.started,
                finished=r.finished,
                curve=(curves.get(r.id, []) if with_curves else None),
            ))
        return out

    def trial_rows(
        self,
        study_id: int,
        *,
        states: list[str] | None = None,
        sort: str = "number",
        direction: str = "maximize",
        limit: int | None = None,
        with_values: bool = False,
    ) -> list[dict[str, Any]]:
        """The listing of ``nas trials``: number, state, value, epochs, group, params (config),
        sorted and limited in SQL.  ``sort="value"`` puts the best first for ``direction``
        and trials without a value last.  ``with_values`` adds ``values`` (every objective)."""
        for s in states or []:
            _check_state(s)
        if sort not in ("number", "value"):
            raise ConfigError(f"sort is {sort!r}; must be value or number")
        if limit is not None and limit < 0:
            raise ConfigError(f"limit is {limit}, but must be >= 0")
        q = select(_T.c.number, _T.c.state, _T.c.value, _T.c.epochs, _T.c.group_name,
                   _T.c.config).where(_T.c.study_id == study_id)
        if states:
            q = q.where(_T.c.state.in_(states))
        if sort == "value":
            key = _T.c.value.desc() if direction == "maximize" else _T.c.value.asc()
            q = q.order_by(_T.c.value.is_(None), key, _T.c.number)
        else:
            q = q.order_by(_T.c.number)
        if limit is not None:
            q = q.limit(min(limit, _INT64_MAX))  # a larger LIMIT overflows the driver: all rows
        with self._read("listing trials") as conn:
            rows = [{"number": n, "state": st, "value": v, "epochs": e, "group": g, "params": c}
                    for n, st, v, e, g, c in conn.execute(q)]
            if with_values:
                vals: dict[int, dict[int, float | None]] = {}
                vq = select(_T.c.number, _V.c.objective, _V.c.value).join(
                    _T, _T.c.id == _V.c.trial_id).where(_T.c.study_id == study_id)
                for num, obj, v in conn.execute(vq):
                    vals.setdefault(num, {})[obj] = v
                for r in rows:
                    tv = vals.get(r["number"])
                    r["values"] = [tv[k] for k in sorted(tv)] if tv else None
        return rows

    def next_number(self, study_id: int) -> int:
        """The number for the study's next trial: one more than the highest stored (0 if none).
        The runner calls it when it resumes a study."""
        with self._read("finding the next trial number") as conn:
            top = conn.execute(select(func.max(_T.c.number)).where(_T.c.study_id == study_id)).scalar()
        return 0 if top is None else int(top) + 1

    def trial_id(self, study_id: int, number: int) -> int:
        """The id of trial ``number`` of the study (:class:`ConfigError` listing the range)."""
        with self._read("finding a trial") as conn:
            tid = None if abs(number) > _INT64_MAX else conn.execute(select(_T.c.id).where(
                _T.c.study_id == study_id, _T.c.number == number)).scalar()
            if tid is None:
                lo, hi, n = conn.execute(select(
                    func.min(_T.c.number), func.max(_T.c.number), func.count()
                ).where(_T.c.study_id == study_id)).one()
        if tid is None:
            have = f"trial numbers {lo}..{hi} ({n} trials)" if n else "no trials"
            raise ConfigError(f"study has no trial {number}; it has {have}")
        return int(tid)

    def curve(self, trial_id: int) -> list[tuple[int, float | None]]:
        """The trial's stored points ``(step, value)`` in step order (None = missing)."""
        with self._read(f"reading the curve of trial {trial_id}") as conn:
            return [(int(s), v) for s, v in conn.execute(
                select(_P.c.step, _P.c.value).where(_P.c.trial_id == trial_id).order_by(_P.c.step))]

    def curve_points(self, trial_id: int) -> list[tuple[int, float | None, float | None]]:
        """Like :meth:`curve` with the wall time: ``(step, value, wall_time)``."""
        with self._read(f"reading the curve of trial {trial_id}") as conn:
            return [(int(s), v, w) for s, v, w in conn.execute(
                select(_P.c.step, _P.c.value, _P.c.wall_time)
                .where(_P.c.trial_id == trial_id).order_by(_P.c.step))]

    def forecasts(self, trial_id: int) -> list[ForecastRecord]:
        with self._read(f"reading forecasts of trial {trial_id}") as conn:
            rows = conn.execute(select(_F).where(_F.c.trial_id == trial_id)
                                .order_by(_F.c.step, _F.c.id)).all()
        return [ForecastRecord(r.trial_id, r.step, r.predictor, r.horizon, r.mean, r.q05, r.q50,
                               r.q95, r.p_improve, r.created) for r in rows]

    def decisions(self, trial_id: int) -> list[DecisionRecord]:
        with self._read(f"reading decisions of trial {trial_id}") as conn:
            rows = conn.execute(select(_D).where(_D.c.trial_id == trial_id)
                                .order_by(_D.c.step, _D.c.id)).all()
        return [DecisionRecord(r.trial_id, r.step, r.policy, r.action, r.reason, r.created,
                               r.threshold) for r in rows]

    def audits(self, study_id: int) -> dict[int, tuple[int, str]]:
        """The stop audit's trials (an ``AUDIT`` decision: the policy would have stopped them,
        the audit let them run on), by number: the step of the decision, and ``"false stop"`` (complete, and the final value
        beat the decision's threshold: stopping would have lost it), ``"right stop"``
        (complete, it did not), ``"pending"`` (still running) or ``"lost"`` (failed or
        interrupted before its final value)."""
        q = (select(_T.c.number, _D.c.step, _T.c.state, _T.c.value, _D.c.threshold,
                    _S.c.objectives)
             .join(_T, _T.c.id == _D.c.trial_id).join(_S, _S.c.id == _T.c.study_id)
             .where(_T.c.study_id == study_id, _D.c.action == "AUDIT")
             .order_by(_T.c.number, _D.c.step))
        out: dict[int, tuple[int, str]] = {}
        with self._read(f"reading the stop audit of study {study_id}") as conn:
            for number, step, state, value, threshold, objectives in conn.execute(q):
                if number in out:
                    continue
                if state == "RUNNING":
                    outcome = "pending"
                elif state != "COMPLETE" or value is None or threshold is None:
                    outcome = "lost"
                else:
                    minimize = (objectives or [{}])[0].get("direction") == "minimize"
                    beat = value < threshold if minimize else value > threshold
                    outcome = "false stop" if beat else "right stop"
                out[int(number)] = (int(step), outcome)
        return out

    def false_stops(self, study_id: int) -> dict[str, Any]:
        """The study's measured false-stop rate: among the audited trials that finished, the
        share whose stop would have been wrong, with a 95% Wilson interval
        (:func:`nas.policies.false_stop_summary`)."""
        from nas.policies._audit import false_stop_summary

        got = [outcome for _, outcome in self.audits(study_id).values()]
        done = got.count("false stop") + got.count("right stop")
        return false_stop_summary(done, got.count("false stop"), got.count("pending"))
