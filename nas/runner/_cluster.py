"""Where the run's Ray lives, without importing Ray: its environment, its temp dir, the address.

:func:`quiet_ray_env` and :func:`drop_ray_exit_noise` run before Ray starts; :func:`short_tmp`
makes the embedded Ray's temp dir (after reaping what killed drivers left, :mod:`._orphans`);
:func:`check_address` fails in seconds on a cluster address that cannot work.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Any

from nas.errors import ConfigError

__all__ = ["check_address", "drop_ray_exit_noise", "quiet_ray_env", "short_tmp"]


def drop_ray_exit_noise() -> None:
    """Ray Tune's placement-group manager runs its cleanup in ``__del__`` and, when that is
    left to interpreter exit, prints an ignored TypeError: drop that one message (installed
    once per process, by every run that is not ``verbose``: the CLI and the Python API)."""
    previous = sys.unraisablehook
    if getattr(previous, "_nas_drops_ray_noise", False):
        return

    def hook(u: Any) -> None:
        if "PlacementGroupResourceManager.__del__" in repr(getattr(u, "object", None)):
            return
        previous(u)

    hook._nas_drops_ray_noise = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def quiet_ray_env(verbose: bool = False) -> None:
    """Environment for Ray/Tune before Ray starts: no usage stats, no Tune console tables, no
    per-trial result files, our own Ctrl-C handling.  Existing settings win."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1e9")
    if not verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        for name in ("ray", "ray.tune", "ray.train", "ray.air", "optuna"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _tmp_base() -> str | None:
    # Ray's unix sockets live under its temp dir: the path must stay short (~107 bytes).
    # $TMPDIR when set (and short), else /tmp.
    base = os.environ.get("TMPDIR")
    if not base or len(base) > 40 or not os.path.isdir(base):
        base = "/tmp" if os.path.isdir("/tmp") else None
    return base


def short_tmp() -> str:
    """A new temp dir for the embedded Ray, after stopping what killed drivers left behind."""
    from nas.runner._orphans import PREFIX, reap_orphans, record_owner

    base = _tmp_base()
    reap_orphans(base or tempfile.gettempdir())
    made = tempfile.mkdtemp(prefix=PREFIX, dir=base)
    record_owner(made)
    return made


def check_address(address: str, timeout_s: float = 10.0) -> None:
    """Fail in seconds, naming the address, where Ray would retry for minutes: a HOST:PORT
    whose port is out of range, whose host does not resolve or that refuses a connection.
    ``auto`` and ``ray://`` client addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"--address {address!r}: expected auto or HOST:PORT (the head node's "
                          "GCS port, 6379 by default)")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"--address {address}: the port must be a number in 1..65535")
    host = host.strip("[]")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"--address {address}: cannot resolve host {host!r}: "
                          f"{exc.strerror or exc}") from None
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray head answers there within "
                          f"{timeout_s:g} s ({exc.strerror or exc}); is `ray start --head` "
                          "running on that host and port?") from None
