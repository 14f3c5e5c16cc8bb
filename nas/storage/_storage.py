"""The facade of the study database: :class:`Storage`, the one class users and the engine see.

A :class:`Storage` is built by composition from focused parts, each over the same
:class:`~nas.storage._base.Database` (the pool, transactions and error translation):
``reads`` (:class:`~nas.storage._query.Queries`), ``writes``
(:class:`~nas.storage._write.Writes`) and ``leases`` (:class:`~nas.storage._lease.Leases`).
Its public methods are those of the parts (forwarded, with their signatures), plus the schema
operations of ``nas db``.  :meth:`Storage.open` is the one way the code base opens the study
database from a URL that the user gave (or did not give).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from sqlalchemy.engine import Connection, Engine
from typing_extensions import Self

from nas.storage._base import Database
from nas.storage._lease import Leases
from nas.storage._query import Queries
from nas.storage._schema import SchemaInfo, schema_info, upgrade
from nas.storage._url import require_existing, resolve_url
from nas.storage._write import Writes

__all__ = ["Storage"]

_Part = TypeVar("_Part")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Forward(Generic[_Part, _P, _R]):
    """A method of :class:`Storage` that is the method of one of its parts (same signature,
    same docstring)."""

    def __init__(self, part: str, method: Callable[Concatenate[_Part, _P], _R]) -> None:
        self.part = part
        self.name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...

    @overload
    def __get__(self, obj: object, owner: type) -> Callable[_P, _R]: ...

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), self.name)


class Storage:
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

    :meth:`open` resolves the URL (``--storage`` > ``$NAS_STORAGE`` > the study file >
    ``sqlite:///nas.db``) and opens it as a command needs it; the constructor takes a URL as
    it is.
    """

    def __init__(self, url: str, *, check_schema: bool = True, read_only: bool = False,
                 create: bool | None = None, wait_ms: int | None = None) -> None:
        self.db = Database(url, check_schema=check_schema, read_only=read_only, create=create,
                           wait_ms=wait_ms)
        self.url = self.db.url
        self.masked_url = self.db.masked_url
        self.dialect = self.db.dialect
        self.read_only = self.db.read_only
        self.reads = Queries(self.db)
        self.leases = Leases(self.db)
        self.writes = Writes(self.db, self.reads, self.leases)

    @classmethod
    def open(cls, url: str | None = None, *, file_url: str | None = None, create: bool = False,
             write: bool = False, check_schema: bool = True,
             wait_ms: int | None = None) -> Storage:
        """The study database that ``url`` (``--storage``), else ``$NAS_STORAGE``, else
        ``file_url`` (the study file's ``storage``), else ``sqlite:///nas.db`` names.

        ``create``: the database and its schema may be created (``nas run``, ``nas import``,
        ``nas db upgrade``, :func:`nas.open_study`).  Otherwise a SQLite file that is not
        there is refused ("no database here") and nothing is created: the database opens
        read-only (``mode=ro`` / read-only sessions; an empty one is "not a nas database"),
        or, with ``write`` (``nas delete``, ``nas evaluate``), for writing once a read-only
        look has found a nas database in it."""
        resolved = resolve_url(url, file_url)
        if not create:
            require_existing(resolved)
        if write and check_schema and not create:  # an empty or foreign database: refused
            cls(resolved, read_only=True, wait_ms=wait_ms).close()  # before any write
        return cls(resolved, check_schema=check_schema, read_only=not (create or write),
                   create=create, wait_ms=wait_ms)

    # ------------------------------------------------------------------ the connection
    @property
    def engine(self) -> Engine:
        return self.db.engine

    def close(self) -> None:
        """Release pooled connections (the object stays usable: the pool reconnects)."""
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.masked_url!r})"

    transaction = _Forward("db", Database.transaction)
    batch = _Forward("db", Database.batch)

    @contextmanager
    def read(self, action: str) -> Iterator[Connection]:
        """One connection for reads, database errors translated (the dashboard's queries)."""
        with self.db.read(action) as conn:
            yield conn

    # ------------------------------------------------------------------ reads
    get_study = _Forward("reads", Queries.get_study)
    get_study_by_id = _Forward("reads", Queries.get_study_by_id)
    study_names = _Forward("reads", Queries.study_names)
    studies = _Forward("reads", Queries.studies)
    study_summaries = _Forward("reads", Queries.study_summaries)
    study_evaluation = _Forward("reads", Queries.study_evaluation)
    trials = _Forward("reads", Queries.trials)
    trial_rows = _Forward("reads", Queries.trial_rows)
    next_number = _Forward("reads", Queries.next_number)
    trial_id = _Forward("reads", Queries.trial_id)
    trial_by_number = _Forward("reads", Queries.trial_by_number)
    trial_detail = _Forward("reads", Queries.trial_detail)
    curve = _Forward("reads", Queries.curve)
    curve_points = _Forward("reads", Queries.curve_points)
    forecasts = _Forward("reads", Queries.forecasts)
    decisions = _Forward("reads", Queries.decisions)
    stops = _Forward("reads", Queries.stops)
    audit_records = _Forward("reads", Queries.audit_records)

    def audits(self, study_id: int) -> dict[int, tuple[int, str]]:
        """The stop audit's trials by number: the step of the AUDIT decision and its verdict
        (:func:`nas.policies.audit_verdicts`)."""
        from nas.policies import audit_verdicts

        return audit_verdicts(self.reads.audit_records(study_id))

    def false_stops(self, study_id: int) -> dict[str, Any]:
        """The study's measured false-stop rate (:func:`nas.policies.audit_false_stops`)."""
        from nas.policies import audit_false_stops

        return audit_false_stops(self.reads.audit_records(study_id))

    # ------------------------------------------------------------------ writes
    create_study = _Forward("writes", Writes.create_study)
    set_study_status = _Forward("writes", Writes.set_study_status)
    delete_study = _Forward("writes", Writes.delete_study)
    set_study_evaluation = _Forward("writes", Writes.set_study_evaluation)
    create_trial = _Forward("writes", Writes.create_trial)
    add_points = _Forward("writes", Writes.add_points)
    add_forecast = _Forward("writes", Writes.add_forecast)
    add_decision = _Forward("writes", Writes.add_decision)
    record_step = _Forward("writes", Writes.record_step)
    record_steps = _Forward("writes", Writes.record_steps)
    set_trial_node = _Forward("writes", Writes.set_trial_node)
    finish_trial = _Forward("writes", Writes.finish_trial)
    mark_interrupted = _Forward("writes", Writes.mark_interrupted)
    import_study = _Forward("writes", Writes.import_study)

    # ------------------------------------------------------------------ the study lease
    study_lease = _Forward("leases", Leases.study_lease)
    check_not_leased = _Forward("leases", Leases.check_not_leased)
    acquire_lease = _Forward("leases", Leases.acquire_lease)
    heartbeat_lease = _Forward("leases", Leases.heartbeat_lease)
    release_lease = _Forward("leases", Leases.release_lease)

    # ------------------------------------------------------------------ the schema
    def schema_info(self) -> SchemaInfo:
        """The database's schema revision, its state against this nas, and row counts."""
        with self.db.read("reading the schema") as conn:
            return schema_info(conn)

    def upgrade_schema(self) -> tuple[str | None, str]:
        """Bring the database to the head revision (``nas db upgrade``), keeping its data;
        returns ``(revision before, revision after)``.  A new database is created by the
        migrations; one newer than this nas is refused."""
        with self.db.translate("upgrading the schema"):
            return upgrade(self.db.engine, self.masked_url)
