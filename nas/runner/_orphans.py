"""Leftovers of an embedded Ray whose driver was SIGKILLed, found and stopped by the next run.

``nas run`` starts its embedded Ray in a temp dir of its own (``nas-ray-*``) and writes there
who owns it (:func:`record_owner`: the driver's PID and start time).  A driver that ends
normally shuts Ray down and removes the dir.  After a SIGKILL some Ray processes (the
DashboardAgent and RuntimeEnvAgent, which outlive their raylet) keep running and the dir stays.
Before it starts Ray, the next ``nas run`` calls :func:`reap_orphans`: for every such dir whose
recorded driver is gone, it stops (SIGTERM, then SIGKILL) the processes of the same user that
name the dir on their command line or hold a file open under it, and removes the dir.  Only
Linux (``/proc``); elsewhere nothing is done.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["OWNER_FILE", "PREFIX", "instance_pids", "reap_orphans", "record_owner"]

PREFIX = "nas-ray-"
OWNER_FILE = "nas-driver"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), which tells a reused PID apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def record_owner(temp_dir: str) -> None:
    """Write the driver (this process) into ``temp_dir``."""
    Path(temp_dir, OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")


def _owner_alive(d: Path) -> bool | None:
    """Whether the driver recorded in ``d`` still runs; None when ``d`` records none."""
    try:
        pid_s, start = Path(d, OWNER_FILE).read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    return _start_time(pid) == start


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
            pids = [p for p in pids if _start_time(p) is not None and not _zombie(p)]
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
        if _owner_alive(d) is not False:  # running, or not ours to judge
            continue
        pids = instance_pids(d)
        if pids:
            logger.warning("stopping %d process(es) left by the embedded Ray of a killed nas "
                           "driver (%s)", len(pids), d)
            _stop(pids)
            stopped += len(pids)
        shutil.rmtree(d, ignore_errors=True)
    return stopped
