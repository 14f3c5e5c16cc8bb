"""Fixtures shared by the nas tests.

``ray_runtime`` is the ONE Ray runtime of the test session (session-scoped, started on first
use): 2 CPUs, a ~100 MB object store, no dashboard, its temp dir under a short /tmp path (Ray's
unix sockets must fit the path limit).  It is shut down at the end of the session, which stops
the processes it started.  Run the tests that use it inside a private network namespace
(``unshare -n bash .ci/in-netns.sh ...``) with RAY_AUTH_MODE=disabled and
RAY_USAGE_STATS_ENABLED=0, as ``make test`` does.
Tests that need PostgreSQL read ``NAS_TEST_POSTGRES_URL`` (set by ``.ci/in-netns.sh``) and are
skipped without it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

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
