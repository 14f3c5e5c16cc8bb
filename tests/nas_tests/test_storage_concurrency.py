"""Four processes write points for different trials of one study at once (both back ends)."""

from __future__ import annotations

from _storage_helpers import storage_url_fixture

from nas.testing.storage import check_concurrent_writers

storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL


def test_four_processes_write_every_point_exactly_once(storage_url: str) -> None:
    check_concurrent_writers(storage_url, processes=4, steps=120, batch=8)
