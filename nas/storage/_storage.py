"""The facade of the study database: :class:`Storage`, the one class users and the engine see.

:class:`Storage` is what the engine uses: the runner's driver process creates one per study
and calls the write methods (``_write``) from Tune's callback/scheduler hooks; the query CLI,
the dashboard and :func:`nas.storage.open_study` use the read methods (``_query``,
``_dashboard``).  The plumbing (pool, transactions, error translation) is ``_base``; this
module adds the schema operations of ``nas db``.
"""

from __future__ import annotations

from nas.storage._dashboard import DashboardReads
from nas.storage._schema import SchemaInfo, schema_info, upgrade
from nas.storage._write import StorageWrites

__all__ = ["Storage"]


class Storage(StorageWrites, DashboardReads):
    """A connection to one study database (any SQLAlchemy URL).

    Opening a new (empty) database creates the schema at the head revision; a database at an
    older revision is refused with a message telling to run ``nas db upgrade``; one newer than
    this code is refused (``check_schema=False`` skips the check: ``nas db info|upgrade``).
    ``read_only=True`` (the query commands, the dashboard) opens it without writing anything:
    SQLite with ``mode=ro`` and its journal mode left alone, PostgreSQL in read-only sessions;
    an empty database is then refused ("not a nas database"), as with ``create=False``.
    ``wait_ms`` bounds how long a statement waits for a lock (SQLite busy timeout,
    PostgreSQL ``lock_timeout``).
    ``url`` is what was given, ``masked_url`` the same with the password replaced by ``***``
    (use it in messages).  Thread-safe: every call opens its own connection and transaction.
    """

    def schema_info(self) -> SchemaInfo:
        """The database's schema revision, its state against this nas, and row counts."""
        with self._read("reading the schema") as conn:
            return schema_info(conn)

    def upgrade_schema(self) -> tuple[str | None, str]:
        """Bring the database to the head revision (``nas db upgrade``), keeping its data;
        returns ``(revision before, revision after)``.  A new database is created by the
        migrations; one newer than this nas is refused."""
        with self._translate("upgrading the schema"):
            return upgrade(self.engine, self.masked_url)
