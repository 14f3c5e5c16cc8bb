"""``nas dashboard``: a read-only web view of a study database (Starlette on uvicorn, Plotly's
JavaScript served from the ``plotly`` package: no CDN, works offline).

:func:`create_app` builds the ASGI application for a :class:`~nas.storage.Storage`;
:func:`serve` runs it.  Pages and endpoints: :mod:`nas.dashboard._app`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
import webbrowser
from typing import Any

from nas.dashboard._app import create_app
from nas.errors import ConfigError

__all__ = ["create_app", "is_loopback", "listen", "serve"]

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); :class:`ConfigError` with a
    one-line reason when the address cannot be used."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def serve(storage: Any, *, host: str = "127.0.0.1", port: int = 8080, open_browser: bool = False,
          log_level: str = "warning") -> None:
    """Serve the dashboard of ``storage`` until interrupted.  Warns on stderr when ``host`` is
    not a loopback address (anyone who can reach it can read the studies)."""
    import uvicorn

    sock = listen(host, port)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
    url = f"http://{shown}:{bound[1]}/"
    if not is_loopback(host):
        print(f"nas dashboard: warning: listening on {host}, not a loopback address: anyone "
              "who can reach this machine can read these studies (there is no login)",
              file=sys.stderr)
    print(f"nas dashboard: {storage.masked_url} at {url} (read-only; Ctrl-C to stop)",
          file=sys.stderr)
    app = create_app(storage)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                            server_header=False)
    server = uvicorn.Server(config)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    server.run(sockets=[sock])
