"""One driver per study: the lease part of :class:`~nas.storage.Storage`.

A ``nas run`` driver takes the study's lease (a row of ``study_leases``) before it touches the
study's trials, refreshes its heartbeat every few seconds and deletes the row when it ends.
Another driver, ``--resume`` or ``nas delete`` is refused (:class:`~nas.errors.StudyLeasedError`,
one line naming the holder and the age of its heartbeat) while the lease is alive.  A lease is
taken over, with a warning in the log, when its holder is proven dead (same host, boot and PID
namespace, and no process with its PID and start time: a SIGKILLed driver is replaced at once)
or when its heartbeat is older than the timeout (a driver on another machine, or in another
container).  Taking over is a compare-and-swap on the old token, so of two drivers racing for a
stale lease exactly one wins, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from nas._proc import boot_id, pid_namespace, proven_dead, start_time
from nas.errors import StorageError, StudyLeasedError
from nas.storage._base import Database
from nas.storage._models import STUDY_LEASES as _L
from nas.storage._models import utcnow

__all__ = ["DEFAULT_LEASE_TIMEOUT_S", "LEASE_TIMEOUT_ENV", "LeaseHolder", "LeaseRecord",
           "Leases", "lease_timeout_s"]

#: A lease whose heartbeat is older than this (seconds) is taken over.  It must outlast the
#: writer's retry window (a driver riding out a database outage cannot beat its heart).
DEFAULT_LEASE_TIMEOUT_S = 120.0
LEASE_TIMEOUT_ENV = "NAS_LEASE_TIMEOUT_S"


def lease_timeout_s() -> float:
    """The lease timeout: ``NAS_LEASE_TIMEOUT_S`` when set to a positive number, else 120 s."""
    try:
        v = float(os.environ.get(LEASE_TIMEOUT_ENV, ""))
    except ValueError:
        return DEFAULT_LEASE_TIMEOUT_S
    return v if v > 0 else DEFAULT_LEASE_TIMEOUT_S


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return str(os.getuid())


@dataclass(frozen=True)
class LeaseHolder:
    """A driver process, as a lease row records it."""

    token: str
    owner: str
    host: str
    pid: int
    pid_ns: str
    boot_id: str
    proc_start: str

    @classmethod
    def this_process(cls) -> LeaseHolder:
        pid = os.getpid()
        return cls(uuid.uuid4().hex, _user()[:256], socket.gethostname()[:256], pid,
                   pid_namespace(), boot_id(), start_time(pid) or "")

    def describe(self) -> str:
        return f"{self.owner}@{self.host} PID {self.pid}"


@dataclass(frozen=True)
class LeaseRecord:
    """A lease row: its holder, when it was taken, its last heartbeat."""

    holder: LeaseHolder
    acquired: _dt.datetime
    heartbeat: _dt.datetime

    @property
    def age_s(self) -> float:
        """Seconds since the last heartbeat (by this machine's clock)."""
        return max(0.0, (utcnow() - self.heartbeat).total_seconds())

    def dead(self) -> bool:
        """The holder is proven gone (same host, boot and PID namespace as this process)."""
        h = self.holder
        return h.host == socket.gethostname()[:256] and \
            proven_dead(h.pid, h.proc_start, h.pid_ns, h.boot_id)

    def stale(self, timeout_s: float) -> bool:
        return self.dead() or self.age_s > timeout_s


def _record(row: object) -> LeaseRecord:
    r = row._mapping  # type: ignore[attr-defined]
    return LeaseRecord(LeaseHolder(r["token"], r["owner"], r["host"], int(r["pid"]), r["pid_ns"],
                                   r["boot_id"], r["proc_start"]), r["acquired"], r["heartbeat"])


class Leases:
    """The lease of a study (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def study_lease(self, study_id: int) -> LeaseRecord | None:
        """The study's lease row, or None."""
        with self.db.read("reading the study lease") as conn:
            row = conn.execute(select(_L).where(_L.c.study_id == study_id)).first()
        return None if row is None else _record(row)

    def _refusal(self, name: str, rec: LeaseRecord, action: str) -> StudyLeasedError:
        return StudyLeasedError(
            f"{action} refused: study {name!r} is in use by a running nas driver "
            f"({rec.holder.describe()}, last heartbeat {rec.age_s:.0f} s ago); wait for it to "
            f"end or stop it (a lease whose heartbeat is older than {lease_timeout_s():.0f} s is "
            "taken over)")

    def check_not_leased(self, study_id: int, name: str, action: str) -> None:
        """Raise :class:`StudyLeasedError` when a live driver holds the study's lease."""
        rec = self.study_lease(study_id)
        if rec is not None and not rec.stale(lease_timeout_s()):
            raise self._refusal(name, rec, action)

    def acquire_lease(self, study_id: int, name: str, holder: LeaseHolder, *,
                      action: str = "nas run") -> LeaseRecord | None:
        """Take the study's lease for ``holder``; returns the lease it took over (stale or
        of a dead driver), or None when there was none.  A live lease raises
        :class:`StudyLeasedError`."""
        timeout = lease_timeout_s()
        for _ in range(5):  # a racer inserted or took over between our read and write: re-read
            rec = self.study_lease(study_id)
            now = utcnow()
            values = {"token": holder.token, "owner": holder.owner, "host": holder.host,
                      "pid": holder.pid, "pid_ns": holder.pid_ns, "boot_id": holder.boot_id,
                      "proc_start": holder.proc_start, "acquired": now, "heartbeat": now}
            if rec is None:
                try:
                    with self.db.transaction("taking the study lease") as conn:
                        conn.execute(insert(_L).values(study_id=study_id, **values))
                    return None
                except StorageError as exc:
                    if isinstance(exc.__cause__, IntegrityError):
                        continue
                    raise
            if rec.holder.token == holder.token:
                return None
            if not rec.stale(timeout):
                raise self._refusal(name, rec, action)
            with self.db.transaction("taking over the study lease") as conn:
                n = conn.execute(update(_L).where(_L.c.study_id == study_id,
                                                  _L.c.token == rec.holder.token)
                                 .values(**values)).rowcount
            if n == 1:
                return rec
        raise StudyLeasedError(f"{action} refused: study {name!r}: other drivers keep taking "
                               "its lease; try again")

    def heartbeat_lease(self, study_id: int, token: str) -> bool:
        """Refresh the heartbeat of the lease ``token`` holds; False when it holds none (the
        lease was taken over, or deleted)."""
        with self.db.transaction("refreshing the study lease") as conn:
            return bool(conn.execute(update(_L).where(_L.c.study_id == study_id,
                                                      _L.c.token == token)
                                     .values(heartbeat=utcnow())).rowcount)

    def release_lease(self, study_id: int, token: str) -> None:
        """Delete the lease ``token`` holds (nothing when it holds none)."""
        with self.db.transaction("releasing the study lease") as conn:
            conn.execute(delete(_L).where(_L.c.study_id == study_id, _L.c.token == token))
