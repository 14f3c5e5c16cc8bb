"""Fixtures shared by the nas tests.

``ray_runtime`` is the ONE Ray runtime of the test session (session-scoped, started on first
use): 2 CPUs, a ~100 MB object store, no dashboard, its temp dir under a short /tmp path (Ray's
unix sockets must fit the path limit).  It is shut down at the end of the session, which stops
the processes it started.  Run the tests that use it inside a private network namespace
(``unshare -n bash .ci/in-netns.sh ...``) with RAY_AUTH_MODE=disabled and
RAY_USAGE_STATS_ENABLED=0, as ``make test`` does.

``postgres_url`` is the throwaway PostgreSQL server of ``.ci/in-netns.sh``
(``NAS_TEST_POSTGRES_URL``); tests that need it are skipped without it.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from nas.runner import quiet_ray_env

    quiet_ray_env(False)
    tmp = tempfile.mkdtemp(prefix="nt-ray-", dir="/tmp")
    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, _temp_dir=tmp,
             include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture()
def postgres_url() -> str:
    url = os.environ.get("NAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("NAS_TEST_POSTGRES_URL is not set (run under .ci/in-netns.sh as root)")
    return url


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (read from /proc; no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_pids(pids: list[int], timeout: float = 10.0) -> None:
    """SIGKILL each PID and wait until it is gone (zombies of ours are reaped)."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for p in pids:
        while time.monotonic() < deadline:
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                os.kill(p, 0)
            except ProcessLookupError:
                break
            if Path(f"/proc/{p}/stat").exists() and \
                    Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.05)
