"""Engines and value conversion for the study database.

:func:`make_engine` is called once per :class:`~nas.storage.Storage`: SQLite gets WAL mode, a
busy timeout and foreign keys on every new connection; other back ends get pre-ping (a
restarted server does not break a long study) and, for PostgreSQL, a connect timeout.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from nas.errors import StorageError
from nas.storage._url import mask_url, validate_url

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "cause", "finite", "make_engine", "transient"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


def finite(x: float | None) -> float | None:
    """None for None/NaN/inf, else the float (NaN and inf are stored as missing)."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        # WAL only in a new/empty file or a nas database: a file of someone else's tables is
        # left as it is (the schema check then refuses it).
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {row[0] for row in cur.fetchall()}
        if not tables or "alembic_version" in tables:
            cur.execute("PRAGMA journal_mode = WAL")  # in-memory databases answer 'memory'
        cur.execute("PRAGMA synchronous = NORMAL")
    finally:
        cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with a busy timeout; others as SQLAlchemy makes
    them, with pre-ping so that a restarted server does not break a long study.  A plain
    ``postgresql://`` URL uses psycopg 3 (the driver nas depends on)."""
    masked = mask_url(url)
    validate_url(url)
    try:
        if url.startswith("sqlite"):
            memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
            kwargs: dict[str, Any] = {
                "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                 "check_same_thread": False},
            }
            if memory:
                kwargs["poolclass"] = StaticPool
            engine = create_engine(url, **kwargs)
            event.listen(engine, "connect", _on_sqlite_connect)
        else:
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            if parsed.drivername in ("postgresql", "postgres"):
                # psycopg (3) is the driver nas installs; SQLAlchemy's default is psycopg2.
                parsed = parsed.set(drivername="postgresql+psycopg")
            url = parsed.render_as_string(hide_password=False)
            connect_args: dict[str, Any] = {}
            if url.startswith("postgresql"):
                connect_args["connect_timeout"] = 10
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"cannot use storage {masked}: {cause(exc)}") from exc
    return engine


def cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]


#: Words of an OperationalError that waiting will not cure (the schema, not the connection).
_PERMANENT = ("no such table", "no such column", "does not exist", "syntax error", "readonly",
              "read-only", "permission denied")


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a lost or refused database connection,
    a server shutting down or a busy SQLite file: worth trying again after a pause.  Integrity
    errors, schema errors and bad values are not."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, DBAPIError):
            if e.connection_invalidated:
                return True
            if isinstance(e, (OperationalError, InterfaceError)):
                text = str(e.orig).lower()
                return not any(w in text for w in _PERMANENT)
            return False
        e = e.__cause__ or e.__context__
    return False
