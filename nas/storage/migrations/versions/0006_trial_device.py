"""Where a trial ran: ``trials.device`` and ``trials.threads``.

The worker reports, with its first result, the device it trained on (``cpu``, or ``cuda`` with
the GPU's name, e.g. ``cuda:0 NVIDIA H100``) and the number of torch threads it used; the
driver stores them next to ``node``.  Both columns are nullable: trials of older databases and
imported curves have neither.  The downgrade drops them.

Revision ID: 0006
Revises: 0005
Create Date: 2027-02-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("device", sa.String(256), nullable=True))
        batch.add_column(sa.Column("threads", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("threads")
        batch.drop_column("device")
