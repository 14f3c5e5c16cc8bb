"""The engine part of :class:`~nas.storage.Storage`: its pool, transactions and error translation.

:class:`Database` is what the other parts (reads, writes, leases) are built on.  Every call
opens its own connection from the pool and its own transaction, so a ``Storage`` is safe to
share between threads (processes each create their own); :meth:`Database.batch` makes the
writes of one thread one transaction.  Every database exception becomes a
:class:`~nas.errors.StorageError` naming the masked URL and the cause.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from nas.errors import NasError, StorageError
from nas.storage._engine import cause, make_engine
from nas.storage._schema import ensure_schema
from nas.storage._url import mask_url

__all__ = ["Database"]


class Database:
    """A connection pool to one study database, its schema checked (or created) on opening."""

    def __init__(self, url: str, *, check_schema: bool = True, read_only: bool = False,
                 create: bool | None = None, wait_ms: int | None = None) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        self.dialect = ""
        self.read_only = read_only
        self._engine = make_engine(url, read_only=read_only, wait_ms=wait_ms)
        self.dialect = self._engine.dialect.name
        self._local = threading.local()  # the connection of this thread's batch(), if any
        if check_schema:
            with self.translate("opening the database"):
                ensure_schema(self._engine, self.masked_url,
                              create=not read_only if create is None else create)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        """Release pooled connections (the object stays usable: the pool reconnects)."""
        self._engine.dispose()

    @contextmanager
    def translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except NasError:
            raise
        except (SQLAlchemyError, OSError, ImportError) as exc:
            raise StorageError(f"{action} failed on {self.masked_url}: {cause(exc)}") from exc

    @contextmanager
    def transaction(self, action: str) -> Iterator[Connection]:
        """One transaction (committed on success, rolled back on any error); inside
        :meth:`batch` (same thread), the batch's transaction."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with self.translate(action):
                yield conn
            return
        with self.translate(action), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def batch(self, action: str = "writing a batch") -> Iterator[None]:
        """Make every write method called in this thread inside the block part of ONE
        transaction: all of them are committed at the end, or none (any error rolls back the
        whole batch and propagates).  For writers that apply many small writes at once."""
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("Storage.batch() cannot be nested")
        with self.translate(action), self._engine.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def read(self, action: str) -> Iterator[Connection]:
        """One connection for reads (no transaction is committed); errors as :meth:`transaction`."""
        with self.translate(action), self._engine.connect() as conn:
            yield conn
