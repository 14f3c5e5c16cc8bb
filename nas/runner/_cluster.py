"""Where the run's Ray lives, without importing Ray: its environment, its temp dir, the address.

:func:`quiet_ray_env` and :func:`drop_ray_exit_noise` run before Ray starts; :func:`short_tmp`
makes the embedded Ray's temp dir (after reaping what killed drivers left, :mod:`._orphans`);
:func:`loopback_only` keeps the embedded Ray on 127.0.0.1; :func:`check_address` fails in
seconds on a cluster address that cannot work.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from nas.errors import ConfigError

__all__ = ["LOOPBACK", "check_address", "check_results_dir", "drop_ray_exit_noise",
           "loopback_only", "quiet_ray_env", "results_failure", "short_tmp"]

#: The only address the embedded Ray uses.
LOOPBACK = "127.0.0.1"

# Ray finds a node's address by asking the routing table how it would reach 8.8.8.8, and then
# binds its servers (GCS, raylet, object manager, workers) to that address, i.e. to a network
# interface.  Where clusters are "not supported" (this switch off) it uses 127.0.0.1 instead and
# does not probe: what an embedded, single-machine Ray needs.
_RAY_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


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


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """While the embedded Ray starts: node address 127.0.0.1 (every server it starts binds
    there), no probe of an external address.  Ray reads the switch from its constants module
    (already imported or not) and hands it to the processes it starts through the environment;
    both are restored afterwards, so that a later ``ray.init(address=...)`` in the same process
    joins a cluster as usual."""
    old_env = os.environ.get(_RAY_CLUSTER_SWITCH)
    os.environ[_RAY_CLUSTER_SWITCH] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    old_const = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop(_RAY_CLUSTER_SWITCH, None)
        else:
            os.environ[_RAY_CLUSTER_SWITCH] = old_env
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None and old_const is not None:
            constants.ENABLE_RAY_CLUSTER = old_const  # type: ignore[attr-defined]


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


#: Free space the results dir needs before a run starts (Tune writes a few files per trial).
MIN_RESULTS_FREE = 16 * 1024 * 1024


def check_results_dir(ray_storage: str | None) -> str:
    """Where Tune will write (``--ray-results``, default ``~/ray_results``), absolute; fails
    (:class:`ConfigError`, before the study is touched) when it cannot be created or written,
    or has less than 16 MiB free."""
    path = os.path.abspath(os.path.expanduser(ray_storage or "~/ray_results"))
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as f:  # a real write: quotas, read-only mounts
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
        free = shutil.disk_usage(path).free
    except OSError as exc:
        raise ConfigError(f"--ray-results {path}: cannot write there ({exc.strerror or exc}); "
                          "Ray Tune keeps its per-trial files there: free some space or "
                          "choose another directory") from None
    if free < MIN_RESULTS_FREE:
        raise ConfigError(f"--ray-results {path}: only {free / 2**20:.1f} MiB free (at least "
                          f"{MIN_RESULTS_FREE // 2**20} MiB needed); Ray Tune keeps its per-trial "
                          "files there: free some space or choose another directory")
    return path


def results_failure(exc: BaseException, path: str) -> ConfigError | None:
    """The one-line error for a run that failed because the results dir filled up (or became
    unwritable) while it ran; None for any other failure."""
    import errno

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return ConfigError(f"--ray-results {path}: {e.strerror} while Ray Tune wrote its "
                               "files there; the study is marked FAILED: free some space (or "
                               "choose another directory) and continue it with --resume")
        e = e.__cause__ or e.__context__
    if "No space left on device" in str(exc):
        return ConfigError(f"--ray-results {path}: no space left on device while Ray Tune wrote "
                           "its files there; the study is marked FAILED: free some space (or "
                           "choose another directory) and continue it with --resume")
    return None
