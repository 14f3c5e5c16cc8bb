"""Core tables: studies, trials, trial_values, curve_points.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("space", sa.String(512), nullable=False),
        sa.Column("task", sa.String(512), nullable=False),
        sa.Column("objectives", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_studies"),
        sa.UniqueConstraint("name", name="uq_studies_name"),
    )
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(512), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("distributions", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("epochs", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("node", sa.String(512), nullable=True),
        sa.Column("started", sa.DateTime(), nullable=True),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_trials_study_id_studies"),
        sa.UniqueConstraint("study_id", "number", name="uq_trials_study_id_number"),
    )
    op.create_index("ix_trials_study_id", "trials", ["study_id"])
    op.create_index("ix_trials_study_id_state", "trials", ["study_id", "state"])
    op.create_table(
        "trial_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("objective", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trial_values"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_trial_values_trial_id_trials"),
        sa.UniqueConstraint("trial_id", "objective", name="uq_trial_values_trial_id_objective"),
    )
    op.create_index("ix_trial_values_trial_id", "trial_values", ["trial_id"])
    op.create_table(
        "curve_points",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("wall_time", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("trial_id", "step", name="pk_curve_points"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_curve_points_trial_id_trials"),
    )


def downgrade() -> None:
    op.drop_table("curve_points")
    op.drop_index("ix_trial_values_trial_id", table_name="trial_values")
    op.drop_table("trial_values")
    op.drop_index("ix_trials_study_id_state", table_name="trials")
    op.drop_index("ix_trials_study_id", table_name="trials")
    op.drop_table("trials")
    op.drop_table("studies")
