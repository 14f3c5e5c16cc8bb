"""Leftovers of an embedded Ray whose driver was SIGKILLed, found and stopped by the next run.

``nas run`` starts its embedded Ray in a temp dir of its own (``nas-ray-*``) and writes there
who owns it (:func:`record_owner`: the driver's PID, its start time, its PID namespace and
the boot id), and the driver holds an exclusive ``flock`` on that file for as long as it runs.
A driver that ends normally shuts Ray down and removes the dir.  After a SIGKILL some Ray
processes (the DashboardAgent and RuntimeEnvAgent, which outlive their raylet) keep running and
the dir stays.  Before it starts Ray, the next ``nas run`` calls :func:`reap_orphans`: for every
such dir whose driver is *proven* gone, it stops (SIGTERM, then SIGKILL) the processes of the
same user that name the dir on their command line or hold a file open under it, and removes the
dir.  Proven gone means all of: nobody holds the lock (the kernel drops it when the driver
dies, whatever its namespace), the file was written in this boot and in this PID namespace
(a PID read from another namespace means nothing here), and that PID is not running with the
recorded start time.  Anything else is left alone.  Only Linux (``/proc``); elsewhere nothing
is done.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from nas._proc import boot_id, pid_namespace, proven_dead, start_time

logger = logging.getLogger(__name__)

__all__ = ["OWNER_FILE", "PREFIX", "instance_pids", "reap_orphans", "record_owner",
           "release_owner"]

PREFIX = "nas-ray-"
OWNER_FILE = "nas-driver"


#: The lock files this process holds, by temp dir (closed by :func:`release_owner`).
_HELD: dict[str, int] = {}


def record_owner(temp_dir: str) -> None:
    """Write the driver (this process) into ``temp_dir`` and hold a lock on that file until
    :func:`release_owner` (or this process's death: the kernel drops the lock)."""
    path = Path(temp_dir, OWNER_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)  # not inherited by Ray
    fcntl.flock(fd, fcntl.LOCK_EX)  # before the content: a reader sees a locked file first
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {start_time(os.getpid())} {pid_namespace()} {boot_id()}\n"
             .encode())
    _HELD[str(temp_dir)] = fd


def release_owner(temp_dir: str) -> None:
    """Drop the lock that :func:`record_owner` took on ``temp_dir`` (after Ray's shutdown)."""
    fd = _HELD.pop(str(temp_dir), None)
    if fd is not None:
        os.close(fd)


def _locked(path: Path) -> bool | None:
    """Whether a live process holds the lock on ``path``; None when it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False


def _owner_dead(d: Path) -> bool:
    """Whether the driver recorded in ``d`` is proven gone (see the module docstring)."""
    path = Path(d, OWNER_FILE)
    try:
        pid_s, start, ns, boot = path.read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):  # no owner, or one written by an older nas: not ours to judge
        return False
    if str(d) in _HELD or _locked(path) is not False:
        return False
    return proven_dead(pid, start, ns, boot)


def instance_pids(temp_dir: str | Path) -> list[int]:
    """PIDs of this user's processes that belong to the Ray instance of ``temp_dir``."""
    key = str(temp_dir).rstrip("/") + "/"
    uid, me, out = os.getuid(), os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            hit = key in cmd + " "
            if not hit:
                for fd in (entry / "fd").iterdir():
                    try:
                        if os.readlink(fd).startswith(key):
                            hit = True
                            break
                    except OSError:
                        continue
        except OSError:
            continue
        if hit:
            out.append(int(entry.name))
    return sorted(out)


def _stop(pids: list[int], timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for p in pids if start_time(p) is not None and not _zombie(p)]
            if not pids:
                return
            time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def reap_orphans(base: str | Path) -> int:
    """Stop the leftovers of every earlier embedded Ray under ``base`` whose driver is gone and
    remove their temp dirs; returns how many processes were stopped."""
    if not Path("/proc/self/stat").exists():
        return 0
    stopped = 0
    for d in sorted(Path(base).glob(PREFIX + "*")):
        try:
            if not d.is_dir() or d.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _owner_dead(d):  # running, or not provably dead from here
            continue
        pids = instance_pids(d)
        if pids:
            logger.warning("stopping %d process(es) left by the embedded Ray of a killed nas "
                           "driver (%s)", len(pids), d)
            _stop(pids)
            stopped += len(pids)
        shutil.rmtree(d, ignore_errors=True)
    return stopped
