"""Schema versions: create a new database at the head revision, refuse old or newer ones,
and upgrade old ones with the Alembic migrations shipped in ``nas/storage/migrations``.

:class:`nas.storage.Storage` calls :func:`ensure_schema` once when it connects.  Checking the
revision reads ``alembic_version`` directly, so opening a database never imports Alembic; only
``nas db upgrade`` (:func:`upgrade`) does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, func, inspect, select
from sqlalchemy.engine import Connection, Engine

from nas.errors import StorageError
from nas.storage._models import Base

__all__ = ["HEAD", "REVISIONS", "SchemaInfo", "SchemaState", "ensure_schema", "schema_info",
           "schema_state", "upgrade"]

log = logging.getLogger(__name__)

#: Every migration in order; the last one is the revision this code writes and reads.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007")
HEAD = REVISIONS[-1]

_VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), primary_key=True),
)


class SchemaState:
    """What a database holds: ``revision`` (None when there is no ``alembic_version``), whether
    it has any of our tables, and the names of the tables that are not ours (``foreign``)."""

    def __init__(self, revision: str | None, has_tables: bool,
                 foreign: tuple[str, ...] = ()) -> None:
        self.revision = revision
        self.has_tables = has_tables
        self.foreign = foreign

    @property
    def empty(self) -> bool:
        """No tables at all: the only kind of database nas creates its schema in."""
        return self.revision is None and not self.has_tables and not self.foreign


def schema_state(conn: Connection) -> SchemaState:
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    revision = None
    if "alembic_version" in tables:
        revs = list(conn.execute(select(_VERSION_TABLE.c.version_num)).scalars())
        revision = revs[0] if revs else None
    ours = tables & set(Base.metadata.tables)
    foreign = tuple(sorted(tables - set(Base.metadata.tables) - {"alembic_version"}))
    return SchemaState(revision, bool(ours), foreign)


@dataclass(frozen=True)
class SchemaInfo:
    """What ``nas db info`` shows of a database: its ``revision`` (None: no nas schema), the
    ``head`` revision of this nas, ``state`` -- ``"empty"`` (created on first use), ``"ok"``
    (at head), ``"old"`` (run ``nas db upgrade``), ``"newer"`` (than this nas) or
    ``"foreign"`` (tables, but not a nas schema) -- and the row count of each nas table
    (None unless at head)."""

    revision: str | None
    head: str
    state: str
    counts: dict[str, int | None]


def schema_info(conn: Connection) -> SchemaInfo:
    """The :class:`SchemaInfo` of the database behind ``conn`` (reads only)."""
    state = schema_state(conn)
    counts: dict[str, int | None] = {}
    for name, table in Base.metadata.tables.items():
        counts[name] = None
        if state.revision == HEAD:
            counts[name] = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    if state.empty:
        kind = "empty"
    elif state.revision == HEAD:
        kind = "ok"
    elif state.revision in REVISIONS:
        kind = "old"
    elif state.revision is None:
        kind = "foreign"
    else:
        kind = "newer"
    return SchemaInfo(state.revision, HEAD, kind, counts)


def _foreign_message(state: SchemaState, masked_url: str) -> str:
    shown = ", ".join(state.foreign[:10]) + (" ..." if len(state.foreign) > 10 else "")
    return (f"{masked_url}: not a nas study database (it holds the table(s) {shown} and no nas "
            "schema); nas creates its tables only in a new or empty database: give another "
            "--storage")


def _check(state: SchemaState, masked_url: str) -> None:
    if state.revision == HEAD:
        return
    if state.revision is None and state.foreign:
        raise StorageError(_foreign_message(state, masked_url))
    if state.revision is None:
        raise StorageError(
            f"{masked_url}: holds tables but no nas schema revision (alembic_version); it is "
            "not a nas study database, or was created by something else"
        )
    if state.revision in REVISIONS:
        raise StorageError(
            f"{masked_url}: database schema revision {state.revision} is older than this nas "
            f"(revision {HEAD}); run `nas db upgrade --storage URL` first"
        )
    raise StorageError(
        f"{masked_url}: database schema revision {state.revision} is newer than this nas; "
        f"upgrade nas (this one knows revisions up to {HEAD})"
    )


def create_at_head(conn: Connection) -> None:
    """Create every table and stamp the head revision (what ``alembic upgrade head`` builds)."""
    Base.metadata.create_all(conn)
    _VERSION_TABLE.create(conn, checkfirst=True)
    conn.execute(_VERSION_TABLE.delete())
    conn.execute(_VERSION_TABLE.insert().values(version_num=HEAD))


def ensure_schema(engine: Engine, masked_url: str, *, create: bool = True) -> None:
    """Create a new (empty) database at head; accept one at head; refuse anything else.
    ``create=False`` (read-only opens): an empty database is refused too, and nothing is
    written."""
    from sqlalchemy.exc import SQLAlchemyError

    with engine.connect() as conn:  # the common case, without taking a write lock
        state = schema_state(conn)
    if state.revision == HEAD:
        return
    if not create:
        if state.empty:
            raise StorageError(f"{masked_url}: not a nas database (it is empty: no nas "
                               "tables); `nas run`, `nas import` or `nas db upgrade` create "
                               "one")
        _check(state, masked_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                # pysqlite runs DDL outside transactions unless one is opened explicitly: without
                # this, another process could see the tables before the revision stamp (and
                # two creators would race).  IMMEDIATE: the second creator waits, then sees head.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            state = schema_state(conn)
            if state.empty:
                log.info("creating the nas schema (revision %s) in %s", HEAD, masked_url)
                create_at_head(conn)
                return
    except SQLAlchemyError:
        # Another process may have created the schema at the same moment: look again.
        with engine.connect() as conn:
            state = schema_state(conn)
        if state.revision is None:
            raise
    _check(state, masked_url)


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "nas.storage:migrations")
    cfg.attributes["connection"] = conn
    return cfg


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction for the migrations.  On SQLite its foreign keys are off
    while they run (SQLite ignores the pragma inside a transaction, so it is set before): the
    batch migrations recreate tables, and dropping a parent table with them on would fail, or
    cascade into its children.  Before the commit every foreign key is checked."""
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            conn.commit()
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if bad is not None:
                        raise StorageError(f"the migrated database breaks a foreign key: table "
                                           f"{bad[0]}, row {bad[1]} refers to a missing "
                                           f"{bad[2]} row")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                conn.commit()


def upgrade(engine: Engine, masked_url: str) -> tuple[str | None, str]:
    """Bring the database to the head revision (``nas db upgrade``); returns (before, after).

    A new database is created by the migrations themselves; a newer one is refused.
    """
    from alembic import command

    with _migrating(engine) as conn:
        state = schema_state(conn)
        before = state.revision
        if before is not None and before not in REVISIONS:
            _check(state, masked_url)
        if before is None and (state.has_tables or state.foreign):
            _check(state, masked_url)
        if before != HEAD:
            log.info("upgrading %s from %s to %s", masked_url, before or "empty", HEAD)
            command.upgrade(_alembic_config(conn), HEAD)
    return before, HEAD


def migrate_to(engine: Engine, revision: str) -> None:
    """Run the migrations up to ``revision`` only (tests build old databases with this)."""
    from alembic import command

    with _migrating(engine) as conn:
        command.upgrade(_alembic_config(conn), revision)
