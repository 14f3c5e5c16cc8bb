"""The write part of :class:`~nas.storage.Storage`: studies, trials, results (points,
forecasts, decisions: :class:`~nas.storage.StepRecord`), evaluations and bulk imports.  Every
curve point goes through :func:`nas.storage._rows.write_points`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from nas._json import jsonable
from nas.errors import ConfigError, StorageError, StudyNotFoundError
from nas.interfaces import (
    DIRECTIONS,
    STUDY_STATUSES,
    Direction,
    ForecastSummary,
    StudyStatus,
    TrialState,
)
from nas.names import check_study_name
from nas.storage._base import Database
from nas.storage._engine import finite
from nas.storage._lease import Leases
from nas.storage._models import CURVE_POINTS as _P
from nas.storage._models import DECISIONS as _D
from nas.storage._models import EVALUATIONS as _E
from nas.storage._models import FORECASTS as _F
from nas.storage._models import STUDIES as _S
from nas.storage._models import TRIAL_VALUES as _V
from nas.storage._models import TRIALS as _T
from nas.storage._models import utcnow
from nas.storage._query import Queries, check_state
from nas.storage._records import StepRecord, TrialImport
from nas.storage._rows import decision_row, forecast_row, summary_of, write_points

__all__ = ["Writes"]

_ROW_BATCH = 20_000

def _check_objectives(objectives: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not objectives:
        raise ConfigError("objectives must name at least one objective")
    out = []
    for i, o in enumerate(objectives):
        if not isinstance(o, Mapping) or "name" not in o:
            raise ConfigError(f"objectives[{i}] is {o!r}; expected {{'name': ..., 'direction': ...}}")
        d = o.get("direction", Direction.MAXIMIZE)
        if d not in DIRECTIONS:
            raise ConfigError(f"objectives[{i}].direction = {d!r}: must be maximize or minimize")
        out.append(jsonable({**o, "direction": Direction(d).value}))
    return out


def _study_row(name: str, *, space: str, task: str, objectives: Sequence[Mapping[str, Any]],
               config: Mapping[str, Any], status: str) -> dict[str, Any]:
    check_study_name(name)
    if status not in STUDY_STATUSES:
        raise ConfigError(f"study status {status!r} is not one of {', '.join(STUDY_STATUSES)}")
    return {
        "name": name, "space": space, "task": task,
        "objectives": _check_objectives(objectives), "config": jsonable(dict(config)),
        "created": utcnow(), "status": status,
    }


def _values(curve: Iterable[float | None]) -> Iterable[float | None]:
    """A NumPy row as Python floats in one call (element-wise iteration is slow)."""
    tolist = getattr(curve, "tolist", None)
    return cast("list[float | None]", tolist()) if callable(tolist) else curve


class Writes:
    """The engine's and the importers' writes (each in one transaction, or the caller's
    :meth:`~nas.storage.Storage.batch`)."""

    def __init__(self, db: Database, reads: Queries, leases: Leases) -> None:
        self.db = db
        self.reads = reads
        self.leases = leases

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
        status: str = StudyStatus.RUNNING,
    ) -> int:
        """Create a study and return its id.  An existing name is a :class:`ConfigError`
        unless ``exist_ok`` (then the existing study's id is returned, unchanged)."""
        row = _study_row(name, space=space, task=task, objectives=objectives, config=config,
                         status=status)
        try:
            with self.db.transaction(f"creating study {name!r}") as conn:
                return self._insert_study(conn, row)
        except ConfigError:
            if exist_ok:
                return self.reads.get_study(name).id
            raise

    def _insert_study(self, conn: Connection, row: dict[str, Any]) -> int:
        """Insert a study row inside the caller's transaction; an existing name is a
        :class:`ConfigError` (the transaction must then be rolled back)."""
        try:
            return int(conn.execute(insert(_S).values(**row).returning(_S.c.id)).scalar_one())
        except IntegrityError:
            raise ConfigError(
                f"study {row['name']!r} already exists in {self.db.masked_url}; choose another name, "
                "or continue it with --resume (nas run FILE --resume; resume=True in nas.run)"
            ) from None

    def set_study_status(self, study_id: int, status: str) -> None:
        if status not in STUDY_STATUSES:
            raise ConfigError(f"study status {status!r} is not one of {', '.join(STUDY_STATUSES)}")
        with self.db.transaction("setting the study status") as conn:
            n = conn.execute(update(_S).where(_S.c.id == study_id).values(status=status)).rowcount
        if n == 0:
            raise StudyNotFoundError(f"no study with id {study_id} in {self.db.masked_url}")

    def delete_study(self, name: str) -> None:
        """Delete a study and everything it holds (one transaction): its rows in the other
        tables go with it (ON DELETE CASCADE).  A study that a running driver holds (its lease
        is alive) is refused: :class:`~nas.errors.StudyLeasedError`."""
        study_id = self.reads.get_study(name).id
        self.leases.check_not_leased(study_id, name, f"deleting study {name!r}")
        with self.db.transaction(f"deleting study {name!r}") as conn:
            conn.execute(delete(_S).where(_S.c.id == study_id))

    def set_study_evaluation(self, study_id: int, *, metric: str, seeds: int, top: int,
                             results: Sequence[Mapping[str, Any]],
                             wall_s: float | None = None) -> None:
        """Store the study's final evaluation (``nas evaluate``), replacing an earlier one;
        :meth:`study_evaluation` reads it back."""
        row = {"study_id": study_id, "metric": str(metric), "seeds": int(seeds),
               "top": int(top), "results": jsonable([dict(r) for r in results]),
               "wall_s": finite(wall_s), "created": utcnow()}
        with self.db.transaction("storing the evaluation") as conn:
            if conn.execute(select(_S.c.id).where(_S.c.id == study_id)).first() is None:
                raise StudyNotFoundError(f"no study with id {study_id} in {self.db.masked_url}")
            conn.execute(delete(_E).where(_E.c.study_id == study_id))
            conn.execute(insert(_E).values(**row))

    # ------------------------------------------------------------------ trials
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
        state: str = TrialState.RUNNING,
        existing_ok: bool = False,
    ) -> int:
        """Record a new trial (started now) and return its id; (study, number) is unique.
        ``existing_ok``: a trial of that number already stored is returned as it is (the
        runner's writer retries lost writes with it: only the study's lease holder creates
        trials, so such a row is the one its earlier try wrote)."""
        check_state(state)
        row = {
            "study_id": study_id, "number": int(number), "state": state,
            "config": jsonable(config), "distributions": jsonable(distributions),
            "features": jsonable(features) if features is not None else None,
            "group_name": group, "node": node, "started": utcnow(),
        }
        with self.db.transaction(f"creating trial {number} of study {study_id}") as conn:
            if existing_ok:  # a retry after a lost connection: the first try may have committed
                tid = conn.execute(select(_T.c.id).where(_T.c.study_id == study_id,
                                                         _T.c.number == int(number))).scalar()
                if tid is not None:
                    return int(tid)
            return int(conn.execute(insert(_T).values(**row).returning(_T.c.id)).scalar_one())

    def add_points(self, trial_id: int, points: Sequence[tuple[int, float | None, float | None]]) -> None:
        """Store curve points ``(step, value, wall_time)`` in one batched insert.

        A (trial, step) already stored is ignored (never duplicated, never an error); NaN and
        inf values are stored as NULL (missing).  Steps are the epochs, 1-based.
        """
        rows = []
        for p in points:
            step, value, wall = (tuple(p) + (None,))[:3]
            rows.append((trial_id, int(cast(int, step)), value, wall))
        if not rows:
            return
        with self.db.transaction(f"adding {len(rows)} points to trial {trial_id}") as conn:
            write_points(conn, rows)

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
        row = forecast_row(trial_id, step, ForecastSummary(
            predictor, horizon, mean, q05, q50, q95, p_improve), utcnow())
        with self.db.transaction(f"adding a forecast to trial {trial_id}") as conn:
            conn.execute(insert(_F).values(**row))

    def add_decision(self, trial_id: int, step: int, *, policy: str, action: str, reason: str,
                     threshold: float | None = None) -> None:
        """Store a stopping policy's decision (``CONTINUE``, ``STOP`` or ``AUDIT``) after
        ``step``; ``threshold``: the raw value its forecast had to clear."""
        row = decision_row(trial_id, step, {"policy": policy, "action": action,
                                                  "reason": reason, "threshold": threshold},
                                 utcnow())
        with self.db.transaction(f"adding a decision to trial {trial_id}") as conn:
            conn.execute(insert(_D).values(**row))

    def record_step(
        self,
        trial_id: int,
        step: int,
        value: float | None,
        wall_time: float | None = None,
        *,
        forecast: ForecastSummary | Mapping[str, Any] | None = None,
        decision: Mapping[str, Any] | None = None,
    ) -> None:
        """One result in one transaction: the point (ignored if the step is stored), and
        optionally a forecast (a :class:`~nas.interfaces.ForecastSummary`, or a mapping of its
        fields) and a decision (the keyword arguments of :meth:`add_decision`)."""
        self.record_steps([StepRecord(trial_id, step, value, wall_time,
                                      None if forecast is None else summary_of(forecast),
                                      decision)])

    def record_steps(self, steps: Sequence[StepRecord], *, idempotent: bool = False) -> None:
        """Many results (:class:`~nas.storage.StepRecord`, any trials) in one transaction with
        batched inserts: the engine's writer drains its queue of results with it.  Points
        already stored are always left as they are; with ``idempotent`` (a retry of writes
        that may have been committed) so are the forecasts and decisions of a (trial, step)
        that has one."""
        if not steps:
            return
        action = f"re-recording {len(steps)} results" if idempotent else \
            f"recording {len(steps)} results"
        with self.db.transaction(action) as conn:
            self._record_steps(conn, steps, skip_existing=idempotent)

    def _record_steps(self, conn: Connection, steps: Sequence[StepRecord], *,
                      skip_existing: bool) -> None:
        now = utcnow()
        have: dict[Any, set[tuple[int, int]]] = {_F: set(), _D: set()}
        if skip_existing:
            tids = sorted({int(s.trial_id) for s in steps})
            for table in (_F, _D):
                have[table] = {(int(t), int(s)) for t, s in conn.execute(
                    select(table.c.trial_id, table.c.step).where(table.c.trial_id.in_(tids)))}
        forecasts: list[dict[str, Any]] = []
        decisions: list[dict[str, Any]] = []
        for r in steps:
            key = (int(r.trial_id), int(r.step))
            if r.forecast is not None and key not in have[_F]:
                forecasts.append(forecast_row(r.trial_id, r.step, r.forecast, now))
            if r.decision is not None and key not in have[_D]:
                decisions.append(decision_row(r.trial_id, r.step, r.decision, now))
        write_points(conn, ((r.trial_id, r.step, r.value, r.wall_time) for r in steps))
        if forecasts:
            conn.execute(insert(_F), forecasts)
        if decisions:
            conn.execute(insert(_D), decisions)

    def set_trial_node(self, trial_id: int, node: str, *, device: str | None = None,
                       threads: int | None = None) -> None:
        """Record which machine ran the trial and, where known, on which device (``cpu``, or
        ``cuda:0 <GPU name>``) with how many torch threads (known to the runner after the
        trial's first result)."""
        values: dict[str, Any] = {"node": str(node)[:200]}
        if device is not None:
            values["device"] = str(device)[:200]
        if threads is not None:
            values["threads"] = int(threads)
        with self.db.transaction(f"recording the node of trial {trial_id}") as conn:
            conn.execute(update(_T).where(_T.c.id == trial_id).values(**values))

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
        check_state(state)
        if value is None and values:
            value = values[0]
        with self.db.transaction(f"finishing trial {trial_id}") as conn:
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
                raise StorageError(f"no trial with id {trial_id} in {self.db.masked_url}")
            if values is not None:
                conn.execute(delete(_V).where(_V.c.trial_id == trial_id))
                if values:
                    conn.execute(insert(_V), [
                        {"trial_id": trial_id, "objective": i, "value": finite(v)}
                        for i, v in enumerate(values)
                    ])

    def mark_interrupted(self, study_id: int) -> int:
        """Mark the study's RUNNING trials INTERRUPTED (after a crash or Ctrl-C); returns how many."""
        with self.db.transaction("marking running trials interrupted") as conn:
            return int(conn.execute(
                update(_T).where(_T.c.study_id == study_id, _T.c.state == TrialState.RUNNING)
                .values(state=TrialState.INTERRUPTED.value, finished=utcnow())
            ).rowcount)

    # ------------------------------------------------------------------ bulk
    def import_study(
        self,
        name: str,
        *,
        space: str,
        task: str,
        objectives: list[dict[str, Any]],
        config: dict[str, Any],
        trials: Sequence[TrialImport],
        status: str = StudyStatus.COMPLETE,
        action: str = "importing a study",
    ) -> tuple[int, int]:
        """Create study ``name`` with finished ``trials`` (their curves and decisions) in ONE
        transaction, with batched inserts; returns ``(study_id, points stored)``.  An existing
        name is a :class:`ConfigError`; on any failure nothing is stored."""
        row = _study_row(name, space=space, task=task, objectives=objectives, config=config,
                         status=status)
        trial_rows = [{
            "number": int(t.number), "state": check_state(t.state), "group_name": t.group,
            "config": jsonable(dict(t.config)), "distributions": {},
            "features": None if t.features is None else jsonable(dict(t.features)),
            "value": finite(t.value), "epochs": t.epochs,
        } for t in trials]
        with self.db.transaction(action) as conn:
            study_id = self._insert_study(conn, row)
            for r in trial_rows:
                r["study_id"] = study_id
            for i in range(0, len(trial_rows), _ROW_BATCH):
                conn.execute(insert(_T), trial_rows[i : i + _ROW_BATCH])
            ids = dict(conn.execute(select(_T.c.number, _T.c.id)
                                    .where(_T.c.study_id == study_id)).all())
            n_points = write_points(
                conn, ((ids[t.number], s, v, None) for t in trials
                       for s, v in enumerate(_values(t.curve), 1)), new_trials=True)
            now = utcnow()
            decisions = [decision_row(ids[t.number], int(d["step"]), d, now)
                         for t in trials for d in t.decisions]
            if decisions:
                conn.execute(insert(_D), decisions)
        return study_id, n_points
