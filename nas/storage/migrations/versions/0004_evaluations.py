"""Final evaluations get their own table.

``evaluations`` holds a study's final evaluation (``nas evaluate``): metric, seeds, top,
results (one entry per retrained configuration) and wall time; one row per study.  Earlier
revisions kept the same document under the study's ``config["evaluation"]``: the upgrade moves
every such document into the table (and out of the config); the downgrade moves it back.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_studies = sa.table("studies", sa.column("id", sa.Integer()), sa.column("name", sa.String()),
                    sa.column("config", sa.JSON()))
_evaluations = sa.table(
    "evaluations", sa.column("study_id", sa.Integer()), sa.column("metric", sa.String()),
    sa.column("seeds", sa.Integer()), sa.column("top", sa.Integer()),
    sa.column("results", sa.JSON()), sa.column("wall_s", sa.Float()),
    sa.column("created", sa.DateTime()))


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(256), nullable=False),
        sa.Column("seeds", sa.Integer(), nullable=False),
        sa.Column("top", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name="fk_evaluations_study_id_studies"),
        sa.UniqueConstraint("study_id", name="uq_evaluations_study_id"),
    )
    conn = op.get_bind()
    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    for sid, config in conn.execute(sa.select(_studies.c.id, _studies.c.config)).all():
        doc = (config or {}).get("evaluation") if isinstance(config, dict) else None
        if not isinstance(doc, dict):
            continue
        results = doc.get("results")
        conn.execute(_evaluations.insert().values(
            study_id=sid, metric=str(doc.get("metric") or ""), seeds=_int(doc.get("seeds")),
            top=_int(doc.get("top")), results=results if isinstance(results, list) else [],
            wall_s=_float(doc.get("wall_s")), created=now))
        rest = {k: v for k, v in config.items() if k != "evaluation"}
        conn.execute(_studies.update().where(_studies.c.id == sid).values(config=rest))


def downgrade() -> None:
    conn = op.get_bind()
    q = (sa.select(_studies.c.id, _studies.c.name, _studies.c.config, _evaluations.c.metric,
                   _evaluations.c.seeds, _evaluations.c.top, _evaluations.c.results,
                   _evaluations.c.wall_s)
         .join(_evaluations, _evaluations.c.study_id == _studies.c.id))
    for sid, name, config, metric, seeds, top, results, wall_s in conn.execute(q).all():
        doc = {"study": name, "metric": metric, "seeds": seeds, "top": top,
               "results": results, "wall_s": wall_s}
        conn.execute(_studies.update().where(_studies.c.id == sid)
                     .values(config={**(config or {}), "evaluation": doc}))
    op.drop_table("evaluations")
