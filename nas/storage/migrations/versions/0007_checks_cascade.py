"""The vocabulary in the schema: CHECK constraints and ON DELETE CASCADE.

``studies.status``, ``trials.state`` and ``decisions.action`` may hold only the values of
:class:`nas.interfaces.StudyStatus`, :class:`~nas.interfaces.TrialState` and
:class:`~nas.interfaces.Action` (CHECK constraints ``ck_studies_status``, ``ck_trials_state``,
``ck_decisions_action``), and every foreign key to ``studies`` or ``trials`` deletes with its
parent (``ON DELETE CASCADE``): deleting a study row deletes its trials, their values, points,
forecasts and decisions, its evaluation and its lease.  The rows are kept as they are.

SQLite recreates each table (Alembic's batch mode); :func:`nas.storage._schema.upgrade` runs
the migrations with SQLite's foreign keys off, so that dropping a parent table while it is
recreated neither fails nor cascades.  The downgrade restores the plain foreign keys and drops
the CHECK constraints.

The allowed values are written out here, as they were at this revision (a migration is a
record of the schema it builds; a later state needs a later migration); a test checks that a
database upgraded to head allows exactly the values of the enums.

Revision ID: 0007
Revises: 0006
Create Date: 2027-02-20
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: (table, CHECK name, column, allowed values)
CHECKS = (
    ("studies", "ck_studies_status", "status", ("RUNNING", "COMPLETE", "INTERRUPTED", "FAILED")),
    ("trials", "ck_trials_state", "state",
     ("RUNNING", "COMPLETE", "STOPPED", "FAILED", "INTERRUPTED")),
    ("decisions", "ck_decisions_action", "action", ("CONTINUE", "STOP", "AUDIT")),
)

#: (table, column, parent table): every foreign key, parents first
FOREIGN_KEYS = (
    ("trials", "study_id", "studies"),
    ("evaluations", "study_id", "studies"),
    ("study_leases", "study_id", "studies"),
    ("trial_values", "trial_id", "trials"),
    ("curve_points", "trial_id", "trials"),
    ("forecasts", "trial_id", "trials"),
    ("decisions", "trial_id", "trials"),
)

_TABLES = ("studies", "trials", "evaluations", "study_leases", "trial_values", "curve_points",
           "forecasts", "decisions")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _alter(*, cascade: bool, checks: bool) -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for child, column, parent in FOREIGN_KEYS:
                if child != table:
                    continue
                name = f"fk_{child}_{column}_{parent}"
                batch.drop_constraint(name, type_="foreignkey")
                batch.create_foreign_key(name, parent, [column], ["id"],
                                         ondelete="CASCADE" if cascade else None)
            for owner, name, column, values in CHECKS:
                if owner != table:
                    continue
                if checks:
                    batch.create_check_constraint(name, _in(column, values))
                else:
                    batch.drop_constraint(name, type_="check")


def upgrade() -> None:
    _alter(cascade=True, checks=True)


def downgrade() -> None:
    _alter(cascade=False, checks=False)
