"""The study database schema: SQLAlchemy 2 typed models (the source of truth; docs/storage.md).

Plain-SQL users read these tables directly, so the names are short and obvious: ``studies``,
``trials``, ``trial_values``, ``curve_points``, ``forecasts``, ``decisions``, ``evaluations``.
Times are naive
UTC.  JSON columns hold snake_case keys.  The Alembic migrations in ``migrations/versions``
must build exactly this schema (a test compares them).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, cast

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nas.interfaces import ACTIONS, STUDY_STATUSES, TRIAL_STATES
from nas.storage._types import SafeDateTime, SafeFloat, SafeJSON

__all__ = [
    "CURVE_POINTS",
    "DECISIONS",
    "EVALUATIONS",
    "FORECASTS",
    "STUDIES",
    "STUDY_LEASES",
    "TRIALS",
    "TRIAL_VALUES",
    "Base",
    "CurvePointModel",
    "DecisionModel",
    "EvaluationModel",
    "ForecastModel",
    "StudyLeaseModel",
    "StudyModel",
    "TrialModel",
    "TrialValueModel",
    "utcnow",
]

# Deterministic constraint names so that migrations can refer to them on every back end.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a CHECK that ``column`` holds one of ``values`` (revision 0007)."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _parent(column: str) -> ForeignKey:
    """A foreign key whose rows go with their parent's (ON DELETE CASCADE, revision 0007)."""
    return ForeignKey(column, ondelete="CASCADE")


def utcnow() -> _dt.datetime:
    """Now, as the naive UTC datetime stored in every time column."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StudyModel(Base):
    """One search (or one imported curve file)."""

    __tablename__ = "studies"
    __table_args__ = (CheckConstraint(_one_of("status", STUDY_STATUSES), name="ck_studies_status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)
    space: Mapped[str] = mapped_column(String(512))
    task: Mapped[str] = mapped_column(String(512))
    objectives: Mapped[Any] = mapped_column(SafeJSON)  # [{"name": ..., "direction": ...}, ...]
    config: Mapped[Any] = mapped_column(SafeJSON)
    created: Mapped[_dt.datetime] = mapped_column(SafeDateTime)
    status: Mapped[str] = mapped_column(String(32))


class TrialModel(Base):
    """One configuration trained (or imported); ``value`` is the primary objective's final value."""

    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number"),
        Index(None, "study_id", "state"),
        CheckConstraint(_one_of("state", TRIAL_STATES), name="ck_trials_state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(_parent("studies.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    # "group" is an SQL keyword; the column is group_name so plain SQL needs no quoting.
    group_name: Mapped[str | None] = mapped_column(String(512))
    config: Mapped[Any] = mapped_column(SafeJSON)
    distributions: Mapped[Any] = mapped_column(SafeJSON)
    features: Mapped[Any | None] = mapped_column(SafeJSON)
    value: Mapped[float | None] = mapped_column(SafeFloat)
    epochs: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    node: Mapped[str | None] = mapped_column(String(512))
    # where the worker trained it (revision 0006): "cpu", or "cuda:0 <GPU name>"; torch threads
    device: Mapped[str | None] = mapped_column(String(256))
    threads: Mapped[int | None] = mapped_column(Integer)
    started: Mapped[_dt.datetime | None] = mapped_column(SafeDateTime)
    finished: Mapped[_dt.datetime | None] = mapped_column(SafeDateTime)


class TrialValueModel(Base):
    """Every objective's final value (multi-objective studies); objective = index in the study."""

    __tablename__ = "trial_values"
    __table_args__ = (UniqueConstraint("trial_id", "objective"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(_parent("trials.id"), index=True)
    objective: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(SafeFloat)


class CurvePointModel(Base):
    """One reported value of the primary objective; step is the epoch (1-based); NULL = missing.

    The primary key (trial_id, step) is the unique constraint and the index on the foreign key.
    """

    __tablename__ = "curve_points"
    trial_id: Mapped[int] = mapped_column(_parent("trials.id"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[float | None] = mapped_column(SafeFloat)
    wall_time: Mapped[float | None] = mapped_column(SafeFloat)


class ForecastModel(Base):
    """A predictor's forecast of the value at step ``horizon``, made after ``step``."""

    __tablename__ = "forecasts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(_parent("trials.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    predictor: Mapped[str] = mapped_column(String(256))
    horizon: Mapped[int] = mapped_column(Integer)
    mean: Mapped[float | None] = mapped_column(SafeFloat)
    q05: Mapped[float | None] = mapped_column(SafeFloat)
    q50: Mapped[float | None] = mapped_column(SafeFloat)
    q95: Mapped[float | None] = mapped_column(SafeFloat)
    p_improve: Mapped[float | None] = mapped_column(SafeFloat)
    created: Mapped[_dt.datetime] = mapped_column(SafeDateTime)


class DecisionModel(Base):
    """A stopping policy's decision after ``step``: action CONTINUE, STOP or AUDIT (a stop the
    audit overrode: the trial runs on to show whether the stop was right), and why; threshold:
    the raw value the forecast had to clear (predictive policies)."""

    __tablename__ = "decisions"
    __table_args__ = (CheckConstraint(_one_of("action", ACTIONS), name="ck_decisions_action"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(_parent("trials.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    policy: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    created: Mapped[_dt.datetime] = mapped_column(SafeDateTime)
    threshold: Mapped[float | None] = mapped_column(SafeFloat)


class EvaluationModel(Base):
    """A study's final evaluation (``nas evaluate``): its top configurations retrained with
    ``seeds`` seeds and scored once on the test split; ``results`` holds one entry per
    configuration (rank, number, val_value, metric, mean, std, runs, dir).  One per study:
    evaluating again replaces it."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(_parent("studies.id"), unique=True)
    metric: Mapped[str] = mapped_column(String(256))
    seeds: Mapped[int] = mapped_column(Integer)
    top: Mapped[int] = mapped_column(Integer)
    results: Mapped[Any] = mapped_column(SafeJSON)
    wall_s: Mapped[float | None] = mapped_column(SafeFloat)
    created: Mapped[_dt.datetime] = mapped_column(SafeDateTime)


class StudyLeaseModel(Base):
    """Which ``nas run`` driver works on a study now (at most one per study): ``token`` is that
    run's random id; ``owner`` the user, ``host``, ``pid`` (as the driver's PID namespace sees
    it), ``pid_ns`` (that namespace's inode), ``boot_id`` and ``proc_start`` (the process's
    start time, in clock ticks since boot) identify the process; the driver refreshes
    ``heartbeat`` every few seconds and deletes the row when it ends."""

    __tablename__ = "study_leases"
    study_id: Mapped[int] = mapped_column(_parent("studies.id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(256))
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    pid_ns: Mapped[str] = mapped_column(String(64))
    boot_id: Mapped[str] = mapped_column(String(64))
    proc_start: Mapped[str] = mapped_column(String(32))
    acquired: Mapped[_dt.datetime] = mapped_column(SafeDateTime)
    heartbeat: Mapped[_dt.datetime] = mapped_column(SafeDateTime)


# The Core tables, for the query and write modules.
STUDIES = cast(Table, StudyModel.__table__)
TRIALS = cast(Table, TrialModel.__table__)
TRIAL_VALUES = cast(Table, TrialValueModel.__table__)
CURVE_POINTS = cast(Table, CurvePointModel.__table__)
FORECASTS = cast(Table, ForecastModel.__table__)
DECISIONS = cast(Table, DecisionModel.__table__)
EVALUATIONS = cast(Table, EvaluationModel.__table__)
STUDY_LEASES = cast(Table, StudyLeaseModel.__table__)
