"""``nas dashboard``: serve the read-only web view of a study database.

No heavy imports at module level (Starlette/uvicorn load inside the command)."""

from __future__ import annotations

import typer

from nas.cli._app import app
from nas.cli._db import STORAGE_OPTION

__all__: list[str] = []

#: How long a dashboard query waits for a lock (SQLite busy timeout, PostgreSQL lock_timeout)
#: before the page answers 503: a table locked by another session never hangs the dashboard.
LOCK_WAIT_MS = 500


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
    from nas.storage import Storage

    # read-only (a missing SQLite file or an empty database is refused before the port is
    # taken); a locked table: 503, not a hang
    st = Storage.open(storage, wait_ms=LOCK_WAIT_MS)
    listen(host, port).close()  # a busy port or bad host: one-line error
    st.study_names()  # connect now: an unreachable server fails here, not on the first page
    serve(st, host=host, port=port, open_browser=open_browser)
