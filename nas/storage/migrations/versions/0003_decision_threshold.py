"""The stop audit: the value a decision's forecast had to clear.

``decisions.threshold`` (raw objective units, NULL for policies without one) is the line a
predictive STOP or AUDIT decision compared the forecast with (the study's best plus the regret
tolerance).  An audited trial (action ``AUDIT``: the policy would have stopped it, the audit
let it run on) whose final value beats it was a false stop.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("threshold")
