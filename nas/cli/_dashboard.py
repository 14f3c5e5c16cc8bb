"""``nas dashboard``: serve the read-only web view of a study database.

No heavy imports at module level (Starlette/uvicorn load inside the command)."""

from __future__ import annotations

import typer

from nas.cli._app import app
from nas.cli._db import STORAGE_OPTION, _storage
from nas.errors import StorageError

__all__: list[str] = []

#: How long a dashboard query waits for a lock (SQLite busy timeout, PostgreSQL lock_timeout)
#: before the page answers 503: a table locked by another session never hangs the dashboard.
LOCK_WAIT_MS = 500


def _existing_sqlite(url: str) -> None:
    """A read-only view must not create a database: refuse a SQLite file that is not there."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from nas.storage import mask_url

    parsed = make_url(url)
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:" and \
            "mode=memory" not in url and not Path(db).exists():
        raise StorageError(f"no database at {mask_url(url)}: the file {db} does not exist")


@app.command("dashboard")
def dashboard_cmd(
    storage: str | None = STORAGE_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: "
                             "loopback only; others get a warning: there is no login)."),
    port: int = typer.Option(8080, "--port", help="TCP port (0: any free port)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
) -> None:
    """Serve a read-only web dashboard of the studies: leaderboards, curves, forecasts and
    why each trial was stopped; pages refresh while `nas run` writes."""
    from nas.dashboard import listen, serve
    from nas.storage import resolve_url

    url = resolve_url(storage)
    _existing_sqlite(url)
    listen(host, port).close()  # a busy port or bad host: one-line error before connecting
    st = _storage(url, wait_ms=LOCK_WAIT_MS)  # read-only; a locked table: 503, not a hang
    st.study_names()  # connect now: an unreachable server fails here, not on the first page
    serve(st, host=host, port=port, open_browser=open_browser)
