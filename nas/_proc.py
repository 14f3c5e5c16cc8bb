"""Who a process is, in terms that survive PID reuse and namespaces (Linux ``/proc``; elsewhere
every answer is "unknown", and nothing is ever judged dead on unknown evidence).

Used by the orphan clean-up of the embedded Ray (:mod:`nas.runner._orphans`) and by the study
lease (:mod:`nas.storage._lease`): a PID means something only in its own PID namespace and boot,
and only together with the process's start time.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["boot_id", "pid_namespace", "proven_dead", "start_time"]


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), which tells a reused PID apart;
    None when no such process is visible."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_namespace() -> str:
    """This process's PID namespace (the inode of ``/proc/self/ns/pid``); "" when unknown."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def boot_id() -> str:
    """This boot of the machine (``/proc/sys/kernel/random/boot_id``); "" when unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def proven_dead(pid: int, start: str, ns: str, boot: str) -> bool:
    """Whether process ``pid`` (started at ``start``, in PID namespace ``ns`` during boot
    ``boot``) is provably gone: same boot, same PID namespace as this process, and no process
    with that PID and start time.  Anything unknown or foreign is *not* proof."""
    if not ns or ns != pid_namespace() or not boot or boot != boot_id() or not start:
        return False
    if not Path("/proc/self/stat").exists():
        return False
    return start_time(pid) != start
