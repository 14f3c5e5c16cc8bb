"""The read part of :class:`~nas.storage.Storage`: studies, trials, curves, forecasts,
decisions, the stop audit's decisions and evaluations.  The dashboard's paged reads are the
dashboard's (``nas.dashboard``); the audit's verdicts are the policies' (``nas.policies``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from nas.errors import ConfigError, StudyNotFoundError
from nas.interfaces import TRIAL_STATES, Action, Direction, TrialState
from nas.storage._base import Database
from nas.storage._models import CURVE_POINTS as _P
from nas.storage._models import DECISIONS as _D
from nas.storage._models import EVALUATIONS as _E
from nas.storage._models import FORECASTS as _F
from nas.storage._models import STUDIES as _S
from nas.storage._models import TRIAL_VALUES as _V
from nas.storage._models import TRIALS as _T
from nas.storage._records import (
    AuditRecord,
    DecisionRecord,
    EvaluationRecord,
    ForecastRecord,
    StudyRecord,
    TrialRecord,
    directions_of,
)
from nas.storage._rows import forecast_record
from nas.storage._types import as_list, as_mapping, as_number, as_time

__all__ = ["INT64_MAX", "Queries", "check_state", "study_record", "trial_record"]

#: The largest integer a database column holds (beyond it drivers raise OverflowError).
INT64_MAX = 2**63 - 1


def check_state(state: str) -> str:
    if state not in TRIAL_STATES:
        raise ConfigError(f"trial state {state!r} is not one of {', '.join(TRIAL_STATES)}")
    return TrialState(state).value


def study_record(row: Any) -> StudyRecord:
    """A ``studies`` row as a record; a value that cannot be read is named in ``unreadable``."""
    bad: list[str] = []
    return StudyRecord(
        id=row.id, name=row.name, space=row.space, task=row.task,
        objectives=as_list(row.objectives, "objectives", bad),
        config=as_mapping(row.config, "config", bad),
        created=as_time(row.created, "created", bad), status=row.status, unreadable=tuple(bad),
    )


def trial_record(r: Any, values: list[float | None] | None = None,
                 curve: list[float | None] | None = None) -> TrialRecord:
    """A ``trials`` row as a record; a value that cannot be read is named in ``unreadable``."""
    bad: list[str] = []
    config = as_mapping(r.config, "config", bad)
    distributions = as_mapping(r.distributions, "distributions", bad)
    features = None if r.features is None else as_mapping(r.features, "features", bad)
    return TrialRecord(
        id=r.id, study_id=r.study_id, number=r.number, state=r.state, config=config,
        distributions=distributions, features=features, group=r.group_name,
        value=as_number(r.value, "value", bad), values=values,
        epochs=r.epochs if isinstance(r.epochs, int) or r.epochs is None else None,
        error=r.error, node=r.node, started=as_time(r.started, "started", bad),
        finished=as_time(r.finished, "finished", bad), curve=curve, unreadable=tuple(bad),
        device=r.device, threads=r.threads if isinstance(r.threads, int) else None)


def decision_record(r: Any) -> DecisionRecord:
    """A ``decisions`` row as a record."""
    return DecisionRecord(r.trial_id, r.step, r.policy, r.action, r.reason, r.created,
                          r.threshold)


class Queries:
    """Reads of studies, trials and their records (each method opens one connection)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ studies
    def get_study(self, name: str) -> StudyRecord:
        """The study called ``name``; :class:`StudyNotFoundError` lists the known names."""
        with self.db.read(f"reading study {name!r}") as conn:
            row = conn.execute(select(_S).where(_S.c.name == name)).first()
            if row is None:
                names = list(conn.execute(select(_S.c.name).order_by(_S.c.name)).scalars())
        if row is None:
            known = ", ".join(names[:50]) + (" ..." if len(names) > 50 else "") if names else "none"
            raise StudyNotFoundError(
                f"no study {name!r} in {self.db.masked_url}; known studies: {known}"
            )
        return study_record(row)

    def get_study_by_id(self, study_id: int) -> StudyRecord:
        with self.db.read("reading a study") as conn:
            row = conn.execute(select(_S).where(_S.c.id == study_id)).first()
        if row is None:
            raise StudyNotFoundError(f"no study with id {study_id} in {self.db.masked_url}")
        return study_record(row)

    def study_names(self) -> list[str]:
        with self.db.read("listing studies") as conn:
            return list(conn.execute(select(_S.c.name).order_by(_S.c.name)).scalars())

    def studies(self) -> list[StudyRecord]:
        with self.db.read("listing studies") as conn:
            return [study_record(r) for r in conn.execute(select(_S).order_by(_S.c.id))]

    def study_summaries(self) -> list[dict[str, Any]]:
        """Per study: the record, trials by state, best primary value (respecting direction)."""
        with self.db.read("summarising studies") as conn:
            studies = [study_record(r) for r in conn.execute(select(_S).order_by(_S.c.id))]
            counts: dict[int, dict[str, int]] = {}
            for sid, state, n in conn.execute(
                select(_T.c.study_id, _T.c.state, func.count()).group_by(_T.c.study_id, _T.c.state)
            ):
                counts.setdefault(sid, {})[state] = int(n)
            done = and_(_T.c.state == TrialState.COMPLETE, _T.c.value.is_not(None))
            best_max = dict(conn.execute(
                select(_T.c.study_id, func.max(_T.c.value)).where(done).group_by(_T.c.study_id)
            ).all())
            best_min = dict(conn.execute(
                select(_T.c.study_id, func.min(_T.c.value)).where(done).group_by(_T.c.study_id)
            ).all())
        out = []
        for s in studies:
            best = (best_min if s.direction == Direction.MINIMIZE else best_max).get(s.id)
            out.append({"study": s, "states": counts.get(s.id, {}), "best_value": best})
        return out

    def study_evaluation(self, study_id: int) -> EvaluationRecord | None:
        """The study's final evaluation (``nas evaluate``), or None when it has none."""
        with self.db.read("reading the evaluation") as conn:
            r = conn.execute(select(_E).where(_E.c.study_id == study_id)).first()
        if r is None:
            return None
        return EvaluationRecord(study_id=r.study_id, metric=r.metric, seeds=r.seeds, top=r.top,
                                results=list(r.results or []), wall_s=r.wall_s,
                                created=r.created)

    # ------------------------------------------------------------------ trials
    def trials(
        self,
        study_id: int,
        *,
        states: list[str] | None = None,
        with_curves: bool = False,
    ) -> list[TrialRecord]:
        """The study's trials by number; with ``with_curves`` each has its curve."""
        for s in states or []:
            check_state(s)
        with self.db.read("reading trials") as conn:
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
            out.append(trial_record(r, [tv[k] for k in sorted(tv)] if tv else None,
                                    curves.get(r.id, []) if with_curves else None))
        return out

    def trial_rows(
        self,
        study_id: int,
        *,
        states: list[str] | None = None,
        sort: str = "number",
        direction: str = Direction.MAXIMIZE,
        limit: int | None = None,
        with_values: bool = False,
    ) -> list[dict[str, Any]]:
        """The listing of ``nas trials``: number, state, value, epochs, group, params (config),
        node, device and threads (where the trial ran), sorted and limited in SQL.
        ``sort="value"`` puts the best first for ``direction``
        and trials without a value last.  ``with_values`` adds ``values`` (every objective)."""
        for s in states or []:
            check_state(s)
        if sort not in ("number", "value"):
            raise ConfigError(f"sort = {sort!r}: must be value or number")
        if limit is not None and limit < 0:
            raise ConfigError(f"limit = {limit}: must be >= 0")
        q = select(_T.c.number, _T.c.state, _T.c.value, _T.c.epochs, _T.c.group_name,
                   _T.c.config, _T.c.node, _T.c.device, _T.c.threads
                   ).where(_T.c.study_id == study_id)
        if states:
            q = q.where(_T.c.state.in_(states))
        if sort == "value":
            key = _T.c.value.desc() if direction == Direction.MAXIMIZE else _T.c.value.asc()
            q = q.order_by(_T.c.value.is_(None), key, _T.c.number)
        else:
            q = q.order_by(_T.c.number)
        if limit is not None:
            q = q.limit(min(limit, INT64_MAX))  # a larger LIMIT overflows the driver: all rows
        with self.db.read("listing trials") as conn:
            rows = [{"number": n, "state": st, "value": v, "epochs": e, "group": g, "params": c,
                     "node": node, "device": dev, "threads": th}
                    for n, st, v, e, g, c, node, dev, th in conn.execute(q)]
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
        with self.db.read("finding the next trial number") as conn:
            top = conn.execute(select(func.max(_T.c.number)).where(_T.c.study_id == study_id)).scalar()
        return 0 if top is None else int(top) + 1

    def trial_id(self, study_id: int, number: int) -> int:
        """The id of trial ``number`` of the study (:class:`ConfigError` listing the range)."""
        with self.db.read("finding a trial") as conn:
            tid = None if abs(number) > INT64_MAX else conn.execute(select(_T.c.id).where(
                _T.c.study_id == study_id, _T.c.number == number)).scalar()
            if tid is None:
                lo, hi, n = conn.execute(select(
                    func.min(_T.c.number), func.max(_T.c.number), func.count()
                ).where(_T.c.study_id == study_id)).one()
        if tid is None:
            have = f"trial numbers {lo}..{hi} ({n} trials)" if n else "no trials"
            raise ConfigError(f"study has no trial {number}; it has {have}")
        return int(tid)

    # ------------------------------------------------------------------ one trial's records
    def curve(self, trial_id: int) -> list[tuple[int, float | None]]:
        """The trial's stored points ``(step, value)`` in step order (None = missing)."""
        with self.db.read(f"reading the curve of trial {trial_id}") as conn:
            return [(int(s), v) for s, v in conn.execute(
                select(_P.c.step, _P.c.value).where(_P.c.trial_id == trial_id).order_by(_P.c.step))]

    def curve_points(self, trial_id: int) -> list[tuple[int, float | None, float | None]]:
        """Like :meth:`curve` with the wall time: ``(step, value, wall_time)``."""
        with self.db.read(f"reading the curve of trial {trial_id}") as conn:
            return _points(conn, trial_id)

    def forecasts(self, trial_id: int) -> list[ForecastRecord]:
        with self.db.read(f"reading forecasts of trial {trial_id}") as conn:
            return _forecasts(conn, trial_id)

    def decisions(self, trial_id: int) -> list[DecisionRecord]:
        with self.db.read(f"reading decisions of trial {trial_id}") as conn:
            return _decisions(conn, trial_id)

    def stops(self, study_id: int) -> dict[int, DecisionRecord]:
        """The decision that stopped each stopped trial of the study, by trial number (the
        first ``STOP`` decision of a trial; one query for the whole study)."""
        q = (select(_T.c.number.label("trial_number"), _D).join(_T, _T.c.id == _D.c.trial_id)
             .where(_T.c.study_id == study_id, _D.c.action == Action.STOP)
             .order_by(_T.c.number, _D.c.step, _D.c.id))
        out: dict[int, DecisionRecord] = {}
        with self.db.read(f"reading the stop decisions of study {study_id}") as conn:
            for r in conn.execute(q):
                out.setdefault(int(r.trial_number), decision_record(r))
        return out

    # ------------------------------------------------------------------ the stop audit
    def audit_records(self, study_id: int) -> list[AuditRecord]:
        """The study's ``AUDIT`` decisions (the policy would have stopped the trial, the audit
        let it run on), by trial number and step, each with its trial's state and final value
        (None where missing or unreadable) and the study's direction: what
        :func:`nas.policies.audit_verdicts` judges."""
        q = (select(_T.c.number, _D.c.step, _T.c.state, _T.c.value, _D.c.threshold,
                    _D.c.reason, _S.c.objectives)
             .join(_T, _T.c.id == _D.c.trial_id).join(_S, _S.c.id == _T.c.study_id)
             .where(_T.c.study_id == study_id, _D.c.action == Action.AUDIT)
             .order_by(_T.c.number, _D.c.step))
        with self.db.read(f"reading the stop audit of study {study_id}") as conn:
            return [AuditRecord(int(number), int(step), str(state),
                                as_number(value, "value", []),
                                as_number(threshold, "threshold", []),
                                directions_of(objectives)[0], reason)
                    for number, step, state, value, threshold, reason, objectives
                    in conn.execute(q)]

    # ------------------------------------------------------------------ one trial
    def trial_by_number(self, study_id: int, number: int) -> TrialRecord | None:
        """Trial ``number`` of the study without its curve, or None if there is none."""
        with self.db.read("reading a trial") as conn:
            r = conn.execute(select(_T).where(_T.c.study_id == study_id,
                                              _T.c.number == number)).first()
        return None if r is None else trial_record(r)

    def trial_detail(self, trial_id: int) -> tuple[list[tuple[int, float | None, float | None]],
                                                   list[ForecastRecord], list[DecisionRecord]]:
        """The trial's points ``(step, value, wall_time)``, forecasts and decisions, read on
        one connection."""
        with self.db.read(f"reading trial {trial_id}") as conn:
            return _points(conn, trial_id), _forecasts(conn, trial_id), _decisions(conn, trial_id)


def _points(conn: Connection, trial_id: int) -> list[tuple[int, float | None, float | None]]:
    return [(int(s), v, w) for s, v, w in conn.execute(
        select(_P.c.step, _P.c.value, _P.c.wall_time)
        .where(_P.c.trial_id == trial_id).order_by(_P.c.step))]


def _forecasts(conn: Connection, trial_id: int) -> list[ForecastRecord]:
    return [forecast_record(r) for r in conn.execute(
        select(_F).where(_F.c.trial_id == trial_id).order_by(_F.c.step, _F.c.id))]


def _decisions(conn: Connection, trial_id: int) -> list[DecisionRecord]:
    return [decision_record(r) for r in conn.execute(
        select(_D).where(_D.c.trial_id == trial_id).order_by(_D.c.step, _D.c.id))]
