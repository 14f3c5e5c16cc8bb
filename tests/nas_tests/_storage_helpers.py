"""Fixtures shared by the storage tests: one database per test, on SQLite and PostgreSQL.

PostgreSQL tests run when NAS_TEST_POSTGRES_URL is set (``.ci/in-netns.sh`` starts a server
and sets it); each test gets its own fresh database, dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.testing.storage import postgres_database

PG_ENV = "NAS_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def make_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'nas.db'}"
        return
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(reason=f"{PG_ENV} is not set (run under .ci/in-netns.sh for PostgreSQL)")
    with postgres_database(admin) as url:
        yield url


def _storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, on each back end."""
    yield from make_url(request.param, tmp_path)


#: Test modules bind it at module level (``storage_url = storage_url_fixture``) so that pytest
#: finds the fixture ``storage_url``.
storage_url_fixture = pytest.fixture(params=BACKENDS, name="storage_url")(_storage_url)
