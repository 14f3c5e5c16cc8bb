"""One driver per study: the ``study_leases`` table.

A ``nas run`` driver holds a lease on its study (one row per study: its token, user, host, PID,
PID namespace, boot id, process start time, and a heartbeat it refreshes); a second driver,
``--resume`` or ``nas delete`` of a leased study is refused.  The downgrade drops the table.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study_leases",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_ns", sa.String(64), nullable=False),
        sa.Column("boot_id", sa.String(64), nullable=False),
        sa.Column("proc_start", sa.String(32), nullable=False),
        sa.Column("acquired", sa.DateTime(), nullable=False),
        sa.Column("heartbeat", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", name="pk_study_leases"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name="fk_study_leases_study_id_studies"),
    )


def downgrade() -> None:
    op.drop_table("study_leases")
