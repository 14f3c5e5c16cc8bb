"""Early-stopping records: forecasts and decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("predictor", sa.String(256), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("q05", sa.Float(), nullable=True),
        sa.Column("q50", sa.Float(), nullable=True),
        sa.Column("q95", sa.Float(), nullable=True),
        sa.Column("p_improve", sa.Float(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_forecasts"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_forecasts_trial_id_trials"),
    )
    op.create_index("ix_forecasts_trial_id", "forecasts", ["trial_id"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(256), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_decisions_trial_id_trials"),
    )
    op.create_index("ix_decisions_trial_id", "decisions", ["trial_id"])


def downgrade() -> None:
    op.drop_index("ix_decisions_trial_id", table_name="decisions")
    op.drop_table("decisions")
    op.drop_index("ix_forecasts_trial_id", table_name="forecasts")
    op.drop_table("forecasts")
