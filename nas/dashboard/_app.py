"""The Starlette application of ``nas dashboard``: HTML pages (Jinja2, autoescaped) and the
JSON endpoints their plots poll.  Read-only: every route answers GET (and HEAD) only.

Pages:
  ``/``                              studies
  ``/study/{id}``                    leaderboard (sort/filter/page in the query), plots, summary
  ``/study/{id}/trial/{number}``     curve, forecasts, decisions, config, error
  ``/study/{id}/compare?t=1&t=2``    overlaid curves
JSON: ``/api/studies``, ``/api/study/{id}``, ``/api/study/{id}/trials``,
``/api/study/{id}/progress``, ``/api/study/{id}/importances``,
``/api/study/{id}/trial/{number}``, ``/api/study/{id}/curves?t=..``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nas.dashboard import _data
from nas.dashboard._queries import LEADERBOARD_SORTS, leaderboard
from nas.errors import ConfigError, StorageError, StudyNotFoundError
from nas.interfaces import TRIAL_STATES
from nas.storage import Storage, StudyRecord

__all__ = ["create_app"]

HERE = Path(__file__).parent
PAGE_SIZE = 50
MAX_COMPARE = 50
POLL_S = 5
#: Ids and numbers are 1-18 ASCII digits (they fit the database's int64); pages are clamped.
MAX_DIGITS = 18
MAX_PAGE = 1_000_000
#: ``t`` lists: at most this many characters are looked at (MAX_COMPARE numbers fit easily).
MAX_LIST_CHARS = 2000

#: Sent with every response: only our own scripts run, nothing is framed or referred.
SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; script-src 'self'; "
                                "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the ``plotly`` Python package (served locally)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


class _Headers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                for k, v in SECURITY_HEADERS.items():
                    if k.encode() not in have:
                        headers.append((k.encode(), v.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else ""
    if isinstance(v, _dt.datetime):
        return v.replace(microsecond=0).isoformat(sep=" ")
    return str(v)


def create_app(storage: Storage) -> Starlette:
    """The dashboard for ``storage``.  Nothing here writes to the database."""
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["fmt"] = _fmt
    plotly_js = plotly_js_path()

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%H:%M:%S UTC")
        html = env.get_template(name).render(
            request=request, storage=storage.masked_url, rendered=now, poll_s=POLL_S,
            colors=_data.COLORS, **ctx)
        return HTMLResponse(html, status_code=status)

    def study_of(request: Request) -> StudyRecord:
        study_id = parse_id(request.path_params["study_id"])
        if study_id is None:
            raise HTTPException(404, "no such study")
        try:
            return storage.get_study_by_id(study_id)
        except StudyNotFoundError:
            raise HTTPException(404, "no such study") from None

    def trial_of(request: Request, study: StudyRecord) -> Any:
        number = parse_id(request.path_params["number"])
        t = None if number is None else storage.trial_by_number(study.id, number)
        if t is None:
            raise HTTPException(404, f"study {study.name!r} has no such trial")
        return t

    def board_query(request: Request, study: StudyRecord) -> dict[str, Any]:
        q = request.query_params
        sort = q.get("sort", "value")
        if sort not in LEADERBOARD_SORTS:
            sort = "value"
        order = q.get("order", "")
        descending = None if order not in ("asc", "desc") else order == "desc"
        state = q.get("state", "")
        states = [state] if state in TRIAL_STATES else None
        search = "".join(ch for ch in q.get("q", "")[:200] if ch.isprintable())  # no NUL
        # 1..MAX_PAGE (a page past the last one is empty; no offset overflows the database)
        page = min(MAX_PAGE, max(1, parse_id(q.get("page", "1")[:MAX_DIGITS + 1]) or 1))
        rows, total = leaderboard(
            storage, study.id, direction=study.direction, sort=sort, descending=descending,
            states=states, search=search or None, offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE)
        return {"rows": _data.leaderboard_rows(rows), "total": total, "sort": sort,
                "order": order, "state": state if states else "", "q": search, "page": page,
                "pages": max(1, -(-total // PAGE_SIZE)), "page_size": PAGE_SIZE}

    def board_link(board: dict[str, Any], **change: Any) -> str:
        params = {k: board[k] for k in ("sort", "order", "state", "q", "page")}
        params.update(change)
        return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None, 1)})

    # ------------------------------------------- pages (sync: every handler that reads the
    # database runs in Starlette's thread pool, so a slow or locked database never blocks the
    # event loop: static files and other pages keep answering)
    def studies_page(request: Request) -> Response:
        return render(request, "studies.html", studies=_data.studies_table(storage))

    def study_page(request: Request) -> Response:
        study = study_of(request)
        board = board_query(request, study)
        return render(request, "study.html", study=study,
                      summary=_data.study_summary(storage, study), board=board,
                      link=lambda **kw: board_link(board, **kw), sorts=LEADERBOARD_SORTS,
                      states=TRIAL_STATES)

    def trial_page(request: Request) -> Response:
        study = study_of(request)
        trial = trial_of(request, study)
        view = _data.trial_view(storage, study, trial)
        bad = dict.fromkeys(trial.unreadable, "unreadable")  # cells the database cannot give
        config = bad.get("config") or json.dumps(trial.config, indent=2, sort_keys=True,
                                                 default=str)
        return render(request, "trial.html", study=study, trial=trial, view=view, bad=bad,
                      config_json=config)

    def compare_page(request: Request) -> Response:
        study = study_of(request)
        numbers = _numbers(request)
        return render(request, "compare.html", study=study, numbers=numbers,
                      query=urlencode([("t", n) for n in numbers]))

    # ---------------------------------------------------------------- JSON
    def api_studies(request: Request) -> Response:
        return JSONResponse({"storage": storage.masked_url,
                             "studies": _data.studies_table(storage)})

    def api_study(request: Request) -> Response:
        return JSONResponse(_data.study_summary(storage, study_of(request)))

    def api_trials(request: Request) -> Response:
        study = study_of(request)
        board = board_query(request, study)
        return JSONResponse({k: board[k] for k in ("rows", "total", "page", "pages", "sort",
                                                   "order", "state", "q")})

    def api_progress(request: Request) -> Response:
        return JSONResponse(_data.best_so_far(storage, study_of(request)))

    def api_importances(request: Request) -> Response:
        return JSONResponse(_data.importances(storage, study_of(request)))

    def api_trial(request: Request) -> Response:
        study = study_of(request)
        return JSONResponse(_data.trial_view(storage, study, trial_of(request, study)))

    def api_curves(request: Request) -> Response:
        study = study_of(request)
        return JSONResponse(_data.compare_curves(storage, study, _numbers(request)))

    # ---------------------------------------------------------------- assets, errors
    async def plotly(request: Request) -> Response:
        return FileResponse(plotly_js, media_type="text/javascript",
                            headers={"cache-control": "max-age=86400"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("dash.js", "dash.css"):
            raise HTTPException(404, "no such file")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(HERE / "static" / name, media_type=kind)

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "not found")
        code = getattr(exc, "status_code", 404)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=code)
        return render(request, "error.html", status=code, code=code, detail=detail)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return await not_found(request, HTTPException(400, str(exc)))

    async def unavailable(request: Request, exc: Exception) -> Response:
        # StorageError messages name the masked URL only (nas.storage)
        return await not_found(request, HTTPException(503, str(exc)))

    get = ["GET"]
    routes = [
        Route("/", studies_page, methods=get),
        Route("/study/{study_id}", study_page, methods=get),
        Route("/study/{study_id}/trial/{number}", trial_page, methods=get),
        Route("/study/{study_id}/compare", compare_page, methods=get),
        Route("/api/studies", api_studies, methods=get),
        Route("/api/study/{study_id}", api_study, methods=get),
        Route("/api/study/{study_id}/trials", api_trials, methods=get),
        Route("/api/study/{study_id}/progress", api_progress, methods=get),
        Route("/api/study/{study_id}/importances", api_importances, methods=get),
        Route("/api/study/{study_id}/trial/{number}", api_trial, methods=get),
        Route("/api/study/{study_id}/curves", api_curves, methods=get),
        Route("/static/plotly.min.js", plotly, methods=get),
        Route("/static/{name}", static, methods=get),
    ]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: not_found, ConfigError: bad_request, StorageError: unavailable})
    app.add_middleware(_Headers)
    app.state.storage = storage
    return app


def parse_id(raw: str) -> int | None:
    """``raw`` as an id, trial number or page: 1-18 ASCII digits, else None (no ``int()`` of
    Unicode digits such as ``²``, of 5,000 digits, or beyond the database's int64)."""
    if 0 < len(raw) <= MAX_DIGITS and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def _numbers(request: Request) -> list[int]:
    """The ``t`` trial numbers (``t=1&t=3,7``): the first MAX_COMPARE distinct valid ones,
    in linear time over at most MAX_LIST_CHARS characters; anything else is skipped."""
    out: dict[int, None] = {}
    budget = MAX_LIST_CHARS
    for raw in request.query_params.getlist("t"):
        if budget <= 0 or len(out) >= MAX_COMPARE:
            break
        raw = raw[:budget]
        budget -= len(raw) + 1
        for part in raw.split(","):
            n = parse_id(part.strip())
            if n is not None:
                out[n] = None
                if len(out) >= MAX_COMPARE:
                    break
    return list(out)
